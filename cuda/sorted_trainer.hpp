// The CUDA backend's sorted-segment path: owns the device table, optimizer state and per-step
// scratch, and trains whole epochs with launch_sorted_step.
#pragma once

#include <memory>

#include <cuda_runtime.h>

#include "cudaembed/backend.hpp"
#include "nccl_communicator.hpp"

namespace cudaembed {

// How an epoch's steps are launched: one step captured as a CUDA graph and replayed (one launch
// a step instead of about ten), or kernel by kernel. Both run the same kernels with the same
// arguments, so they give the same bits; `direct` is there to test that.
enum class SortedLaunch { graph, direct };

class SortedTrainer {
 public:
  // Checks that everything fits on the device (throws Error with the breakdown if not), then
  // uploads the pairs and the state, and (SortedLaunch::graph) captures one step.
  // `state.step` must be at an epoch boundary. With `ranks` (data parallel, K >= 1 ranks, each
  // with the same pairs and state), this rank computes its slice of every step's samples and
  // their all-gather (NCCL's) brings the rest (sample_exchange.hpp), then every rank applies the whole
  // step: the replicas stay the same bits as one GPU's. The exchange is launched kernel by kernel.
  SortedTrainer(const TrainConfig& config, const PairSet& pairs, const ModelState& state, const cudaDeviceProp& props,
                cudaStream_t stream, SortedLaunch launch = SortedLaunch::graph, DeviceRanks* ranks = nullptr);
  ~SortedTrainer();
  SortedTrainer(const SortedTrainer&) = delete;
  SortedTrainer& operator=(const SortedTrainer&) = delete;

  // One whole epoch; the metrics' seconds come from CUDA events.
  EpochMetrics train_epoch();
  void fetch(ModelState& state, bool with_optimizer);

 private:
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace cudaembed
