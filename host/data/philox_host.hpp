// Philox4x32-10 on the host, in the order cuRAND's generator writes it: the stream pairs, the
// initial table and synthetic sets are drawn from, with or without the CUDA Toolkit.
#pragma once

#include <cstdint>
#include <vector>

namespace cudaembed {

// What run.json records as "pair_rng".
inline constexpr const char* kPairRng = "philox4x32-10, cuRAND's PSEUDO_LEGACY order (Random123 on the CPU)";

// `count` uint32 of Philox4x32-10 keyed by `seed`, starting `offset` numbers in: the bits cuRAND's
// host and device generators give for CURAND_RNG_PSEUDO_PHILOX4_32_10 with
// CURAND_ORDERING_PSEUDO_LEGACY, that seed and that offset (the CUDA build's tests compare them).
std::vector<uint32_t> philox_bits_host(uint64_t count, uint64_t seed, uint64_t offset = 0);

}  // namespace cudaembed
