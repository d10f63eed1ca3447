// Options and entry points of `cudaembed neighbours` and `cudaembed evaluate`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cudaembed/run_dir.hpp"

namespace cudaembed {

struct NeighboursOptions {
  std::string run_dir;
  std::string name;
  int k = 10;
  std::string device = "auto";
};

struct EvaluateOptions {
  std::string run_dir;
  int k = 10;
  std::string device = "auto";
  bool json = false;  // one JSON line instead of a sentence
  std::string pairs;  // link prediction and reconstruction on this pairs file
  std::vector<std::string> filters;  // more pairs files whose positives are filtered as known
  int64_t eval_candidates = -1;      // as train's --eval-candidates
  std::optional<uint64_t> seed;      // of the drawn candidates; default the run's
};

struct Neighbour {
  std::size_t row;
  float embedding_distance;  // Euclidean, in the space the model compares (normalised if it was)
  float rgb_distance;        // Euclidean in [0, 1]^3
  float similarity;          // a dot or cosine head's: the dot product of the rows as the model compares them
};

// Whether --device NAME runs on the GPU (auto: when one is visible); Error for cuda without one.
bool use_gpu_for(const std::string& device);

// What neighbours are ranked by: the run's head's own measure. "Euclidean distance" (nearest first),
// "dot product" or "cosine similarity" (most similar first).
std::string neighbour_measure(const RunDir& run);

// The k rows nearest to row `query` in embedding space by neighbour_measure(run), nearest first.
std::vector<Neighbour> nearest_neighbours(const RunDir& run, std::size_t query, int k, bool use_gpu);

int run_neighbours(const NeighboursOptions& options);
int run_evaluate(const EvaluateOptions& options);
// run_evaluate with --pairs (host/cli/evaluate_pairs.cpp).
int run_evaluate_pairs(const EvaluateOptions& options);

}  // namespace cudaembed
