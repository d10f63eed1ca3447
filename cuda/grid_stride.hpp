// The grid of a grid-stride loop, one rule for every kernel that loops so.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cudaembed {

// Blocks of `threads` for a grid-stride loop over n items: enough to cover them, no more than 8
// a SM (enough loads in flight on every SM; each thread then takes several items), at least one.
inline unsigned grid_stride_blocks(uint64_t n, int threads, int sm_count) {
  const uint64_t covering = (n + static_cast<uint64_t>(threads) - 1) / static_cast<uint64_t>(threads);
  return static_cast<unsigned>(
      std::max<uint64_t>(1, std::min<uint64_t>(covering, 8 * static_cast<uint64_t>(sm_count))));
}

}  // namespace cudaembed
