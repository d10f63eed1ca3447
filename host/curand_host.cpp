// Host-side cuRAND: works with no GPU, so the CPU backend draws the same numbers the GPU does.
#include "curand_host.hpp"

#include <curand.h>
#include <fmt/format.h>

#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

void check(curandStatus_t status, const char* call, uint64_t seed) {
  if (status != CURAND_STATUS_SUCCESS)
    throw Error(
        fmt::format("cuRAND host generator: {} failed with status {} (seed {})", call, static_cast<int>(status), seed));
}

}  // namespace

std::vector<uint32_t> philox_bits_host(uint64_t count, uint64_t seed) {
  std::vector<uint32_t> bits(count);
  if (count == 0) return bits;
  curandGenerator_t gen = nullptr;
  check(curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10), "curandCreateGeneratorHost", seed);
  try {
    // The ordering whose sequence cuRAND promises to keep across releases (for Philox, today's
    // default gives the same bits): a run's pairs stay reproducible from its seed after an upgrade.
    check(curandSetGeneratorOrdering(gen, CURAND_ORDERING_PSEUDO_LEGACY), "curandSetGeneratorOrdering", seed);
    check(curandSetPseudoRandomGeneratorSeed(gen, seed), "curandSetPseudoRandomGeneratorSeed", seed);
    check(curandGenerate(gen, bits.data(), count), "curandGenerate", seed);
  } catch (...) {
    curandDestroyGenerator(gen);
    throw;
  }
  curandDestroyGenerator(gen);
  return bits;
}

}  // namespace cudaembed
