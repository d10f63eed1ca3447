// A kernel for testing CE_CHECK_LAUNCH itself: launched with `threads` per block on `stream`, so a
// test can make one launch fail (more than 1024 threads) and the next one succeed.
#include "launch_probe.hpp"

#include "cuda_check.hpp"

namespace cudaembed::test {
namespace {

__global__ void launch_probe_kernel(int* out) {
  if (threadIdx.x == 0) *out = 1;
}

}  // namespace

void launch_probe(int threads, int* device_out, cudaStream_t stream) {
  launch_probe_kernel<<<1, threads, 0, stream>>>(device_out);
  CE_CHECK_LAUNCH("launch_probe_kernel");
}

}  // namespace cudaembed::test
