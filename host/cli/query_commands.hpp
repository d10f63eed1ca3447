// Options and entry points of `cudaembed neighbours` and `cudaembed evaluate`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cudaembed/neighbours.hpp"
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

// Whether --device NAME runs on the GPU (auto: when one is visible); Error for cuda without one.
bool use_gpu_for(const std::string& device);

int run_neighbours(const NeighboursOptions& options);
int run_evaluate(const EvaluateOptions& options);
// run_evaluate with --pairs (host/cli/evaluate_pairs.cpp).
int run_evaluate_pairs(const EvaluateOptions& options);

}  // namespace cudaembed
