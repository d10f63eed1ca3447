// See launch_probe.cu.
#pragma once

#include <cuda_runtime.h>

namespace cudaembed::test {

// Launches a one-block kernel of `threads` threads that writes 1 to *device_out; checked with
// CE_CHECK_LAUNCH, so a bad configuration throws Error naming the kernel.
void launch_probe(int threads, int* device_out, cudaStream_t stream);

}  // namespace cudaembed::test
