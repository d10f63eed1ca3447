// The training loop: epochs over a backend, the weights handed to a callback after each.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

struct EpochRecord {
  int64_t epoch = 0;  // 1-based: the number of epochs completed
  EpochMetrics metrics;
  double seconds = 0;  // wall time of this epoch, the copy back included
};

// Called after each whole epoch with the training state. Its parameters (table, Dense layer, step)
// are that epoch's when the WeightsWanted predicate says so for the epoch; on other epochs they
// are an earlier epoch's and are not to be read. Returning false ends training after this epoch.
using EpochCallback = std::function<bool(const EpochRecord&, const ModelState&)>;
// Whether the callback reads the parameters after `epoch` (1-based, as EpochRecord::epoch). Only
// then are they copied back from the backend: at 10M x 128 that is 5 GB an epoch.
using WeightsWanted = std::function<bool(int64_t epoch)>;

// Thrown when the loss or a parameter stops being finite; the message names the epoch (and, on the
// CPU, the step).
class Divergence : public Error {
 public:
  using Error::Error;
};

// Trains up to `epochs` more epochs from `state` (updated in place: parameters after each epoch
// that `weights_wanted` asks for, everything, the optimizer state included, at the end).
// `weights_wanted` empty: every epoch's parameters are copied back when there is an `on_epoch`;
// none when there is not. `first_epoch` is the number of whole epochs already done (records count
// on from it). When `stop` becomes true training ends after the current step (CPU) or epoch
// (CUDA). `in_progress`, if given, holds on entry the sums of an epoch that a mid-epoch checkpoint
// had started (state.step is then inside it), and on return those of an epoch left unfinished by
// `stop` (samples == 0 when none). Returns one record per whole epoch trained; throws Divergence
// instead of handing on non-finite weights, from the backend's own check
// (EpochMetrics::parameters_finite) where it makes one, else from a copy of the parameters.
std::vector<EpochRecord> train(Backend& backend, const PairSet& pairs, ModelState& state, int64_t epochs,
                               const EpochCallback& on_epoch, int64_t first_epoch = 0,
                               const std::atomic<bool>* stop = nullptr, EpochMetrics* in_progress = nullptr,
                               const WeightsWanted& weights_wanted = {});

}  // namespace cudaembed
