// Many epochs a launch for the persistent kernels (epoch_snapshots.hpp). Every copy and event is
// on the training stream, after the launch that wrote the snapshots and before the next one:
// the next launch waits for a copy of a few hundred KB, and the host reads one launch's epochs
// while the next launch trains.
#include "epoch_snapshots.hpp"

#include <algorithm>
#include <cmath>

#include "cuda_check.hpp"

namespace cudaembed {

EpochSnapshots::HostCopy::HostCopy(std::size_t epochs, std::size_t values) : heads(epochs), params(epochs * values) {
  CE_CUDA_CHECK(cudaEventCreate(&start));
  CE_CUDA_CHECK(cudaEventCreate(&end));
  CE_CUDA_CHECK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
}

EpochSnapshots::HostCopy::~HostCopy() {
  cudaEventDestroy(start);
  cudaEventDestroy(end);
  cudaEventDestroy(copied);
}

EpochSnapshots::EpochSnapshots(int64_t rows, int dims, uint64_t pairs, int per_launch, cudaStream_t stream)
    : rows_(rows),
      dims_(dims),
      pairs_(pairs),
      stream_(stream),
      chunks_(per_launch),
      heads_(static_cast<std::size_t>(std::max(per_launch, 1))),
      params_(heads_.size() * epoch_values()),
      copies_{{heads_.size(), epoch_values()}, {heads_.size(), epoch_values()}} {
  heads_.zero(stream_);  // the struct's padding too, which the copies carry and the kernel never writes
}

EpochSnapshots::~EpochSnapshots() { cudaStreamSynchronize(stream_); }

void EpochSnapshots::start_launch(const StepArgs& args, EpochRunner& runner, EpochChunks::Launch launch) {
  StepArgs a = args;
  a.epochs = launch.epochs;
  a.snapshot_heads = heads_.data();
  a.snapshot_params = params_.data();
  HostCopy& copy = copies_[launch.copy];
  copy.epochs = launch.epochs;
  CE_CUDA_CHECK(cudaEventRecord(copy.start, stream_));
  runner.run_epoch(a, stream_);
  CE_CUDA_CHECK(cudaEventRecord(copy.end, stream_));
  const auto epochs = static_cast<std::size_t>(launch.epochs);
  CE_CUDA_CHECK(cudaMemcpyAsync(copy.heads.data(), heads_.data(), epochs * sizeof(EpochSnapshot),
                                cudaMemcpyDeviceToHost, stream_));
  CE_CUDA_CHECK(cudaMemcpyAsync(copy.params.data(), params_.data(), epochs * epoch_values() * sizeof(float),
                                cudaMemcpyDeviceToHost, stream_));
  CE_CUDA_CHECK(cudaEventRecord(copy.copied, stream_));
}

EpochMetrics EpochSnapshots::next_epoch(const StepArgs& args, EpochRunner& runner) {
  const EpochChunks::Served at = chunks_.next([&](EpochChunks::Launch l) { start_launch(args, runner, l); });
  const HostCopy& copy = copies_[at.copy];
  CE_CUDA_CHECK(cudaEventSynchronize(copy.copied));
  float ms = 0;
  CE_CUDA_CHECK(cudaEventElapsedTime(&ms, copy.start, copy.end));
  served_ = &copy;
  served_epoch_ = at.epoch;
  const EpochSnapshot& head = copy.heads.data()[at.epoch];
  EpochMetrics metrics{head.loss_sum, head.squared_error_sum, static_cast<double>(head.correct),
                       static_cast<int64_t>(pairs_), ms / 1e3 / copy.epochs};
  metrics.parameters_finite = head.nonfinite == 0 && std::isfinite(head.dense[0]) && std::isfinite(head.dense[1]);
  return metrics;
}

bool EpochSnapshots::fetch(ModelState& state, bool with_optimizer) const {
  if (!served_) return false;
  const EpochSnapshot& head = served_->heads.data()[served_epoch_];
  const std::size_t n = static_cast<std::size_t>(rows_) * dims_;
  const float* table = served_->params.data() + static_cast<std::size_t>(served_epoch_) * epoch_values();  // (3, N, D)
  state.rows = rows_;
  state.dims = dims_;
  state.step = head.step;
  state.table.assign(table, table + n);
  std::copy(head.dense, head.dense + 2, state.dense);
  if (!with_optimizer) return true;
  state.table_m.assign(table + n, table + 2 * n);
  state.table_v.assign(table + 2 * n, table + 3 * n);
  std::copy(head.dense_m, head.dense_m + 2, state.dense_m);
  std::copy(head.dense_v, head.dense_v + 2, state.dense_v);
  return true;
}

}  // namespace cudaembed
