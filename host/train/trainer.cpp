// The training loop. NVTX ranges mark each epoch for Nsight Systems.
#include "cudaembed/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include <fmt/format.h>
#include <nvtx3/nvtx3.hpp>

namespace cudaembed {

std::vector<EpochRecord> train(Backend& backend, const PairSet& pairs, ModelState& state, int64_t epochs,
                               const EpochCallback& on_epoch, int64_t first_epoch, const std::atomic<bool>* stop,
                               EpochMetrics* in_progress, const WeightsWanted& weights_wanted) {
  backend.load(pairs, state);
  backend.plan_epochs(epochs);
  std::vector<EpochRecord> history;
  history.reserve(static_cast<std::size_t>(epochs));
  EpochMetrics carried = in_progress ? *in_progress : EpochMetrics{};
  if (in_progress) *in_progress = {};
  for (int64_t e = 0; e < epochs && !(stop && stop->load()); ++e) {
    nvtx3::scoped_range range{"epoch"};
    const auto start = std::chrono::steady_clock::now();
    EpochRecord record;
    record.metrics = backend.train_epoch(stop, std::exchange(carried, {}));
    record.epoch = first_epoch + e + 1;
    // Copied back only for a callback that reads them, or to check them where the backend did not.
    const bool wanted = record.metrics.complete && on_epoch && (!weights_wanted || weights_wanted(record.epoch));
    ModelState weights;
    if (wanted || !record.metrics.parameters_finite) backend.fetch(weights, false);
    // The divergence guard: nothing non-finite reaches the caller (or a checkpoint).
    const bool finite = record.metrics.parameters_finite.value_or(false) ||
                        (!record.metrics.parameters_finite && parameters_finite(weights));
    if (!std::isfinite(record.metrics.loss()) || !finite) {
      const std::string where =
          record.metrics.first_nonfinite_step >= 0
              ? fmt::format(", first at step {} of the epoch", record.metrics.first_nonfinite_step)
              : std::string();
      throw Divergence(
          fmt::format("training diverged in epoch {}: the {} became non-finite (NaN or Inf){}; try a smaller --lr",
                      record.epoch, std::isfinite(record.metrics.loss()) ? "parameters" : "loss", where));
    }
    if (wanted) {
      state.table = std::move(weights.table);
      std::copy(weights.dense, weights.dense + 2, state.dense);
      state.step = weights.step;
    }
    if (!record.metrics.complete) {  // stopped inside the epoch: no record, its sums go back
      if (in_progress) *in_progress = record.metrics;
      break;
    }
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(record);
    if (on_epoch && !on_epoch(record, state)) break;
  }
  backend.fetch(state, true);  // the final state, always in full
  return history;
}

}  // namespace cudaembed
