// Squared Euclidean distances between rows, for neighbour queries and quality metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cudaembed {

// Every distance here is row_sq_distance (math.hpp): direct differences summed in double, rounded
// once to float. The CPU and the GPU call the same helper, so their results are bit-identical and
// `--device` cannot change a ranking, a tie, Spearman or the k-NN overlap.

// (N, N) squared distances of the rows of points (N, D), on the GPU when `use_gpu`, else on the
// CPU. Zero diagonal, exactly symmetric.
std::vector<float> all_pairs_sq_distances(std::span<const float> points, int dims, bool use_gpu);

// (N,) squared distances from row `query` of points (N, D) to every row: row `query` of the matrix
// above, bit for bit, in O(N D) time and memory.
std::vector<float> sq_distances_from_row(std::span<const float> points, int dims, std::size_t query, bool use_gpu);

// The CUDA implementations (cuda/all_pairs.cpp); they throw Error without a device.
std::vector<float> cuda_all_pairs_sq_distances(std::span<const float> points, int dims);
std::vector<float> cuda_sq_distances_from_row(std::span<const float> points, int dims, std::size_t query);

// The most rows the all-pairs matrix is built for (the matrix is N^2 floats).
constexpr int64_t kMaxAllPairsRows = 20000;

}  // namespace cudaembed
