// How well an embedding orders its rows like a reference space does (RGB for the colours).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cudaembed {

// Spearman rank correlation of x and y (average ranks for ties). NaN when either is constant.
double spearman(std::span<const double> x, std::span<const double> y);

// Mean over points of |kNN_embedding(i) ∩ kNN_reference(i)| / k, from (n, n) squared-distance
// matrices. Ties are counted fairly: each kNN set holds every point at or within the k-th
// distance (duplicate colours share an RGB value), and the overlap is capped at k. 1 when the
// two spaces agree; about k / n for unrelated ones.
double knn_overlap(std::span<const float> emb_distances, std::span<const float> ref_distances, int64_t n, int k);

struct EmbeddingQuality {
  double spearman;     // rank correlation of all pairwise distances
  double knn_overlap;  // mean k-nearest-neighbour overlap
  int k;
};

// Both numbers for an embedding (N, dims) against a reference space (N, ref_dims); the distance
// matrices on the GPU when use_gpu, bit-identical to the CPU's, so the numbers do not depend on it.
EmbeddingQuality evaluate_embedding(std::span<const float> embedding, int dims, std::span<const float> reference,
                                    int ref_dims, int k, bool use_gpu);

}  // namespace cudaembed
