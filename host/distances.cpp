// All-pairs squared distances on the CPU, or dispatched to cuBLAS.
#include "cudaembed/distances.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "cudaembed/error.hpp"

namespace cudaembed {

std::vector<float> all_pairs_sq_distances(std::span<const float> points, int dims, bool use_gpu) {
  const auto n = static_cast<int64_t>(points.size() / dims);
  if (n > kMaxAllPairsRows)
    throw Error(fmt::format("{} rows: all-pairs distances are limited to {} rows ({} GB as float32)", n,
                            kMaxAllPairsRows, kMaxAllPairsRows * kMaxAllPairsRows * 4 / 1000000000.0));
  if (use_gpu) return cuda_all_pairs_sq_distances(points, dims);
  // Same formula as the GPU path, accumulated in double.
  std::vector<double> norms(n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < dims; ++k) norms[i] += static_cast<double>(points[i * dims + k]) * points[i * dims + k];
  std::vector<float> out(static_cast<std::size_t>(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double dot = 0;
      for (int k = 0; k < dims; ++k) dot += static_cast<double>(points[i * dims + k]) * points[j * dims + k];
      const auto d = static_cast<float>(std::max(0.0, norms[i] + norms[j] - 2 * dot));
      out[i * n + j] = out[j * n + i] = d;
    }
  return out;
}

}  // namespace cudaembed
