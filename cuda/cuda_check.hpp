// Checks every CUDA runtime and cuRAND call and every launch; a failure throws Error naming the
// call, file and line.
#pragma once

#include <cuda_runtime.h>
#include <curand.h>

namespace cudaembed {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_curand_error(curandStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_launch_error(cudaError_t err, const char* kernel, const char* file, int line);

}  // namespace cudaembed

#define CE_CUDA_CHECK(call)                                                                        \
  do {                                                                                             \
    const cudaError_t ce_err_ = (call);                                                            \
    if (ce_err_ != cudaSuccess) ::cudaembed::throw_cuda_error(ce_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CE_CURAND_CHECK(call)                                                                                \
  do {                                                                                                       \
    const curandStatus_t ce_st_ = (call);                                                                    \
    if (ce_st_ != CURAND_STATUS_SUCCESS) ::cudaembed::throw_curand_error(ce_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After every <<<...>>>: catches a bad launch configuration at once, naming the kernel. It reads
// and clears the launch error (cudaGetLastError, not cudaPeekAtLastError): a failed launch that
// was reported must not make every later check throw.
#define CE_CHECK_LAUNCH(kernel)                                                                           \
  do {                                                                                                   \
    const cudaError_t ce_err_ = cudaGetLastError();                                                      \
    if (ce_err_ != cudaSuccess) ::cudaembed::throw_launch_error(ce_err_, kernel, __FILE__, __LINE__);    \
  } while (0)
