// The training loop. NVTX ranges mark each epoch for Nsight Systems.
#include "cudaembed/trainer.hpp"

#include <chrono>

#include <nvtx3/nvtx3.hpp>

namespace cudaembed {

std::vector<EpochRecord> train(Backend& backend, const PairSet& pairs, ModelState& state, int64_t epochs,
                               const EpochCallback& on_epoch) {
  backend.load(pairs, state);
  std::vector<EpochRecord> history;
  history.reserve(static_cast<std::size_t>(epochs));
  for (int64_t e = 0; e < epochs; ++e) {
    nvtx3::scoped_range range{"epoch"};
    const auto start = std::chrono::steady_clock::now();
    EpochRecord record;
    record.metrics = backend.train_epoch();
    backend.fetch(state, false);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record.epoch = e + 1;
    history.push_back(record);
    if (on_epoch) on_epoch(record, state);
  }
  backend.fetch(state, true);
  return history;
}

}  // namespace cudaembed
