// Training settings shared by the trainer and both backends. Defaults are the tutorial's.
#pragma once

#include <cstdint>
#include <string>

#include "cudaembed/math.hpp"

namespace cudaembed {

struct TrainConfig {
  int dims = 2;
  bool normalize = false;  // L2-normalise each row before the distance
  int64_t epochs = 500;
  int64_t batch = 512;  // the last partial batch of an epoch is kept
  AdamHyper adam;
  SecondMoment second_moment = SecondMoment::lookups;
  uint64_t seed = 42;           // pairs, initial weights and every epoch's shuffle derive from it
  std::string kernel = "auto";  // CUDA kernel variant; ignored by the CPU backend
};

SecondMoment parse_second_moment(const std::string& name);
const char* to_string(SecondMoment moment);

// Batches per epoch over `pairs` pairs: ceil(pairs / batch).
inline int64_t steps_per_epoch(uint64_t pairs, int64_t batch) {
  return static_cast<int64_t>((pairs + static_cast<uint64_t>(batch) - 1) / static_cast<uint64_t>(batch));
}

}  // namespace cudaembed
