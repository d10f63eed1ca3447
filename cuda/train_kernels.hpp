// Device-side training state, the kernel launchers and the registry of kernel variants.
// Plain C++: included by .cu and .cpp files alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cudaembed/math.hpp"

namespace cudaembed {

// Scalars that live in device memory so that launches need no per-step arguments: a step's batch
// follows from `step`, and Adam's step size is set by the step's last block.
struct DeviceScalars {
  long long step;            // Adam steps completed
  unsigned int blocks_done;  // last-block-done ticket of the forward/backward kernel
  float step_size;           // Adam step size of the step being applied
  float dense[2];            // Dense(1): weight, bias
  float dense_m[2], dense_v[2];
  float dense_grad[2];
  // This epoch's per-sample sums (reset by the host before each epoch), for the variants that train
  // one epoch a launch; the persistent kernels write each epoch's to its EpochSnapshot.
  double loss_sum;
  double squared_error_sum;
  unsigned long long correct;
};

// Where the persistent kernel's cycles go (bench --phase-profile), summed over its launches: each
// warp's cycles in phase A (forward and backward) and phase B (the optimizer), and the whole loop's
// cycles on thread 0; what neither phase accounts for is barrier waits and stamp overhead.
struct PhaseCycles {
  unsigned long long total;  // the step loop, thread 0
  unsigned long long steps;
  unsigned long long work_a[32], work_b[32];  // per warp
};

// The end of one epoch of a persistent launch, for the host: its sums, its Dense layer and
// whether the table is finite. The table, m and v of that epoch follow in
// StepArgs::snapshot_params.
struct EpochSnapshot {
  double loss_sum;
  double squared_error_sum;
  unsigned long long correct;
  long long step;  // Adam steps completed
  float dense[2], dense_m[2], dense_v[2];
  unsigned int nonfinite;  // 1 when a value of the table is NaN or Inf
};

// Cycles per step by phase, as a few lines of text for the bench log.
std::string format_phase_cycles(const PhaseCycles& cycles, const std::string& kernel, double sm_clock_mhz);

// Everything a step kernel reads or writes. Shapes in comments.
struct StepArgs {
  const uint32_t* pair_a;  // (P,)
  const uint32_t* pair_b;  // (P,)
  const float* label;      // (P,)
  uint32_t pairs;
  int batch;
  long long steps_per_epoch;
  uint64_t seed;   // shuffle seed
  float* table;    // (N, D)
  float* table_m;  // (N, D)
  float* table_v;  // (N, D)
  float* grad;     // (N, D), all zero between steps
  float* grad_sq;  // (N, D) per-lookup squared gradients (SecondMoment::lookups), else null
  long long rows;
  int dims;
  bool normalize;
  AdamHyper adam;
  AdamCoefficients coef;
  PairForward<float>* forward_cache;  // (batch,) the baseline's forward results, kept for its backward
  DeviceScalars* scalars;
  int sm_count;
  PhaseCycles* phase_cycles;  // null unless profiling phases (persistent only)
  // The persistent kernels train `epochs` epochs a launch and write each one's snapshot; the
  // others train one epoch and write none.
  int epochs;
  EpochSnapshot* snapshot_heads;  // (epochs,)
  float* snapshot_params;         // (epochs, 3, N, D): the table, m and v at each epoch's end
};

// Kernels launched per step (step_kernels.cu). Each trains one whole epoch, every step, on `stream`.
void run_epoch_baseline(const StepArgs& args, cudaStream_t stream);  // gather+distance, loss+backward, Adam
void run_epoch_fused(const StepArgs& args, cudaStream_t stream);     // forward+backward, Adam

// One block trains args.epochs whole epochs with the parameters in shared memory
// (persistent_kernel.cu), writing a snapshot of each; the deterministic one without float
// atomics, so that runs repeat bit for bit.
std::size_t persistent_shared_bytes(const StepArgs& args, bool deterministic);
void run_epoch_persistent(const StepArgs& args, cudaStream_t stream);
void run_epoch_deterministic(const StepArgs& args, cudaStream_t stream);

// (a, b, label) from the random stream [a bits | b bits | U bits] (3 * count,), as pairs_from_bits.
void launch_pairs_from_bits(const uint32_t* bits, const float* rgb, uint32_t colours, uint64_t count, float threshold,
                            uint32_t* a, uint32_t* b, float* label, int sm_count, cudaStream_t stream);

// Trains whole epochs with one kernel strategy. A runner may keep state between epochs (a
// captured graph), so the backend makes one per run.
class EpochRunner {
 public:
  virtual ~EpochRunner() = default;
  virtual void run_epoch(const StepArgs& args, cudaStream_t stream) = 0;
};

// A kernel variant, selectable with --kernel NAME (kernel_registry.cpp).
struct KernelVariant {
  const char* name;
  const char* description;
  // Whether the variant can train this shape on this device (shared memory, for one).
  bool (*supports)(const StepArgs& args, const cudaDeviceProp& props);
  std::unique_ptr<EpochRunner> (*make)();
  // Whether a launch trains StepArgs::epochs epochs and writes their snapshots (the persistent
  // kernels); else it trains one epoch.
  bool many_epochs_a_launch;
};

const std::vector<KernelVariant>& kernel_variants();
// Throws Error naming the allowed variants when `name` is unknown.
const KernelVariant& find_kernel_variant(const std::string& name);
// The variant --kernel auto runs for this shape: the first in kernel_variants() that supports it.
const KernelVariant& auto_kernel_variant(const StepArgs& args, const cudaDeviceProp& props);
// Whether --kernel auto trains the tutorial's model on the sorted-segment path (sorted_kernels.cu)
// instead: a table too big for shared memory whose rows are wide (the atomics bound `fused`) or
// that is big (the dense Adam pass bounds it). A function of the shape (rows, dims, batch, and
// grad_sq null or not) and the device only.
bool auto_takes_sorted_path(const StepArgs& args, const cudaDeviceProp& props);

}  // namespace cudaembed
