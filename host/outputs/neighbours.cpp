// Nearest rows by the head's own measure (include/cudaembed/neighbours.hpp).
#include "cudaembed/neighbours.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cudaembed/distances.hpp"
#include "cudaembed/math.hpp"

namespace cudaembed {

std::string neighbour_measure(const RunDir& run) {
  if (run.head == "cosine") return "cosine similarity";
  if (run.head == "dot") return "dot product";
  if (run.head == "poincare") return "Poincaré distance";
  return "Euclidean distance";
}

std::vector<Neighbour> nearest_neighbours(const RunDir& run, std::size_t query, int k, bool use_gpu) {
  const std::vector<float> table = run.effective_embedding();  // (N, D), normalised for a cosine head
  // The query's row only, N distances: the same bits as row `query` of all_pairs_sq_distances on
  // either device, so a ranking and its ties do not depend on --device.
  // A Poincaré head ranks by the Poincaré distance itself (row_poincare_distance, on the CPU).
  const bool poincare = run.head == "poincare";
  std::vector<float> row = poincare ? std::vector<float>(static_cast<std::size_t>(run.rows))
                                    : sq_distances_from_row(table, run.dims, query, use_gpu);
  const auto dims = static_cast<std::size_t>(run.dims);
  if (poincare)
    for (std::size_t j = 0; j < row.size(); ++j)
      row[j] = row_poincare_distance(&table[query * dims], &table[j * dims], run.dims);
  const auto rgb_row = sq_distances_from_row(run.rgb, 3, query, false);
  const std::size_t n = row.size();
  // A dot or cosine head compares rows by their dot product: larger is more similar.
  const bool by_similarity = run.head == "dot" || run.head == "cosine";
  std::vector<float> similarity(by_similarity ? n : 0);  // (N,)
  for (std::size_t j = 0; j < similarity.size(); ++j)
    similarity[j] = std::inner_product(table.begin() + static_cast<std::ptrdiff_t>(query * dims),
                                       table.begin() + static_cast<std::ptrdiff_t>((query + 1) * dims),
                                       table.begin() + static_cast<std::ptrdiff_t>(j * dims), 0.0f);
  std::vector<std::size_t> order;
  for (std::size_t j = 0; j < n; ++j)
    if (j != query) order.push_back(j);
  const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(k), order.size());
  auto closer = [&](std::size_t a, std::size_t b) {
    if (by_similarity) return similarity[a] > similarity[b] || (similarity[a] == similarity[b] && a < b);
    return row[a] < row[b] || (row[a] == row[b] && a < b);
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(), closer);
  std::vector<Neighbour> out;
  for (std::size_t r = 0; r < count; ++r) {
    const std::size_t j = order[r];
    out.push_back(
        {j, poincare ? row[j] : std::sqrt(row[j]), std::sqrt(rgb_row[j]), by_similarity ? similarity[j] : 0.0f});
  }
  return out;
}

}  // namespace cudaembed
