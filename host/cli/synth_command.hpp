// `cudaembed synth`: synthetic pairs files for benchmarks and recovery checks.
#pragma once

#include <cstdint>
#include <string>

namespace cudaembed {

struct SynthOptions {
  std::string kind;  // powerlaw | latent | tree
  uint64_t rows = 1000;
  uint64_t pairs = 100000;
  uint32_t hot_rows = 4;
  float hot_fraction = 0.05f;
  int depth = 6;      // tree
  int branching = 3;  // tree
  uint64_t seed = 42;
  std::string out;
};

int run_synth(const SynthOptions& options);

}  // namespace cudaembed
