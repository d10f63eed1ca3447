// The tutorial's step on the CPU, built for speed and shared by a team of threads: the same bits
// as cpu_train_step (the reference written for reading), for any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "cudaembed/cpu_reference.hpp"
#include "train/thread_team.hpp"

namespace cudaembed {

// What the members of a dense step share. Member t runs the forward and backward of its share of
// the batch's pairs, then (after a barrier) sums and updates the rows it owns, [first_row[t],
// first_row[t + 1]), adding each row's lookups in batch order: so every float sum keeps the order
// of one thread. Member 0 sums the Dense layer's gradient and the metrics, pair by pair.
// An epoch's pairs in its shuffled order (shuffled_epoch's), by column: a step's loops over its
// pairs read each column straight through.
struct EpochPairs {
  std::vector<uint32_t> a, b;
  std::vector<float> label;
};
void shuffled_epoch_columns(const PairSet& pairs, uint64_t seed, int64_t epoch, EpochPairs& out);

struct DenseWorkspace {
  DenseWorkspace(const ModelState& state, SecondMoment moment, int64_t batch, int threads);

  int members;                     // threads sharing a step (no more than the rows)
  std::vector<int64_t> first_row;  // (members + 1,)
  std::vector<float> grad, grad_sq;              // (N, D): the step's summed gradients, and squares
  float* squares() { return grad_sq.empty() ? nullptr : grad_sq.data(); }  // null: --adam-v rows
  std::vector<PairForward<float>> forward;       // (batch,) in place: what the backward needs
  std::vector<float> score;                      // (batch,) in place: the head's output
  std::vector<float> dw_term, dlogit, loss;      // (batch,) PairOutputs in dense_step.cpp
  std::vector<double> squared_error;             // (batch,)
  std::vector<int32_t> hit;                      // (batch,)
  std::vector<float> row_values;                 // (D, 2, batch): element k of pair i's a, of its b (vectorised path)
  std::vector<float> lookup_grad;                // their gradients: (D, 2, batch), or (batch, 2, D) for any width
  // Several members only:
  std::vector<uint16_t> owner;        // (rows,) the member that owns each row
  std::vector<uint32_t> bucket;       // [from member][to member] up to 2 batch lookups, in batch order
  std::vector<uint32_t> bucket_size;  // [from][to]
  float dense_grad[2] = {0.0f, 0.0f};  // the step's dL/dw and dL/db, summed by member 0
  bool stop_now = false;               // member 0's reading of the stop flag, for every member
};

// --threads 0: how many threads the dense step takes. A step's members meet at two barriers and
// hand each other the table's cache lines, a few microseconds a step however small the step, so
// a team pays only where a step moves a lot: one thread per 2^20 parameters and lookups' values a
// step (rows x D + batch x D), up to `cores`. Measured on 2 cores (docs/benchmarks.md): the colour
// run (2.3 thousand) is 4x slower on two threads, 10,000 x 16 at batch 4096 (225 thousand) 9%
// slower, 100,000 x 64 at batch 8192 (6.9 million) twice as fast.
int auto_dense_threads(const ModelState& state, int64_t batch, int cores);

// The rest of the epoch that state.step is in (Keras's dense Adam, cpu_train_step's arithmetic),
// over the epoch's pairs in shuffled order. Adds to `metrics` as the reference
// does (first_nonfinite_step too); stops after the step during which *stop became true, leaving
// metrics.complete false. The team's size must be the workspace's members.
void dense_epoch(ThreadTeam& team, DenseWorkspace& work, const EpochPairs& order, ModelState& state,
                 const TrainConfig& config, const std::atomic<bool>* stop, EpochMetrics& metrics);

}  // namespace cudaembed
