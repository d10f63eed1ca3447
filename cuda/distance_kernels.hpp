// Launchers of distance_kernels.cu: squared distances between rows, one row_sq_distance per output.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cudaembed {

// out (n, n) = squared distances of the rows of x (n, dims).
void launch_all_pairs_sq_distances(const float* x, int64_t n, int dims, float* out, cudaStream_t stream);

// out (n,) = squared distances from row `query` of x (n, dims) to every row.
void launch_row_sq_distances(const float* x, int64_t n, int dims, int64_t query, float* out, cudaStream_t stream);

}  // namespace cudaembed
