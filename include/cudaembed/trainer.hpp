// The training loop: epochs over a backend, the weights handed to a callback after each.
#pragma once

#include <functional>
#include <vector>

#include "cudaembed/backend.hpp"

namespace cudaembed {

struct EpochRecord {
  int64_t epoch = 0;  // 1-based: the number of epochs completed
  EpochMetrics metrics;
  double seconds = 0;  // wall time of this epoch, the copy back included
};

// Called after each epoch with the parameters just copied back from the backend.
using EpochCallback = std::function<void(const EpochRecord&, const ModelState&)>;

// Trains `epochs` epochs from `state` (updated in place: parameters, and at the end the optimizer
// state too). Returns one record per epoch.
std::vector<EpochRecord> train(Backend& backend, const PairSet& pairs, ModelState& state, int64_t epochs,
                               const EpochCallback& on_epoch);

}  // namespace cudaembed
