// The divergence guard on the device: whether a parameter table holds a NaN or an Inf, found
// where the table lives, so that an epoch whose weights nobody reads needs no copy back.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace cudaembed {

// Sets *flag (device memory) to 1 if any of values[0, count) (device memory, (N, D) flattened)
// is not finite; leaves it as it is otherwise, so the caller zeroes it first. On `stream`.
void launch_nonfinite_check(const float* values, std::size_t count, unsigned int* flag, int sm_count,
                            cudaStream_t stream);

}  // namespace cudaembed
