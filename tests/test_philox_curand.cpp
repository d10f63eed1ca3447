// Random123's Philox (philox_host.cpp) against cuRAND's host generator, the oracle it stands in for:
// the same bits for a seed, so the CPU-only build draws the pairs the CUDA build draws. cuRAND's
// host generator runs on the CPU, so this needs the CUDA Toolkit but no GPU.
#include <cstdint>
#include <vector>

#include <curand.h>
#include <catch2/catch.hpp>

#include "data/philox_host.hpp"

using namespace cudaembed;

namespace {

// cuRAND's host Philox4x32-10 as host/data/philox_host.cpp once called it, with an offset.
std::vector<uint32_t> curand_host_bits(uint64_t count, uint64_t seed, uint64_t offset) {
  std::vector<uint32_t> bits(count);
  if (count == 0) return bits;
  curandGenerator_t gen = nullptr;
  REQUIRE(curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) == CURAND_STATUS_SUCCESS);
  CHECK(curandSetGeneratorOrdering(gen, CURAND_ORDERING_PSEUDO_LEGACY) == CURAND_STATUS_SUCCESS);
  CHECK(curandSetPseudoRandomGeneratorSeed(gen, seed) == CURAND_STATUS_SUCCESS);
  CHECK(curandSetGeneratorOffset(gen, offset) == CURAND_STATUS_SUCCESS);
  CHECK(curandGenerate(gen, bits.data(), count) == CURAND_STATUS_SUCCESS);
  curandDestroyGenerator(gen);
  return bits;
}

// The first index where the two differ, or -1.
int64_t first_difference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace

TEST_CASE("Random123's Philox gives cuRAND's host bits for every seed, offset and length", "[pairs][rng]") {
  // Seeds whose high 32 bits matter; offsets inside a block of 4, at and past 65,536 blocks (where
  // cuRAND's subsequences wrap to the next counter) and past 2^32; lengths not a multiple of 4.
  const uint64_t seeds[] = {0, 1, 42, uint64_t{1} << 32, 0xdeadbeefcafebabeull};
  const uint64_t offsets[] = {0, 1, 3, 5, 262143, 262144, 262145, uint64_t{3} << 33};
  const uint64_t lengths[] = {0, 1, 2, 3, 5, 7, 17, 262147};
  for (uint64_t seed : seeds)
    for (uint64_t offset : offsets)
      for (uint64_t length : lengths) {
        INFO("seed " << seed << ", offset " << offset << ", length " << length);
        REQUIRE(first_difference(philox_bits_host(length, seed, offset), curand_host_bits(length, seed, offset)) == -1);
      }
}

TEST_CASE("Random123's Philox gives cuRAND's bits for the default run's pairs and a long stream", "[pairs][rng]") {
  // 3 x 100,000 pair numbers for seed 42, and a million (past 65,536 blocks three times) for another seed.
  CHECK(first_difference(philox_bits_host(300000, 42), curand_host_bits(300000, 42, 0)) == -1);
  CHECK(first_difference(philox_bits_host(1000003, 7), curand_host_bits(1000003, 7, 0)) == -1);
}
