// CE_CHECK_LAUNCH on a real device: a failed launch names its kernel, and does not make the next,
// good launch's check throw (the launch error is read and cleared, not peeked at).
#include <catch2/catch.hpp>

#include "cuda_check.hpp"
#include "launch_probe.hpp"
#include "test_support.hpp"

using namespace cudaembed;

TEST_CASE("a failed launch is reported with its kernel's name, and the next good launch is not", "[gpu][small]") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  int* out = nullptr;
  REQUIRE(cudaMalloc(&out, sizeof(int)) == cudaSuccess);
  REQUIRE(cudaMemsetAsync(out, 0, sizeof(int), stream) == cudaSuccess);

  const std::string message = test::error_of([&] { test::launch_probe(4096, out, stream); });
  // Which error a bad block size gives varies (cudaErrorInvalidValue from CUDA 13 on an H200, where
  // older releases said cudaErrorInvalidConfiguration): the message must name the kernel and place.
  CHECK_THAT(message, Catch::Contains("CUDA error cudaError") && Catch::Contains("launching kernel launch_probe_kernel") &&
                          Catch::Contains("launch_probe.cu:"));

  CHECK_NOTHROW(test::launch_probe(32, out, stream));
  int host = 0;
  REQUIRE(cudaMemcpyAsync(&host, out, sizeof(int), cudaMemcpyDeviceToHost, stream) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(host == 1);
  cudaFree(out);
  cudaStreamDestroy(stream);
}
