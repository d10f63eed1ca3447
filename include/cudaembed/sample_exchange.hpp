// Data parallel on GPUs (docs/scaling.md section 5): each rank runs forward and backward over its
// slice of a step's samples (rank_slice), then every rank needs every sample's two lookup gradients
// and five partial sums, to sort, sum and apply the whole step as one GPU does. NCCL's all-gather
// moves chunks of one size, so each rank packs its slice into a chunk sized for the longest slice
// (zeros past its end), and every rank unpacks the K gathered chunks into place. The index
// arithmetic is written once, here: the kernels (cuda/sorted_kernels.cu) run it an element a
// thread, its CPU twin below an element a loop iteration, and the tests hold the twin to a round trip.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cudaembed/math.hpp"
#include "cudaembed/rank_slice.hpp"

namespace cudaembed {

// Per sample: dL/dw, dL/db, weighted loss, squared error, correct (the sorted path's sample_partials).
constexpr int kSamplePartials = 5;

// The step's per-sample arrays, as the sorted path lays them out, and who this rank is.
struct SampleExchange {
  float* lookup_grad;      // (2 * column, D): sample s's lookups are rows 2s (its a) and 2s + 1 (its b)
  float* sample_partials;  // (5, column): partial c of sample s at c * column + s
  uint32_t column;         // the most samples a step has: the arrays' capacity
  uint32_t samples;        // this step's samples (the last step of an epoch may have fewer)
  int dims;
  int rank, ranks;
};

// Samples a chunk holds: the longest slice of the most samples a step has (rank 0's).
CE_HD uint32_t exchange_longest(uint32_t column, int ranks) {
  return static_cast<uint32_t>(rank_slice(column, 0, ranks).end);
}
// Floats in one rank's chunk: its gradients (longest x 2D, sample by sample), then its partials
// (5 x longest, partial by partial, as sample_partials is).
CE_HD uint64_t exchange_chunk(uint32_t column, int dims, int ranks) {
  return static_cast<uint64_t>(exchange_longest(column, ranks)) * static_cast<uint64_t>(2 * dims + kSamplePartials);
}

// What element e of a chunk holds: sample `sample` of its slice, value `at` of that sample (below
// 2D its gradients, a's D then b's; from 2D its partial at - 2D).
struct ChunkSlot {
  uint32_t sample;
  int at;
};
CE_HD ChunkSlot chunk_slot(uint64_t e, uint32_t longest, int dims) {
  const auto width = static_cast<uint64_t>(2 * dims);
  const uint64_t gradients = static_cast<uint64_t>(longest) * width;
  if (e < gradients) return {static_cast<uint32_t>(e / width), static_cast<int>(e % width)};
  const uint64_t p = e - gradients;
  return {static_cast<uint32_t>(p % longest), 2 * dims + static_cast<int>(p / longest)};
}

// Value `at` of sample s in the step's arrays.
CE_HD float* sample_value(const SampleExchange& x, uint64_t s, int at) {
  if (at < 2 * x.dims) return x.lookup_grad + (2 * s * static_cast<uint64_t>(x.dims) + static_cast<uint64_t>(at));
  return x.sample_partials + (static_cast<uint64_t>(at - 2 * x.dims) * x.column + s);
}

// Element e of this rank's chunk: its slice's values, zero past the slice's end.
CE_HD float packed_value(const SampleExchange& x, uint64_t e) {
  const Slice mine = rank_slice(x.samples, x.rank, x.ranks);
  const ChunkSlot slot = chunk_slot(e, exchange_longest(x.column, x.ranks), x.dims);
  const uint64_t s = mine.begin + slot.sample;
  return s < mine.end ? *sample_value(x, s, slot.at) : 0.0f;
}

// Element e of rank `from`'s gathered chunk into its place in the step's arrays (padding dropped).
CE_HD void unpack_value(const SampleExchange& x, const float* chunk, int from, uint64_t e) {
  const Slice theirs = rank_slice(x.samples, from, x.ranks);
  const ChunkSlot slot = chunk_slot(e, exchange_longest(x.column, x.ranks), x.dims);
  const uint64_t s = theirs.begin + slot.sample;
  if (s < theirs.end) *sample_value(x, s, slot.at) = chunk[e];
}

// The CPU twin of the kernels: this rank's chunk into `chunk`, and the K chunks of `gathered`
// (rank r's at r * exchange_chunk) into place.
inline void pack_chunk(const SampleExchange& x, float* chunk) {
  const uint64_t n = exchange_chunk(x.column, x.dims, x.ranks);
  for (uint64_t e = 0; e < n; ++e) chunk[e] = packed_value(x, e);
}
inline void unpack_chunks(const SampleExchange& x, const float* gathered) {
  const uint64_t n = exchange_chunk(x.column, x.dims, x.ranks);
  for (int r = 0; r < x.ranks; ++r)
    for (uint64_t e = 0; e < n; ++e) unpack_value(x, gathered + static_cast<uint64_t>(r) * n, r, e);
}

}  // namespace cudaembed
