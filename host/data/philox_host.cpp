// cuRAND's Philox stream from Random123 (Debian's librandom123-dev, header-only): one generator for
// every build, the CPU-only one included, so a seed gives the same pairs with or without CUDA.
//
// cuRAND's generator runs 65,536 Philox subsequences side by side: output block b (numbers 4b to
// 4b + 3) is block b / 65536 of subsequence b % 65536, that is Philox4x32-10 of the counter
// {low, high 32 bits of b / 65536, b % 65536, 0} under the key {low, high 32 bits of the seed}.
// An offset moves the start along that same order.
#include "data/philox_host.hpp"

#include <algorithm>
#include <cstring>

#include <Random123/philox.h>

namespace cudaembed {
namespace {

constexpr unsigned kSubsequenceBits = 16;  // 65,536 subsequences

r123::Philox4x32::ctr_type block_counter(uint64_t block) {
  const uint64_t position = block >> kSubsequenceBits;
  const uint64_t subsequence = block & ((uint64_t{1} << kSubsequenceBits) - 1);
  return {
      {static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32), static_cast<uint32_t>(subsequence), 0}};
}

}  // namespace

std::vector<uint32_t> philox_bits_host(uint64_t count, uint64_t seed, uint64_t offset) {
  std::vector<uint32_t> bits(count);
  const r123::Philox4x32 philox;
  const r123::Philox4x32::key_type key = {{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  // Number i of the output is lane (offset + i) % 4 of block (offset + i) / 4.
  uint64_t written = 0;
  for (uint64_t block = offset / 4; written < count; ++block) {
    const r123::Philox4x32::ctr_type out = philox(block_counter(block), key);
    const uint64_t first_lane = written == 0 ? offset % 4 : 0;
    const uint64_t lanes = std::min<uint64_t>(4 - first_lane, count - written);
    std::memcpy(bits.data() + written, out.v + first_lane, lanes * sizeof(uint32_t));
    written += lanes;
  }
  return bits;
}

}  // namespace cudaembed
