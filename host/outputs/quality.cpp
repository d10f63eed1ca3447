// Rank correlation of pairwise distances: the number that says the embedding looks like RGB.
#include "cudaembed/quality.hpp"

#include <algorithm>
#include <cmath>
#include <future>
#include <iterator>
#include <limits>
#include <numeric>

#include "cudaembed/distances.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

// Ranks from 0, ties sharing their average. The values are sorted with their indices beside them
// (not indices compared through the values): 3x faster on the 208,000 colour distances.
std::vector<double> average_ranks(std::span<const double> v) {
  std::vector<std::pair<double, std::size_t>> order(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) order[i] = {v[i], i};
  std::sort(order.begin(), order.end());
  std::vector<double> ranks(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && order[j + 1].first == order[i].first) ++j;
    const double rank = 0.5 * static_cast<double>(i + j);  // ties share their average rank
    for (std::size_t k = i; k <= j; ++k) ranks[order[k].second] = rank;
    i = j + 1;
  }
  return ranks;
}

}  // namespace

double spearman(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size()) throw Error("spearman: inputs differ in length");
  // The two sorts are most of the time outside training in the default run: one on another core.
  auto ranks_of_y = std::async(std::launch::async, [y] { return average_ranks(y); });
  const std::vector<double> rx = average_ranks(x), ry = ranks_of_y.get();
  const double n = static_cast<double>(x.size());
  const double mean = (n - 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

namespace {

// Every j != i whose distance from i is at or below the k-th smallest.
std::vector<int64_t> knn_with_ties(std::span<const float> row, int64_t self, int k, std::vector<float>& scratch) {
  scratch.clear();
  for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j)
    if (j != self) scratch.push_back(row[j]);
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end());
  const float kth = scratch[k - 1];
  std::vector<int64_t> out;
  for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j)
    if (j != self && row[j] <= kth) out.push_back(j);
  return out;
}

}  // namespace

double knn_overlap(std::span<const float> emb_distances, std::span<const float> ref_distances, int64_t n, int k) {
  if (n < 2) throw Error("knn_overlap: needs at least 2 points");
  k = static_cast<int>(std::min<int64_t>(k, n - 1));
  std::vector<float> scratch;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto a = knn_with_ties(emb_distances.subspan(i * n, n), i, k, scratch);
    const auto b = knn_with_ties(ref_distances.subspan(i * n, n), i, k, scratch);
    std::vector<int64_t> common;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
    total += static_cast<double>(std::min<std::size_t>(common.size(), k)) / k;
  }
  return total / static_cast<double>(n);
}

EmbeddingQuality evaluate_embedding(std::span<const float> embedding, int dims, std::span<const float> reference,
                                    int ref_dims, int k, bool use_gpu) {
  const auto n = static_cast<int64_t>(embedding.size() / dims);
  if (n != static_cast<int64_t>(reference.size() / ref_dims)) throw Error("evaluate: row counts differ");
  const auto emb = all_pairs_sq_distances(embedding, dims, use_gpu);
  const auto ref = all_pairs_sq_distances(reference, ref_dims, use_gpu);
  std::vector<double> upper_emb, upper_ref;
  upper_emb.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
  upper_ref.reserve(upper_emb.capacity());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      upper_emb.push_back(emb[i * n + j]);
      upper_ref.push_back(ref[i * n + j]);
    }
  return {spearman(upper_emb, upper_ref), knn_overlap(emb, ref, n, k), k};
}

}  // namespace cudaembed
