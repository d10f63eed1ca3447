// cuRAND's host-side Philox generator, wrapped so a failure names the call and seed.
#pragma once

#include <cstdint>
#include <vector>

namespace cudaembed {

// `count` uint32 from Philox4x32-10 seeded with `seed`, offset 0, default ordering: the same
// stream cuRAND's device generator produces for these settings.
std::vector<uint32_t> philox_bits_host(uint64_t count, uint64_t seed);

}  // namespace cudaembed
