// The plain CPU reference of one training step: the truth the CUDA kernels are checked against.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "cudaembed/backend.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

// The epoch's pairs in its shuffled order: out[i] = pairs[permute_index(i, P, key(seed, epoch))].
// Batch k is out[k*batch, min((k+1)*batch, P)); the CUDA kernels compute the same ids in place.
void shuffled_epoch(const PairSet& pairs, uint64_t seed, int64_t epoch, std::vector<LabelledPair>& out);

// out[i] = permute_index(first + i, p) for i < count, computed a vector's width at a time
// (host/train/shuffle.cpp): the same positions, several times faster than one at a time.
void permute_range(uint32_t first, uint32_t count, const Permutation& p, uint32_t* out);

// The epoch's order, once: visit(i, permute_index(i, n, key(seed, epoch))) for each i < n, in
// order, the positions made a chunk at a time by permute_range.
template <class Visit>
void for_each_in_epoch_order(uint32_t n, uint64_t seed, int64_t epoch, Visit&& visit) {
  const Permutation perm = make_permutation(n, epoch_shuffle_key(seed, epoch));
  constexpr uint32_t kChunk = 4096;
  uint32_t ids[kChunk];
  for (uint32_t first = 0; first < n; first += kChunk) {
    const uint32_t count = std::min(kChunk, n - first);
    permute_range(first, count, perm, ids);
    for (uint32_t i = 0; i < count; ++i) visit(first + i, ids[i]);
  }
}

// out[i] = example(permute_index(i, n, key(seed, epoch))) for i < n.
template <class Example, class Make>
void gather_in_epoch_order(uint32_t n, uint64_t seed, int64_t epoch, std::vector<Example>& out, Make&& example) {
  out.resize(n);
  for_each_in_epoch_order(n, seed, epoch, [&](uint32_t i, uint32_t id) { out[i] = example(id); });
}

// Gradient scratch, (N, D) each, all zero between steps.
struct CpuWorkspace {
  std::vector<float> grad;                  // sum of the lookups' gradients
  std::vector<float> grad_sq;               // sum of their squares (SecondMoment::lookups only)
  std::vector<PairForward<float>> forward;  // (batch,) per pair: distance and what its backward needs
  std::vector<float> logit, prob, loss;     // (batch,)
  explicit CpuWorkspace(const ModelState& s, SecondMoment moment)
      : grad(s.table.size()), grad_sq(moment == SecondMoment::lookups ? s.table.size() : 0) {}
};

// One step: forward and backward of the batch (mean BCE), then Adam on every parameter (Keras's
// dense update: rows outside the batch still decay and move). Uses config's normalize, adam and
// second_moment. Adds the batch's per-sample sums to `metrics`. One process only: K ranks train
// the same model on the sorted path (cpu_sorted_step), which gives the same bits.
void cpu_train_step(ModelState& state, std::span<const LabelledPair> batch, const TrainConfig& config,
                    CpuWorkspace& work, EpochMetrics& metrics);

// ---- The sorted-segment path: any head, optimizer, negatives and pair weights ----

// shuffled_epoch's order, as PairRecords (weight 1 where the set has none).
void shuffled_epoch_records(const PairSet& pairs, uint64_t seed, int64_t epoch, std::vector<PairRecord>& out);
// Step k's batch of an epoch's shuffled examples: [k * batch, (k + 1) * batch), the last one partial.
template <class Example>
std::span<const Example> step_batch(std::span<const Example> all, int64_t k, int64_t batch) {
  const auto start = static_cast<std::size_t>(k * batch);
  return all.subspan(start, std::min<std::size_t>(static_cast<std::size_t>(batch), all.size() - start));
}

// Sample s of a step whose batch holds pairs `batch`: with k negatives per pair, s = i (1 + k) + j
// is pair i itself for j = 0, else (a_i, negative_row(seed, step, s, rows), label 0, weight_i).
PairRecord step_sample(std::span<const PairRecord> batch, uint32_t s, int negatives, uint64_t seed, int64_t step,
                       uint32_t rows);
// Every sample of the step into `out` (batch.size() x (1 + negatives) of them); throws Error where
// a row id is not below `rows` (the loaders check; a last guard).
void step_samples(std::span<const PairRecord> batch, const TrainConfig& config, int64_t step, uint32_t rows,
                  std::vector<PairRecord>& out);

// What the Dense layer's gradient and the metrics take from one sample: summed in sample order,
// whichever rank computed it.
struct SampleSums {
  static constexpr std::size_t kValues = 5;
  float dscore;   // dL/dlogit * score: the sample's dL/dw
  float dlogit;   // dL/db
  float loss;     // weight * BCE
  float error;    // label - prob
  float correct;  // 1 where (prob > 0.5) == label
};
static_assert(sizeof(SampleSums) == SampleSums::kValues * sizeof(float), "SampleSums travels as floats");

// One thread's part of a sorted step shared by a team: the lookups of the rows it owns, sorted and summed.
struct SortedMemberWork {
  std::vector<uint64_t> order, order_scratch;
  std::vector<uint32_t> digit_count;
  std::vector<float> row_grad, row_grad_sq;
};

struct SortedWorkspace {
  std::vector<PairRecord> samples;           // (S,) the batch's pairs and their negatives
  std::vector<SampleSums> sample_sums;       // (S,)
  std::vector<float> send, received;         // data parallel: this rank's lookups, every rank's
  std::vector<float> lookup_grad;            // (2S, D) each lookup's row gradient: 2s is sample s's a, 2s + 1 its b
  std::vector<uint64_t> order;               // (2S,) row << 32 | lookup, sorted: the segments of equal rows
  std::vector<uint64_t> order_scratch;       // (2S,) the radix sort's other buffer
  std::vector<uint32_t> digit_count;         // the radix sort's histogram
  std::vector<float> row_grad, row_grad_sq;  // (D,) one segment's sums
  std::vector<SortedMemberWork> members;     // a team of threads: each member's rows
};

// Sorts `keys` (row << 32 | lookup, rows below `rows`) by row, stably: a least-significant-digit
// radix sort of the row's bits, as cub::DeviceRadixSort::SortPairs on the GPU. Keys made in lookup
// order come out as std::sort leaves them. scratch and count are its buffers.
void sort_by_row(std::vector<uint64_t>& keys, uint32_t rows, std::vector<uint64_t>& scratch,
                 std::vector<uint32_t>& count);

// One step of the sorted path, the CPU twin of cuda/sorted_kernels.cu: every sample's forward and
// backward into its own lookup gradient, the lookups sorted by row, each row's gradients summed
// in lookup order, then the optimizer applied to that row in place. No dense gradient table.
// Keras's dense Adam also moves the rows the batch did not touch, with a zero gradient.
// lr_scale multiplies every learning rate of the step (the Riemannian optimizers' burn-in; 1 otherwise).
// With a communicator of K > 1 ranks (data parallel), each rank runs forward and backward of its
// rank_slice of the samples and the ranks all-gather the lookups' gradients (the touched rows
// only); every rank then sums and updates as one process would, so K ranks train the same bits as one.
void cpu_sorted_step(ModelState& state, std::span<const PairRecord> batch, const TrainConfig& config,
                     SortedWorkspace& work, EpochMetrics& metrics, float lr_scale = 1.0f,
                     Communicator* comm = nullptr);

// ---- Row sharding (--parallel rows): each rank holds its rows (RowPlacement) ----

// What one rank of a row-sharded step sends and receives, and where each value goes: a function
// of the step's samples and the placement only, so every rank's plan agrees with the others' and
// no ids travel. The CPU step (cpu_sharded_step) and the GPU's (cuda/sorted_trainer.cpp) both
// carry out this plan; lookup l is sample l / 2's a (even) or b (odd).
struct ShardPlan {
  static constexpr uint32_t kNotOwned = 0xffffffffu;
  // Exchange 1, rows: this rank sends each reader, in rank order, the local rows of its own that the
  // reader's slice reads (ascending by row); it receives from each owner, in rank order, the rows
  // its slice reads (ascending within an owner).
  std::vector<uint32_t> serve_rows;       // local rows to send, readers in rank order
  std::vector<std::size_t> serve_counts;  // [reader] rows
  std::vector<std::size_t> read_counts;   // [owner] rows
  std::vector<PairRecord> local_samples;  // (S,) this rank's slice, a and b indexing the received rows
  // Exchange 2, gradients: each lookup of this rank's slice goes to its row's owner (owners in rank
  // order, lookup order within); this rank gets the gradients of the lookups of its rows (readers
  // in rank order, lookup order within) and puts them at those lookups.
  std::vector<uint32_t> send_lookups;
  std::vector<std::size_t> send_lookup_counts;  // [owner]
  std::vector<uint32_t> recv_lookups;
  std::vector<std::size_t> recv_lookup_counts;  // [reader]
  std::vector<uint32_t> owned_row;              // (2S,) each lookup's local row where this rank owns it; else kNotOwned
  std::vector<std::vector<uint32_t>> reads, serves;  // scratch: [owner] rows read, [reader] rows served (global)
};

// The plan of this rank (place.rank) for a step of `samples`.
void plan_shard_step(std::span<const PairRecord> samples, const RowPlacement& place, ShardPlan& plan);
// A plan's counts of rows (or lookups) for each rank as counts of floats, D a row, for an all-to-all.
void values_of_rows(std::span<const std::size_t> rows, std::size_t dims, std::vector<std::size_t>& values);

struct ShardWorkspace {
  SortedWorkspace step;  // the sorted step's arrays; lookup_grad indexed by the step's lookups
  ShardPlan plan;
  std::vector<float> send, received;  // an exchange's values, in rank order
  std::vector<std::size_t> send_counts, recv_counts;
};

// One sorted-path step with the table sharded by row across `comm`'s ranks: `shard` holds this
// rank's rows (init_model_shard) of a `rows`-row table, and the Dense layer, replicated. Every rank
// draws the step's samples and so knows which rows each rank's slice reads and which gradients
// each owner gets: owners send the rows their readers need (all-to-all), each rank runs forward
// and backward of its slice, sends each lookup's gradient row to the row's owner (all-to-all),
// and every owner sums its rows' lookups in lookup order and updates them, as one process does;
// the samples' Dense gradients and metrics are all-gathered. So K shards hold the same bits as
// the one-process table's rows.
void cpu_sharded_step(ModelState& shard, int64_t rows, std::span<const PairRecord> batch, const TrainConfig& config,
                      ShardWorkspace& work, EpochMetrics& metrics, float lr_scale, Communicator& comm);

// Rank 0 gets the whole table (rows x D) from every rank's shard; the other ranks send theirs and get nothing.
std::vector<float> gather_table(const ModelState& shard, int64_t rows, Communicator& comm);

// The update of one row, given its summed gradient g and per-lookup squares g2 (D values each):
// what the segment kernels apply too. `step_size` is Adam's for the step being taken, computed once
// per step by the caller; lazy Adam replaces it with the row's own. The Riemannian optimizers
// rescale g by the Poincaré metric at the row, step (radam with the row's own step count, times
// lr_scale, as rsgd's learning rate) and retract the row into the ball.
void apply_row_update(ModelState& state, int64_t row, const float* g, const float* g2, const TrainConfig& config,
                      float step_size, float lr_scale = 1.0f);

}  // namespace cudaembed
