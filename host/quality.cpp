// Rank correlation of pairwise distances: the number that says the embedding looks like RGB.
#include "cudaembed/quality.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

std::vector<double> average_ranks(std::span<const double> v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
  std::vector<double> ranks(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j);  // ties share their average rank
    for (std::size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

}  // namespace

double spearman(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size()) throw Error("spearman: inputs differ in length");
  const auto rx = average_ranks(x), ry = average_ranks(y);
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

std::vector<double> pairwise_sq_distances(std::span<const float> points, int dims) {
  const std::size_t n = points.size() / dims;
  std::vector<double> out;
  out.reserve(n * (n - 1) / 2);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      double d = 0;
      for (int k = 0; k < dims; ++k) {
        const double diff = static_cast<double>(points[i * dims + k]) - points[j * dims + k];
        d += diff * diff;
      }
      out.push_back(d);
    }
  return out;
}

double distance_spearman(std::span<const float> embedding, int dims, std::span<const float> reference, int ref_dims) {
  if (embedding.size() / dims != reference.size() / ref_dims) throw Error("distance_spearman: row counts differ");
  return spearman(pairwise_sq_distances(embedding, dims), pairwise_sq_distances(reference, ref_dims));
}

}  // namespace cudaembed
