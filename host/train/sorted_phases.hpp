// The phases of a sorted-path step on the CPU (host/train/sorted_step.cpp), shared by the step of
// one process or data-parallel ranks (cpu_sorted_step) and the row-sharded step
// (host/dist/sharded_step.cpp).
#pragma once

#include <cstdint>
#include <span>

#include "cudaembed/cpu_reference.hpp"
#include "train/thread_team.hpp"

namespace cudaembed {

// The row lookup `lookup` reads: sample lookup / 2's a when it is even, its b when odd.
inline uint32_t lookup_row(std::span<const PairRecord> samples, std::size_t lookup) {
  const PairRecord& x = samples[lookup / 2];
  return lookup % 2 == 0 ? x.a : x.b;
}

// The step's samples into work.samples (pairs and negatives, ids below `rows`); sizes
// work.lookup_grad (2S, D) and work.sample_sums (S,) to match.
void draw_samples(std::span<const PairRecord> batch, const TrainConfig& config, int64_t step, uint32_t rows,
                  int dims, SortedWorkspace& work);

// Forward and backward of samples [mine.begin, mine.end) of `samples`, whose ids index `table`
// (D floats a row): lookup 2s's gradient (sample s's a) and 2s + 1's (its b) into their rows of
// work.lookup_grad, the sample's SampleSums into work.sample_sums[s]. state gives D and the Dense layer.
void forward_backward(const float* table, std::span<const PairRecord> samples, const ModelState& state,
                      const TrainConfig& config, SortedWorkspace& work, Slice mine);

// Every rank's slice of work.sample_sums (and, with_lookups, of work.lookup_grad) into its place
// on every rank. Slices differ by at most one sample: each rank sends the longest one's length.
void gather_samples(Communicator& comm, SortedWorkspace& work, int dims, bool with_lookups);

// The Dense layer's gradient (dL/dw, dL/db) and the metrics, summed over work.sample_sums in sample order.
void sum_samples(const SortedWorkspace& work, float dense_grad[2], EpochMetrics& metrics);

// Over work.order (sorted keys row << 32 | lookup, rows of `state`): each row's lookups summed in
// lookup order, then its update; Keras's dense Adam also decays the rows no key names.
void update_rows(ModelState& state, SortedWorkspace& work, const TrainConfig& config, float lr_scale);

// The same for the keys of rows [first_row, last_row) only (order holds no others), with
// row_grad and row_grad_sq as the segment's scratch: what one member of a team updates.
void update_row_range(ModelState& state, std::span<const uint64_t> order, std::span<const float> lookup_grad,
                      const TrainConfig& config, float lr_scale, int64_t first_row, int64_t last_row,
                      std::vector<float>& row_grad, std::vector<float>& row_grad_sq);

// The Dense layer's update, then state.step + 1.
void update_dense(ModelState& state, const float dense_grad[2], const TrainConfig& config, float lr_scale);

// cpu_sorted_step of one process on a team of threads, the same bits: each member runs forward and
// backward of its slice of the samples; after a barrier it sorts and sums the lookups of the rows
// it owns (rows * t / size up to rows * (t + 1) / size), in lookup order, and updates them; member
// 0 sums the Dense gradient and the metrics in sample order.
void cpu_sorted_step_team(ThreadTeam& team, ModelState& state, std::span<const PairRecord> batch,
                          const TrainConfig& config, SortedWorkspace& work, EpochMetrics& metrics, float lr_scale);

// --threads 0 on the sorted path: one thread per 2^20 lookup values a step makes (2 samples x D),
// up to `cores`. The lazy optimizers touch only those rows, so a step's size is its lookups.
int auto_sorted_threads(int64_t samples, int dims, int cores);

}  // namespace cudaembed
