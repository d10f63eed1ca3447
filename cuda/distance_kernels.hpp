// Launchers of distance_kernels.cu.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cudaembed {

void launch_row_sq_norms(const float* x, int64_t n, int dims, float* norms, cudaStream_t stream);
void launch_gram_to_sq_distances(const float* norms, int64_t n, float* gram, cudaStream_t stream);

}  // namespace cudaembed
