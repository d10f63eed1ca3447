// The CUDA backend's sorted-segment path: owns the device table, optimizer state and per-step
// scratch, and trains whole epochs with launch_sorted_step.
#pragma once

#include <memory>

#include <cuda_runtime.h>

#include "cudaembed/backend.hpp"

namespace cudaembed {

class SortedTrainer {
 public:
  // Checks that everything fits on the device (throws Error with the breakdown if not), then
  // uploads the pairs and the state. `state.step` must be at an epoch boundary.
  SortedTrainer(const TrainConfig& config, const PairSet& pairs, const ModelState& state, const cudaDeviceProp& props,
                cudaStream_t stream);
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
