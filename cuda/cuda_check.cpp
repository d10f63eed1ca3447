// Error reporting for CE_CUDA_CHECK, CE_CURAND_CHECK and CE_CHECK_LAUNCH.
#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw Error(fmt::format("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err), call,
                          file, line));
}

void throw_curand_error(curandStatus_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("cuRAND error {} in {} at {}:{}", static_cast<int>(status), call, file, line));
}

void throw_launch_error(cudaError_t err, const char* kernel, const char* file, int line) {
  throw Error(fmt::format("CUDA error {} ({}) launching kernel {} at {}:{}", cudaGetErrorName(err),
                          cudaGetErrorString(err), kernel, file, line));
}

}  // namespace cudaembed
