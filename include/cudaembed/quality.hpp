// How well an embedding orders its rows like a reference space does (RGB for the colours).
#pragma once

#include <span>
#include <vector>

namespace cudaembed {

// Spearman rank correlation of x and y (average ranks for ties). NaN when either is constant.
double spearman(std::span<const double> x, std::span<const double> y);

// Squared Euclidean distances of all pairs i < j of the rows of points (N, D), row-major.
std::vector<double> pairwise_sq_distances(std::span<const float> points, int dims);

// Spearman of all pairwise embedding distances against all pairwise reference distances.
double distance_spearman(std::span<const float> embedding, int dims, std::span<const float> reference, int ref_dims);

}  // namespace cudaembed
