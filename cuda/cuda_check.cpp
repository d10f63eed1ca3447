// Error reporting for CE_CUDA_CHECK and CE_CURAND_CHECK.
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

}  // namespace cudaembed
