// Synthetic pair sets: power-law row popularity for benchmarks, and points with known positions
// for checking that training recovers them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudaembed/pairs.hpp"

namespace cudaembed {

// a and b drawn with a popularity like real catalogues: rank r with probability about 1 / (r + 1)
// (log-uniform), scattered over the ids by a fixed permutation, plus `hot_fraction` of all draws
// going to `hot_rows` very hot rows. Labels are coin flips: these pairs measure speed, not learning.
struct PowerLawSpec {
  uint64_t rows = 1'000'000;
  uint64_t pairs = 4'000'000;
  uint32_t hot_rows = 4;
  float hot_fraction = 0.05f;
  uint64_t seed = 42;
};
PairSet powerlaw_pairs(const PowerLawSpec& spec);

// `rows` points uniform in the unit cube, and pairs labelled by the tutorial's rule on them
// (similar when |p_a - p_b|^2 / 3 < threshold * U^2): the colours, with made-up colours.
struct LatentSpec {
  uint64_t rows = 300;
  uint64_t pairs = 100'000;
  float threshold = 0.2f;
  uint64_t seed = 42;
};
struct LatentPairs {
  std::vector<float> positions;  // (N, 3), the truth
  PairSet pairs;
};
LatentPairs latent_pairs(const LatentSpec& spec);

// A random rooted tree and its transitive closure, the data the Poincaré head is for: every node
// but the root gets a parent; each node above the last level has a child count drawn uniformly
// from [1, 2 branching - 1] (so `branching` on average), and the closure holds one positive pair
// (descendant, ancestor) per ancestor of each node, as Nickel & Kiela's WordNet closure does.
// Nodes are numbered breadth-first (0 is the root) and named by their path: "r", "r.0", "r.0.2", ...
struct TreeSpec {
  int depth = 6;      // levels below the root
  int branching = 3;  // mean children per inner node
  uint64_t seed = 42;
};
struct TreeClosure {
  std::vector<uint32_t> parent;  // (nodes,) parent[0] = 0 for the root
  std::vector<std::string> names;
  PairSet pairs;  // (descendant, ancestor), label 1
};
TreeClosure tree_closure(const TreeSpec& spec);

// Rows each step of an epoch touches, summed over the epoch's steps (the optimizer's work).
uint64_t touched_rows_per_epoch(const PairSet& pairs, int64_t batch, uint64_t seed, int64_t epoch);

}  // namespace cudaembed
