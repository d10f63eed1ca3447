// Main of the [gpu] tests: without a CUDA device they cannot run, so the binary says so and exits
// 77, which CTest reports as "Skipped" rather than passed.
#define CATCH_CONFIG_RUNNER
#include <cstdio>

#include <catch2/catch.hpp>

#include "cudaembed/backend.hpp"

int main(int argc, char** argv) {
  if (cudaembed::cuda_device_count() == 0) {
    std::printf("SKIPPED: no CUDA device visible (%s); the [gpu] parity tests need one\n",
                cudaembed::cuda_versions().c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
