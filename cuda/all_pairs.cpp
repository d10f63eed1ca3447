// Squared distances between rows on the GPU: the table goes up, one direct-difference kernel
// (distance_kernels.cu) fills the matrix or the one row, and it comes back.
//
// This was a cuBLAS SGEMM (the Gram matrix) finished into ||a||^2 + ||b||^2 - 2ab in float. That
// form cancels: rows with the same RGB value came out a few ulps apart instead of exactly 0, and
// differently from the CPU, so Spearman and the tie-aware k-NN overlap depended on --device. The
// direct form shares its arithmetic with the CPU (row_sq_distance) and is bit-identical to it. For
// the small D of the colours both forms are bound by writing the N^2 outputs; at the limits
// (N = 20000, D = 256) the direct form is about 2e11 double operations, milliseconds on a
// data-centre GPU and well under a second on a consumer one, for a one-off evaluation. So cuBLAS
// is not called any more, and no handle is created per query.
#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/distances.hpp"
#include "cudaembed/error.hpp"
#include "device_buffer.hpp"
#include "distance_kernels.hpp"

namespace cudaembed {
namespace {

// Everything here runs on the legacy default stream: these calls are synchronous, one-off and
// share no buffer with a backend's stream.
const cudaStream_t kStream = nullptr;

void require_device(const char* what) {
  if (cuda_device_count() == 0) throw Error(fmt::format("{} on the GPU: no CUDA device is visible", what));
}

}  // namespace

std::vector<float> cuda_all_pairs_sq_distances(std::span<const float> points, int dims) {
  require_device("all-pairs distances");
  const auto n = static_cast<int64_t>(points.size() / dims);
  DeviceBuffer<float> x, out(static_cast<std::size_t>(n * n));
  x.upload(points.data(), points.size(), kStream);
  launch_all_pairs_sq_distances(x.data(), n, dims, out.data(), kStream);
  std::vector<float> host;
  out.download(host, kStream);
  return host;
}

std::vector<float> cuda_sq_distances_from_row(std::span<const float> points, int dims, std::size_t query) {
  require_device("distances from one row");
  const auto n = static_cast<int64_t>(points.size() / dims);
  if (query >= static_cast<std::size_t>(n)) throw Error(fmt::format("distances: row {} of {} rows", query, n));
  DeviceBuffer<float> x, out(static_cast<std::size_t>(n));
  x.upload(points.data(), points.size(), kStream);
  launch_row_sq_distances(x.data(), n, dims, static_cast<int64_t>(query), out.data(), kStream);
  std::vector<float> host;
  out.download(host, kStream);
  return host;
}

}  // namespace cudaembed
