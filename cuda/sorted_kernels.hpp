// The sorted-segment path on the GPU: per step, every sample's forward and backward into its own
// lookup gradient, the lookups sorted by row (CUB), run-length encoded, and each row's gradients
// reduced in registers and applied by the optimizer in place. No dense gradient table is written.
// Plain C++: included by .cu and .cpp files alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cudaembed/config.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/pairs.hpp"
#include "cudaembed/sample_exchange.hpp"

namespace cudaembed {

// Scalars in device memory, so that a step's launches need no per-step arguments.
struct SortedScalars {
  long long step;  // steps completed
  float dense[2];  // Dense(1): weight, bias
  float dense_m[2], dense_v[2];
  int runs;                  // distinct rows in this step's lookups (CUB's run-length encode writes it)
  unsigned int hot_count;    // runs longer than kHotRunLength this step, listed in hot_runs
  unsigned int finish_done;  // last-block-done ticket of sorted_finish (0 between steps)
  double loss_sum;           // this epoch's per-sample sums (the host zeroes them before each epoch)
  double squared_error_sum;
  double correct;
};

// A run of more lookups than this is reduced by a whole block, not a lane group: a lane group
// walks its run serially (four loads in flight), a block splits it into one slice per group.
constexpr uint32_t kHotRunLength = 64;

// Samples that one block of sorted_finish sums (256 threads x 8). Fixed, so the order of the
// float additions depends on the step's shape only, never on timing.
constexpr uint32_t kFinishChunk = 2048;
constexpr uint32_t finish_blocks(uint32_t max_samples) { return (max_samples + kFinishChunk - 1) / kFinishChunk; }

// One block's sums in sorted_finish; the last block adds them up in a fixed order.
struct FinishPartial {
  float dense_grad[2];  // dL/dw, dL/db
  double metrics[3];    // weighted loss, squared error, correct
};

// Adam's step size for t = 1, 2, ..., computed on the host with adam_step_size (so the device uses
// exactly the CPU twin's values, with no double pow per row). It stops where the step size has
// settled: from its last entry on, adam_step_size(hyper, t) rounds to that same float for every
// larger t. Empty when that takes more than kMaxStepSizes steps (betas within ~1e-5 of 1); the
// kernels then compute adam_step_size themselves.
constexpr std::size_t kMaxStepSizes = std::size_t{1} << 18;
std::vector<float> adam_step_size_table(const AdamHyper& hyper);

struct SortedArgs {
  const PairRecord* pairs;  // (P,)
  uint32_t pair_count;
  int batch;  // pairs per step
  long long steps_per_epoch;
  uint64_t seed;
  int negatives;
  uint32_t max_samples;  // batch * (1 + negatives): the scratch below is sized for it

  float* table;         // (N, D)
  float* table_m;       // (N, D) adam, lazy-adam, radam
  float* table_v;       // (N, D) adam, lazy-adam, radam
  float* row_acc;       // (N,) adagrad
  long long* row_step;  // (N,) lazy-adam, radam
  uint32_t* touched;    // (ceil(N / 32),) adam: rows this step updated; the decay skips and clears them
  uint32_t rows;
  int dims;
  bool normalize;
  Head head;
  Optimizer optimizer;
  SecondMoment second_moment;
  AdamHyper adam;
  AdamCoefficients coef;
  long long burn_in;        // rsgd, radam: epochs at kBurnInFactor times the learning rate
  const float* step_sizes;  // (step_size_count,) adam_step_size_table: entry t - 1 is step t's
  uint32_t step_size_count;

  // Per-step scratch; lookups are 2 * max_samples, one per row read.
  uint32_t* lookup_row;    // (2S,) row of each lookup; `rows` (sorts last) past this step's samples
  uint32_t* lookup_id;     // (2S,) 0, 1, 2, ...: the sort's values
  uint32_t* sorted_row;    // (2S,)
  uint32_t* sorted_id;     // (2S,)
  uint32_t* unique_row;    // (2S,) row of each run
  uint32_t* run_length;    // (2S,)
  uint32_t* run_offset;    // (2S,) exclusive sum of run_length
  uint32_t* hot_runs;      // (2S / kHotRunLength + 1,)
  float* lookup_grad;      // (2S, D)
  float* sample_partials;  // (5, S): dL/dw, dL/db, weighted loss, squared error, correct; S = max_samples
  SortedScalars* scalars;
  FinishPartial* finish_partials;  // (finish_blocks(S),) sorted_finish's per-block sums
  int key_bits;                    // bits of a row id the sort looks at (enough for `rows` itself)
  void* cub_temp;
  std::size_t cub_temp_bytes;
  int sm_count;
  int rank, ranks;  // K > 1 ranks: this rank of K, which computes its rank_slice of each step's samples; 0 of 1 alone
  // The rows the forward reads: `table`, or (row sharded) the rows received from their owners.
  const float* read_table;
  // Row sharded: this step's samples as the host planned them (ShardPlan::local_samples, ids into
  // read_table), and lookup_row / lookup_id uploaded with them; null: the forward draws the samples.
  const PairRecord* planned_samples;
};

// What the all-gather of K ranks carries per sample (sample_exchange.hpp): the lookups' gradients
// and the partials (data parallel); the partials only (row sharded: gradients go to their owners).
constexpr int exchanged_dims(const SortedArgs& a) { return a.planned_samples ? 0 : a.dims; }

// Words of the touched-row bitmap for `rows` rows. In 64 bits: (rows + 31) / 32 in uint32_t wraps
// to 0 for rows past 2^32 - 32, and the GPU path takes up to 2^32 - 2 rows.
constexpr std::size_t touched_bitmap_words(uint64_t rows) { return static_cast<std::size_t>((rows + 31) / 32); }

// Row widths the kernels are instantiated for; anything else gets unsupported_dims_message().
bool sorted_dims_supported(int dims);
std::string unsupported_dims_message(int dims);

// CUB scratch the step needs for 2 * max_samples lookups.
std::size_t sorted_cub_temp_bytes(uint32_t max_samples, int key_bits);

// One training step: forward and backward, sort, segments, optimizer, Dense update. Checks every launch.
// It reads no per-step arguments (the step counter is in `scalars`), so it can be captured once
// as a CUDA graph and replayed for every step while `args` stays the same.
void launch_sorted_step(const SortedArgs& args, cudaStream_t stream);

// The step in two halves, for K > 1 ranks (data parallel) to exchange their samples between them:
// forward and backward of this rank's slice; then sort, segments, optimizer and Dense update of
// every sample's lookups, once the exchange has brought them (sample_exchange.hpp):
//   launch_sorted_forward, launch_pack_slice (this rank's chunk), all-gather of the K chunks,
//   launch_unpack_slices, launch_sorted_update.
void launch_sorted_forward(const SortedArgs& args, cudaStream_t stream);
void launch_sorted_update(const SortedArgs& args, cudaStream_t stream);
// `chunk`: exchange_chunk(max_samples, dims, ranks) floats; `gathered`: ranks of them, in rank order.
void launch_pack_slice(const SortedArgs& args, float* chunk, cudaStream_t stream);
void launch_unpack_slices(const SortedArgs& args, const float* gathered, cudaStream_t stream);

// Row i of `to` = row index[i] of `from`, for i < count (D floats a row): a row sharded step's
// rows to send and gradients to send.
void launch_gather_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims, int sm_count,
                        cudaStream_t stream);
// Row index[i] of `to` = row i of `from`: the gradients received, into their lookups.
void launch_scatter_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims, int sm_count,
                         cudaStream_t stream);

}  // namespace cudaembed
