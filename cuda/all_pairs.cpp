// All-pairs squared distances on the GPU: the Gram matrix X X^T from one cuBLAS SGEMM, then
// ||a||^2 + ||b||^2 - 2 a.b by a kernel.
#include <cublas_v2.h>
#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/distances.hpp"
#include "cudaembed/error.hpp"
#include "device_buffer.hpp"
#include "distance_kernels.hpp"

namespace cudaembed {
namespace {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(
        fmt::format("cuBLAS error {} ({}) in {}", static_cast<int>(status), cublasGetStatusString(status), call));
}

}  // namespace

std::vector<float> cuda_all_pairs_sq_distances(std::span<const float> points, int dims) {
  if (cuda_device_count() == 0) throw Error("all-pairs distances on the GPU: no CUDA device is visible");
  const auto n = static_cast<int64_t>(points.size() / dims);
  DeviceBuffer<float> x, norms(static_cast<std::size_t>(n)), gram(static_cast<std::size_t>(n * n));
  // Everything here runs on the legacy default stream, where cuBLAS runs with no stream set.
  const cudaStream_t stream = nullptr;
  x.upload(points.data(), points.size(), stream);
  cublasHandle_t handle = nullptr;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  // X row-major (n, dims) is column-major (dims, n) = A; A^T A is the (n, n) Gram matrix, and being
  // symmetric it reads the same in row-major order.
  const float one = 1.0f, zero = 0.0f;
  const cublasStatus_t gemm =
      cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(n), dims, &one, x.data(),
                  dims, x.data(), dims, &zero, gram.data(), static_cast<int>(n));
  cublasDestroy(handle);
  check_cublas(gemm, "cublasSgemm");
  launch_row_sq_norms(x.data(), n, dims, norms.data(), stream);
  launch_gram_to_sq_distances(norms.data(), n, gram.data(), stream);
  std::vector<float> out;
  gram.download(out, stream);
  return out;
}

}  // namespace cudaembed
