// Many epochs a launch, for the persistent kernels: which epochs each launch trains, and which
// host copy serves the trainer's next epoch. A launch writes a snapshot of every epoch it trains
// (EpochSnapshots), and they are copied to one of two host copies: the trainer reads one launch's
// epochs while the next launch trains into the other. Plain C++, so the CPU tests hold it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

namespace cudaembed {

// Epochs a launch trains: as many as asked for (TrainConfig::epochs_per_launch), but no more than
// make kStepsPerLaunch steps, so that a stop (Ctrl-C waits for the launch in flight) or the next
// progress line never waits on much more than that: 8,192 steps of the colours' 4.08 us (H200,
// 2026-12-04) is about 33 ms, 41 of its epochs. At least one.
constexpr int64_t kStepsPerLaunch = 8192;
inline int epochs_per_launch(int64_t steps_per_epoch, int wanted) {
  const int64_t fit = kStepsPerLaunch / std::max<int64_t>(steps_per_epoch, 1);
  return static_cast<int>(std::clamp<int64_t>(fit, 1, std::max(wanted, 1)));
}

class EpochChunks {
 public:
  struct Launch {
    int copy;    // the host copy (0 or 1) its snapshots go to
    int epochs;  // epochs it trains
  };
  struct Served {
    int copy;   // where the epoch's snapshot is
    int epoch;  // its index among its launch's epochs
  };

  explicit EpochChunks(int per_launch) : per_launch_(std::max(per_launch, 1)) {}

  // The trainer will ask for at most `epochs` more epochs: launches may train ahead up to there
  // and never past it. The first launch trains one epoch, so that the first epoch (with the
  // module load and the upload) is served at once and timed apart from the rest; the next
  // launch starts with it. Without a plan (or past it), one epoch a launch, when asked for.
  void plan(int64_t epochs) { planned_ = std::max<int64_t>(epochs, 0); }

  // The trainer asks for its next epoch. Calls `start(Launch)` for each launch to start now, in
  // stream order: the one that trains this epoch, if none has, then the one after it, so that it
  // trains while the host reads this one's epochs. Returns where the epoch is.
  template <class Start>
  Served next(Start&& start) {
    if (!in_flight_.empty() && in_flight_.front().served == in_flight_.front().epochs) in_flight_.pop_front();
    if (in_flight_.empty()) begin(start, std::max(take_planned(), 1));
    if (in_flight_.size() == 1 && planned_ > 0) begin(start, take_planned());
    Chunk& chunk = in_flight_.front();
    return {chunk.copy, chunk.served++};
  }

 private:
  struct Chunk {
    int copy, epochs, served;
  };

  int take_planned() {
    const auto epochs = static_cast<int>(std::min<int64_t>(planned_, launches_ == 0 ? 1 : per_launch_));
    planned_ -= epochs;
    return epochs;
  }

  // At most two launches are unread, each with its own copy; a new one takes the copy of the
  // launch the trainer has finished reading.
  template <class Start>
  void begin(Start& start, int epochs) {
    last_copy_ = 1 - last_copy_;
    ++launches_;
    in_flight_.push_back({last_copy_, epochs, 0});
    start(Launch{last_copy_, epochs});
  }

  int per_launch_;
  int64_t planned_ = 0;
  int64_t launches_ = 0;
  int last_copy_ = 1;  // the first launch takes copy 0
  std::deque<Chunk> in_flight_;
};

}  // namespace cudaembed
