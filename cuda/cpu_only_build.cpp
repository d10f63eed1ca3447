// A build without CUDA (CUDAEMBED_CUDA=OFF, or AUTO with no nvcc found) compiles this file instead of
// the rest of cuda/: the CUDA entry points of backend.hpp and distances.hpp, answering that there
// is no device, and refusing --device cuda with the build option that brings it.
#include "cudaembed/backend.hpp"
#include "cudaembed/distances.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/link_prediction.hpp"

namespace cudaembed {

int cuda_device_count() { return 0; }

void require_cuda_device() {
  throw Error(
      "--device cuda: this cudaembed was built without CUDA (CPU backend only); use --device cpu, or rebuild with "
      "the CUDA Toolkit's nvcc on PATH and -DCUDAEMBED_CUDA=ON");
}

std::string cuda_versions() { return "no CUDA runtime: a CPU-only build"; }

std::unique_ptr<Backend> make_cuda_backend(const TrainConfig&, std::shared_ptr<Communicator>, int64_t) {
  require_cuda_device();
  return nullptr;
}

double cuda_copy_bandwidth_gbs() {
  require_cuda_device();
  return 0;
}

bool cuda_kernel_supports(const std::string&, int64_t, const TrainConfig&) { return false; }

std::vector<float> cuda_all_pairs_sq_distances(std::span<const float>, int) {
  require_cuda_device();
  return {};
}

std::vector<float> cuda_sq_distances_from_row(std::span<const float>, int, std::size_t) {
  require_cuda_device();
  return {};
}

std::vector<RankCounts> cuda_rank_counts(const RankingInput&) {
  require_cuda_device();
  return {};
}

}  // namespace cudaembed
