// The CUDA backend's sorted-segment path: owns the device table, optimizer state and per-step
// scratch, and trains whole epochs with launch_sorted_step.
#pragma once

#include <memory>

#include <cuda_runtime.h>

#include "cudaembed/backend.hpp"
#include "cudaembed/distributed.hpp"
#include "nccl_communicator.hpp"

namespace cudaembed {

// How an epoch's steps are launched: one step captured as a CUDA graph and replayed (one launch
// a step instead of about ten), or kernel by kernel. Both run the same kernels with the same
// arguments, so they give the same bits; `direct` is there to test that.
enum class SortedLaunch { graph, direct };

// Row sharding on GPUs: this rank holds the rows r with place.owner(r) == place.rank of a
// `rows`-row table, and the state a SortedTrainer takes is that shard (init_model_shard).
struct RowShard {
  RowPlacement place;
  int64_t rows = 0;
};

class SortedTrainer {
 public:
  // Checks that everything fits on the device (throws Error with the breakdown if not), then
  // uploads the pairs and the state, and (SortedLaunch::graph) captures one step.
  // `state.step` must be at an epoch boundary. With `ranks` (data parallel, K >= 1 ranks, each
  // with the same pairs and state), this rank computes its slice of every step's samples and
  // their all-gather (NCCL's) brings the rest (sample_exchange.hpp), then every rank applies the whole
  // step: the replicas stay the same bits as one GPU's. The exchange is launched kernel by kernel.
  // With `shard` too (row sharded), the host plans each step (plan_shard_step, as the CPU's sharded
  // step does): owners send the rows each rank's slice reads, each rank runs forward and backward
  // of its slice, the lookups' gradients go to their rows' owners, and each owner sorts, sums and
  // applies its rows' lookups: the shards hold the bits of one GPU's rows.
  SortedTrainer(const TrainConfig& config, const PairSet& pairs, const ModelState& state, const cudaDeviceProp& props,
                cudaStream_t stream, SortedLaunch launch = SortedLaunch::graph, DeviceRanks* ranks = nullptr,
                const RowShard* shard = nullptr);
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
