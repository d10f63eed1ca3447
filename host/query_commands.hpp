// Options and entry points of `cudaembed neighbours` and `cudaembed evaluate`.
#pragma once

#include <cstddef>
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
};

struct Neighbour {
  std::size_t row;
  float embedding_distance;  // Euclidean, in the space the model compares (normalised if it was)
  float rgb_distance;        // Euclidean in [0, 1]^3
  float similarity;          // a dot or cosine head's: the dot product of the rows as the model compares them
};

// What neighbours are ranked by: the run's head's own measure. "Euclidean distance" (nearest first),
// "dot product" or "cosine similarity" (most similar first).
std::string neighbour_measure(const RunDir& run);

// The k rows nearest to row `query` in embedding space by neighbour_measure(run), nearest first.
std::vector<Neighbour> nearest_neighbours(const RunDir& run, std::size_t query, int k, bool use_gpu);

int run_neighbours(const NeighboursOptions& options);
int run_evaluate(const EvaluateOptions& options);

}  // namespace cudaembed
