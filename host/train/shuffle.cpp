// The epoch's shuffle on the CPU, a vector's width at a time.

#include "cudaembed/cpu_reference.hpp"
#include "train/dense_step.hpp"
#include "train/vector_clones.hpp"

namespace cudaembed {

namespace {

// Positions permuted together: four AVX-512 vectors of uint32, so that four rounds (each a chain
// of five dependent multiplies) are in flight at once.
constexpr uint32_t kLanes = 64;

}  // namespace

// Cycle walking per lane: every lane takes one round, then the lanes still at or above n take
// more until none is (1.3 rounds each on average for the default run's n = 100,000 in 2^17). The
// rotation (x + key mod n) mod n is written so that 32 bits hold it: x < n, so x + k >= n exactly
// when x >= n - k. A last partial block goes one position at a time.
CE_VECTOR_CLONES void permute_range(uint32_t first, uint32_t count, const Permutation& p, uint32_t* out) {
  const uint32_t n = p.n, wrap = p.n - p.key_mod_n;
  uint32_t base = 0;
  for (; base + kLanes <= count; base += kLanes) {
    uint32_t x[kLanes];
    for (uint32_t l = 0; l < kLanes; ++l) x[l] = permute_round(first + base + l, p.key, p.mask);
    for (;;) {
      uint32_t pending = 0;
      for (uint32_t l = 0; l < kLanes; ++l) pending |= x[l] >= n ? 1u : 0u;
      if (!pending) break;
      for (uint32_t l = 0; l < kLanes; ++l) x[l] = x[l] >= n ? permute_round(x[l], p.key, p.mask) : x[l];
    }
    for (uint32_t l = 0; l < kLanes; ++l) out[base + l] = x[l] >= wrap ? x[l] - wrap : x[l] + p.key_mod_n;
  }
  for (; base < count; ++base) out[base] = permute_index(first + base, p);
}

void shuffled_epoch_columns(const PairSet& pairs, uint64_t seed, int64_t epoch, EpochPairs& out) {
  const uint32_t n = static_cast<uint32_t>(pairs.size());
  out.a.resize(n);
  out.b.resize(n);
  out.label.resize(n);
  for_each_in_epoch_order(n, seed, epoch, [&](uint32_t i, uint32_t id) {
    out.a[i] = pairs.a[id];
    out.b[i] = pairs.b[id];
    out.label[i] = pairs.label[id];
  });
}

}  // namespace cudaembed
