// Link-prediction ranking, written once: the CPU reference (host/outputs/link_prediction.cpp) and the CUDA
// kernel (cuda/rank_kernels.cu) both call these __host__ __device__ helpers on the same RankView,
// so a query's counts are the same integers on either device.
//
// A query is a pair (source, target). Its rank is not found by sorting: it is a count of the
// candidates the model prefers to the target. Candidates are every row (or `sampled` rows drawn
// uniformly) except the source, the target and the source's known positives:
// the "filtered" setting of Bordes et al. 2013, as PyTorch-BigGraph and GraphVite filter.
#pragma once

#include <cstdint>

#include "cudaembed/math.hpp"

namespace cudaembed {

// Dot product of rows a and b (dims values each), accumulated in double in index order and rounded
// once to float, like row_sq_distance: the same bits on the CPU and the GPU.
CE_HD float row_dot(const float* a, const float* b, int dims) {
  double sum = 0.0;
  for (int k = 0; k < dims; ++k) sum = add_rn(sum, mul_rn(static_cast<double>(a[k]), static_cast<double>(b[k])));
  return static_cast<float>(sum);
}

// The head's score of rows a and b: the squared distance (euclidean), the dot product (dot; a
// cosine head is dot on rows the caller has L2-normalised) or the Poincaré distance (poincare).
CE_HD float head_score(Head head, const float* a, const float* b, int dims) {
  if (head == Head::poincare) return row_poincare_distance(a, b, dims);
  return head == Head::euclidean ? row_sq_distance(a, b, dims) : row_dot(a, b, dims);
}

// How much the model prefers a score: it predicts sigmoid(w * score + b), which rises with
// w * score, so the order is that of sign(w) * score (direction = sign(w): -1 for a trained distance
// head, +1 for a trained dot head; 0 ties everything). Negation is exact, so no bits are lost.
CE_HD float preference(float score, int direction) { return direction > 0 ? score : direction < 0 ? -score : 0.0f; }

// What one query's pass over the candidates counts.
struct RankCounts {
  uint32_t better = 0;             // candidates the model prefers to the target
  uint32_t equal = 0;              // candidates it scores exactly as the target
  uint32_t candidates = 0;         // candidates ranked against (the source and known positives excluded)
  uint32_t known_at_or_above = 0;  // known positives (the target included) preferred at least as much
};

// Everything a ranking pass reads, as plain pointers: host memory on the CPU, device memory on the GPU.
struct RankView {
  const float* table = nullptr;  // (rows, dims), normalised already for a cosine head
  uint32_t rows = 0;
  int dims = 0;
  Head head = Head::euclidean;
  int direction = -1;                       // sign of the Dense weight
  const uint32_t* sources = nullptr;        // (Q,)
  const uint32_t* targets = nullptr;        // (Q,)
  const uint64_t* known_offsets = nullptr;  // (rows + 1,) CSR: row r's known positives are
  const uint32_t* known_rows = nullptr;     // known_rows[known_offsets[r], known_offsets[r + 1]), sorted, r excluded
  uint32_t sampled = 0;                     // 0: every row is a candidate; else this many uniform draws
  uint64_t seed = 0;                        // of the draws
};

// Whether sorted list[0, count) holds x (binary search).
CE_HD bool sorted_contains(const uint32_t* list, uint64_t count, uint32_t x) {
  const uint64_t at = lower_bound_in(list, count, x);
  return at < count && list[at] == x;
}

// Candidate slots of one query: every row, or the draws.
CE_HD uint32_t rank_slots(const RankView& v) { return v.sampled ? v.sampled : v.rows; }

// Row of draw `slot` of query `query`: uniform over [0, rows), with replacement, a pure function of
// its arguments (the same draws on either device, and for a query whatever else is evaluated).
CE_HD uint32_t sampled_candidate(uint64_t seed, uint64_t query, uint32_t slot, uint32_t rows) {
  const uint64_t h = mix64(seed ^ 0x63616e6469646174ull ^ mix64(query * 0x9e3779b97f4a7c15ull + slot));
  return index_from_bits(static_cast<uint32_t>(h >> 32), rows);
}

// The model's preference for query q's target.
CE_HD float target_preference(const RankView& v, uint64_t q) {
  const float* a = v.table + static_cast<uint64_t>(v.sources[q]) * v.dims;
  const float* b = v.table + static_cast<uint64_t>(v.targets[q]) * v.dims;
  return preference(head_score(v.head, a, b, v.dims), v.direction);
}

// Slot `slot` of query q, whose target's preference is `target`: counted when it is a candidate (not
// the source, not the target, not a known positive of the source).
CE_HD void tally_slot(const RankView& v, uint64_t q, float target, uint32_t slot, RankCounts& c) {
  const uint32_t source = v.sources[q];
  const uint32_t row = v.sampled ? sampled_candidate(v.seed, q, slot, v.rows) : slot;
  if (row == source || row == v.targets[q]) return;
  const uint64_t first = v.known_offsets[source];
  if (sorted_contains(v.known_rows + first, v.known_offsets[source + 1] - first, row)) return;
  const float p = preference(head_score(v.head, v.table + static_cast<uint64_t>(source) * v.dims,
                                        v.table + static_cast<uint64_t>(row) * v.dims, v.dims),
                             v.direction);
  c.candidates += 1;
  if (p > target)
    c.better += 1;
  else if (p == target)
    c.equal += 1;
}

// Known positive number `k` of query q's source: counted when preferred at least as much as the target.
CE_HD void tally_known(const RankView& v, uint64_t q, float target, uint64_t k, RankCounts& c) {
  const uint32_t source = v.sources[q];
  const uint32_t row = v.known_rows[v.known_offsets[source] + k];
  const float p = preference(head_score(v.head, v.table + static_cast<uint64_t>(source) * v.dims,
                                        v.table + static_cast<uint64_t>(row) * v.dims, v.dims),
                             v.direction);
  if (p >= target) c.known_at_or_above += 1;
}

// Known positives of query q's source (its CSR run length).
CE_HD uint64_t known_count(const RankView& v, uint64_t q) {
  const uint32_t source = v.sources[q];
  return v.known_offsets[source + 1] - v.known_offsets[source];
}

// The filtered rank, ties at their mean: 1 + better + equal / 2, the mean of the optimistic rank
// (1 + better) and the pessimistic one (1 + better + equal).
CE_HD double rank_of(const RankCounts& c) { return 1.0 + c.better + 0.5 * c.equal; }

// The share of candidates scored below the target, ties counting half: the query's AUC (1 with no
// candidate at all).
CE_HD double auc_of(const RankCounts& c) {
  return c.candidates ? (c.candidates - c.better - 0.5 * c.equal) / c.candidates : 1.0;
}

}  // namespace cudaembed
