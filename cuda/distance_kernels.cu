// Squared distances between rows for neighbour queries and quality metrics: one thread per output,
// each calling row_sq_distance (math.hpp), the helper the CPU path calls, so both give the same bits.
#include <algorithm>

#include "cuda_check.hpp"
#include "cudaembed/math.hpp"
#include "distance_kernels.hpp"

namespace cudaembed {
namespace {

// out (n, n): out[i, j] = d(x_i, x_j) for x (n, dims), 0 on the diagonal as on the CPU (also for a
// non-finite row). Both halves are computed; row_sq_distance is exactly symmetric, so they match
// the CPU's mirrored upper triangle.
__global__ void all_pairs_sq_distances(const float* x, int64_t n, int dims, float* out) {
  const int64_t total = n * n;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / n, j = idx % n;
    out[idx] = i == j ? 0.0f : row_sq_distance(x + i * dims, x + j * dims, dims);
  }
}

// out (n,): out[j] = d(x_query, x_j), 0 at j = query.
__global__ void row_sq_distances(const float* x, int64_t n, int dims, int64_t query, float* out) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < n; j += int64_t{gridDim.x} * blockDim.x)
    out[j] = j == query ? 0.0f : row_sq_distance(x + query * dims, x + j * dims, dims);
}

}  // namespace

void launch_all_pairs_sq_distances(const float* x, int64_t n, int dims, float* out, cudaStream_t stream) {
  all_pairs_sq_distances<<<1024, 256, 0, stream>>>(x, n, dims, out);
  CE_CHECK_LAUNCH("all_pairs_sq_distances");
}

void launch_row_sq_distances(const float* x, int64_t n, int dims, int64_t query, float* out, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(std::clamp<int64_t>((n + 255) / 256, 1, 1024));
  row_sq_distances<<<blocks, 256, 0, stream>>>(x, n, dims, query, out);
  CE_CHECK_LAUNCH("row_sq_distances");
}

}  // namespace cudaembed
