// A row's nearest rows in a trained table, ranked by the model's own head: what `cudaembed
// neighbours` prints and what the Python module's most_similar returns.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cudaembed/run_dir.hpp"

namespace cudaembed {

struct Neighbour {
  std::size_t row;
  float embedding_distance;  // Euclidean, in the space the model compares (normalised if it was); Poincaré for poincare
  float rgb_distance;        // Euclidean in [0, 1]^3
  float similarity;          // a dot or cosine head's: the dot product of the rows as the model compares them
};

// What neighbours are ranked by: the run's head's own measure. "Euclidean distance" (nearest first),
// "Poincaré distance" (nearest first), "dot product" or "cosine similarity" (most similar first).
std::string neighbour_measure(const RunDir& run);

// The k rows nearest to row `query` in embedding space by neighbour_measure(run), nearest first;
// ties go to the lower row.
std::vector<Neighbour> nearest_neighbours(const RunDir& run, std::size_t query, int k, bool use_gpu);

}  // namespace cudaembed
