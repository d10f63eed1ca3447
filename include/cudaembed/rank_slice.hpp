// How K ranks split a count of items (a step's samples): contiguous slices in rank order. Host and
// device alike: the GPU's forward finds its rank's samples with it, and the exchange where each
// rank's slice goes (sample_exchange.hpp).
#pragma once

#include <cstddef>

#include "cudaembed/math.hpp"

namespace cudaembed {

struct Slice {
  std::size_t begin = 0, end = 0;
};

// The part [begin, end) of `count` items that rank `rank` of `size` takes: contiguous, in rank
// order, the first count % size ranks one longer (so rank 0's slice is never shorter than another's).
CE_HD Slice rank_slice(std::size_t count, int rank, int size) {
  const auto r = static_cast<std::size_t>(rank), k = static_cast<std::size_t>(size);
  const std::size_t base = count / k, extra = count % k;
  const std::size_t begin = r * base + (r < extra ? r : extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

}  // namespace cudaembed
