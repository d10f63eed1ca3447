// Synthetic pair sets from cuRAND's host Philox generator (see synthetic.hpp).
#include "cudaembed/synthetic.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "cudaembed/config.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"
#include "data/philox_host.hpp"

namespace cudaembed {

PairSet powerlaw_pairs(const PowerLawSpec& spec) {
  if (spec.rows < 1 || spec.rows >= 0xffffffffull) throw Error("powerlaw: rows must be in [1, 2^32 - 2]");
  const auto rows = static_cast<uint32_t>(spec.rows);
  const uint32_t hot = std::min(spec.hot_rows, rows);
  const Permutation scatter = make_permutation(rows, epoch_shuffle_key(spec.seed, -1));
  const double log_rows = std::log(static_cast<double>(rows));
  auto draw = [&](uint32_t pick_bits, uint32_t rank_bits) {
    if (hot > 0 && unit_from_bits(pick_bits) < spec.hot_fraction)
      return permute_index(index_from_bits(rank_bits, hot), scatter);
    // floor(rows^u) - 1 for u uniform: P(rank r) ~ 1 / (r + 1)
    const auto rank = static_cast<uint32_t>(std::exp(unit_from_bits(rank_bits) * log_rows)) - 1;
    return permute_index(std::min(rank, rows - 1), scatter);
  };
  const uint64_t n = spec.pairs;
  const auto bits = philox_bits_host(5 * n, spec.seed);
  PairSet p;
  p.a.resize(n);
  p.b.resize(n);
  p.label.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    p.a[i] = draw(bits[i], bits[n + i]);
    p.b[i] = draw(bits[2 * n + i], bits[3 * n + i]);
    p.label[i] = unit_from_bits(bits[4 * n + i]) < 0.5f ? 1.0f : 0.0f;
  }
  return p;
}

LatentPairs latent_pairs(const LatentSpec& spec) {
  LatentPairs out;
  const auto bits = philox_bits_host(3 * spec.rows, mix64(spec.seed ^ 0x1a7e47ull));
  out.positions.resize(3 * spec.rows);
  for (uint64_t i = 0; i < 3 * spec.rows; ++i) out.positions[i] = unit_from_bits(bits[i]);
  out.pairs = generate_pairs_host(out.positions, PairSpec{spec.pairs, spec.seed, spec.threshold});
  return out;
}

uint64_t touched_rows_per_epoch(const PairSet& pairs, int64_t batch, uint64_t seed, int64_t epoch) {
  const auto n = static_cast<uint32_t>(pairs.size());
  const Permutation perm = make_permutation(n, epoch_shuffle_key(seed, epoch));
  uint64_t total = 0;
  std::vector<uint32_t> ids;
  for (int64_t first = 0; first < n; first += batch) {
    ids.clear();
    for (int64_t i = first; i < std::min<int64_t>(n, first + batch); ++i) {
      const uint32_t id = permute_index(static_cast<uint32_t>(i), perm);
      ids.push_back(pairs.a[id]);
      ids.push_back(pairs.b[id]);
    }
    std::sort(ids.begin(), ids.end());
    total += static_cast<uint64_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  }
  return total;
}

TreeClosure tree_closure(const TreeSpec& spec) {
  if (spec.depth < 1 || spec.depth > 32) throw Error("tree: depth must be in [1, 32]");
  if (spec.branching < 1 || spec.branching > 1000) throw Error("tree: branching must be in [1, 1000]");
  TreeClosure t;
  t.parent = {0};
  t.names = {"r"};
  std::vector<uint32_t> level = {0};
  for (int d = 0; d < spec.depth; ++d) {
    const auto bits =
        philox_bits_host(level.size(), mix64(spec.seed ^ 0x7472656500000000ull ^ static_cast<uint64_t>(d)));
    std::vector<uint32_t> next;
    for (std::size_t i = 0; i < level.size(); ++i) {  // one draw per inner node
      const uint32_t children = 1 + index_from_bits(bits[i], static_cast<uint32_t>(2 * spec.branching - 1));
      for (uint32_t c = 0; c < children; ++c) {
        if (t.parent.size() >= 0xfffffffeull) throw Error("tree: more than 2^32 - 2 nodes");
        next.push_back(static_cast<uint32_t>(t.parent.size()));
        t.parent.push_back(level[i]);
        t.names.push_back(fmt::format("{}.{}", t.names[level[i]], c));
      }
    }
    level = std::move(next);
  }
  for (uint32_t node = 1; node < t.parent.size(); ++node)
    for (uint32_t up = t.parent[node];; up = t.parent[up]) {
      t.pairs.a.push_back(node);
      t.pairs.b.push_back(up);
      t.pairs.label.push_back(1.0f);
      if (up == 0) break;
    }
  return t;
}

}  // namespace cudaembed
