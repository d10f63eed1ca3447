// Squared distances between rows on the CPU, or dispatched to the CUDA kernels; both call
// row_sq_distance (math.hpp), so the two agree bit for bit.
#include "cudaembed/distances.hpp"

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"

namespace cudaembed {
namespace {

// N of points (N, dims), checking the shape.
int64_t rows_of(std::span<const float> points, int dims) {
  if (dims <= 0 || points.size() % static_cast<std::size_t>(dims) != 0)
    throw Error(fmt::format("distances: {} values do not make rows of {}", points.size(), dims));
  return static_cast<int64_t>(points.size() / static_cast<std::size_t>(dims));
}

}  // namespace

std::vector<float> all_pairs_sq_distances(std::span<const float> points, int dims, bool use_gpu) {
  const int64_t n = rows_of(points, dims);
  if (n > kMaxAllPairsRows)
    throw Error(fmt::format("{} rows: all-pairs distances are limited to {} rows ({} GB as float32)", n,
                            kMaxAllPairsRows, kMaxAllPairsRows * kMaxAllPairsRows * 4 / 1000000000.0));
  if (use_gpu) return cuda_all_pairs_sq_distances(points, dims);
  // The upper triangle, mirrored: row_sq_distance is exactly symmetric, so the GPU, which computes
  // both halves, gets the same matrix.
  std::vector<float> out(static_cast<std::size_t>(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      out[i * n + j] = out[j * n + i] = row_sq_distance(&points[i * dims], &points[j * dims], dims);
  return out;
}

std::vector<float> sq_distances_from_row(std::span<const float> points, int dims, std::size_t query, bool use_gpu) {
  const int64_t n = rows_of(points, dims);
  if (query >= static_cast<std::size_t>(n))
    throw Error(fmt::format("distances: row {} of a table of {} rows", query, n));
  if (use_gpu) return cuda_sq_distances_from_row(points, dims, query);
  std::vector<float> out(static_cast<std::size_t>(n));
  const float* q = &points[query * dims];
  for (int64_t j = 0; j < n; ++j)
    out[j] = j == static_cast<int64_t>(query) ? 0.0f : row_sq_distance(q, &points[j * dims], dims);
  return out;
}

}  // namespace cudaembed
