// All-pairs squared Euclidean distances, for neighbour queries and quality metrics.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cudaembed {

// (N, N) squared distances of the rows of points (N, D), computed as ||a||^2 + ||b||^2 - 2 a.b:
// on the GPU through cuBLAS when `use_gpu`, else on the CPU. Clamped at 0, zero diagonal.
std::vector<float> all_pairs_sq_distances(std::span<const float> points, int dims, bool use_gpu);

// The CUDA implementation (cuda/all_pairs.cpp); throws Error without a device.
std::vector<float> cuda_all_pairs_sq_distances(std::span<const float> points, int dims);

// The most rows the all-pairs matrix is built for (the matrix is N^2 floats).
constexpr int64_t kMaxAllPairsRows = 20000;

}  // namespace cudaembed
