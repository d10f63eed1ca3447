// Kernels finishing cuBLAS's Gram matrix into squared distances.
#include "cuda_check.hpp"
#include "distance_kernels.hpp"

namespace cudaembed {
namespace {

// norms[i] = ||x_i||^2 for x (n, dims).
__global__ void row_sq_norms(const float* x, int64_t n, int dims, float* norms) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float s = 0;
    for (int k = 0; k < dims; ++k) s += x[i * dims + k] * x[i * dims + k];
    norms[i] = s;
  }
}

// gram (n, n) = X X^T becomes d(i, j) = n_i + n_j - 2 g(i, j), clamped at 0 (rounding), diagonal 0.
__global__ void gram_to_sq_distances(const float* norms, int64_t n, float* gram) {
  const int64_t total = n * n;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / n, j = idx % n;
    gram[idx] = i == j ? 0.0f : fmaxf(0.0f, norms[i] + norms[j] - 2.0f * gram[idx]);
  }
}

}  // namespace

void launch_row_sq_norms(const float* x, int64_t n, int dims, float* norms, cudaStream_t stream) {
  row_sq_norms<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(x, n, dims, norms);
  CE_CHECK_LAUNCH("row_sq_norms");
}

void launch_gram_to_sq_distances(const float* norms, int64_t n, float* gram, cudaStream_t stream) {
  gram_to_sq_distances<<<1024, 256, 0, stream>>>(norms, n, gram);
  CE_CHECK_LAUNCH("gram_to_sq_distances");
}

}  // namespace cudaembed
