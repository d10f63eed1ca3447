// Checks made before a run touches the GPU, as plain functions so their messages can be tested
// without one.
#pragma once

#include <cstdint>
#include <string>

namespace cudaembed {

// The oldest compute capability this build runs on (its lowest CUDAEMBED_CUDA_ARCHITECTURES entry).
constexpr int kMinComputeCapability = 80;

// Device memory a training run allocates: the pairs, the table with its Adam state and gradients,
// and the per-batch scratch.
uint64_t training_device_bytes(uint64_t pairs, int64_t rows, int dims, int64_t batch, bool per_lookup_moment);

// Empty when the device can take the run; otherwise the message to throw.
std::string device_memory_problem(uint64_t needed, uint64_t free, uint64_t total, const std::string& device);
std::string compute_capability_problem(int major, int minor, const std::string& device);

}  // namespace cudaembed
