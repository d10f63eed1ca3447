// Many epochs a launch for the persistent kernels: the snapshots a launch writes on the device
// (one per epoch: its sums, the Dense layer, the table and both moments), the two pinned host
// copies they are copied to, and the epoch the trainer was last served. EpochChunks decides what
// each launch trains.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "cudaembed/backend.hpp"
#include "device_buffer.hpp"
#include "epoch_chunks.hpp"
#include "train_kernels.hpp"

namespace cudaembed {

class EpochSnapshots {
 public:
  // For a rows x dims table trained on `pairs` pairs, at most `per_launch` epochs a launch, on `stream`.
  EpochSnapshots(int64_t rows, int dims, uint64_t pairs, int per_launch, cudaStream_t stream);
  ~EpochSnapshots();  // waits for the stream: a launch may still be copying into the host copies
  EpochSnapshots(const EpochSnapshots&) = delete;
  EpochSnapshots& operator=(const EpochSnapshots&) = delete;

  // The trainer will ask for at most `epochs` epochs (Backend::plan_epochs).
  void plan(int64_t epochs) { chunks_.plan(epochs); }
  // The trainer's next epoch: starts the launches EpochChunks asks for (runner with `args`, its
  // epochs and this object's snapshot buffers), waits for the one that trained the epoch and its
  // copy, and returns the epoch's metrics; its compute seconds are the launch's over its epochs.
  EpochMetrics next_epoch(const StepArgs& args, EpochRunner& runner);
  // The state at the end of the epoch last served, as Backend::fetch gives it; false before the
  // first epoch (the state is then the one on the device).
  bool fetch(ModelState& state, bool with_optimizer) const;

 private:
  struct HostCopy {
    PinnedBuffer<EpochSnapshot> heads;  // (per_launch,)
    PinnedBuffer<float> params;         // (per_launch, 3, N, D)
    cudaEvent_t start = nullptr, end = nullptr, copied = nullptr;
    int epochs = 0;  // in the launch it holds
    HostCopy(std::size_t epochs, std::size_t values);
    ~HostCopy();
  };
  void start_launch(const StepArgs& args, EpochRunner& runner, EpochChunks::Launch launch);
  // Floats of an epoch's snapshot after its head: the table, m and v.
  std::size_t epoch_values() const { return 3 * static_cast<std::size_t>(rows_) * static_cast<std::size_t>(dims_); }

  int64_t rows_;
  int dims_;
  uint64_t pairs_;
  cudaStream_t stream_;
  EpochChunks chunks_;
  DeviceBuffer<EpochSnapshot> heads_;  // (per_launch,) written by the launch in flight
  DeviceBuffer<float> params_;         // (per_launch, 3, N, D)
  HostCopy copies_[2];
  const HostCopy* served_ = nullptr;  // the copy and epoch the trainer was last given
  int served_epoch_ = 0;
};

}  // namespace cudaembed
