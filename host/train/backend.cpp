// Backend selection: --device auto|cpu|cuda.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cudaembed/backend.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

DeviceChoice parse_device_choice(const std::string& name) {
  if (name == "auto") return DeviceChoice::automatic;
  if (name == "cpu") return DeviceChoice::cpu;
  if (name == "cuda") return DeviceChoice::cuda;
  throw Error(fmt::format("--device: unknown device '{}' (allowed: auto, cpu, cuda)", name));
}

std::unique_ptr<Backend> make_backend(DeviceChoice choice, const TrainConfig& config,
                                      std::shared_ptr<Communicator> comm, int64_t sharded_rows) {
  const bool distributed = comm && comm->size() > 1;
  auto cuda = [&] {
    if (distributed)
      throw Error(fmt::format("{} ranks on CUDA: distributed training on GPUs (NCCL) is not built yet; train the "
                              "ranks on the CPU with --device cpu",
                              comm->size()));
    return make_cuda_backend(config);
  };
  switch (choice) {
    case DeviceChoice::cpu:
      return make_cpu_backend(config, std::move(comm), sharded_rows);
    case DeviceChoice::cuda:
      return cuda();
    case DeviceChoice::automatic:
      if (cuda_device_count() > 0 && !distributed) return cuda();
      if (!distributed) spdlog::info("no CUDA device found ({}): training on the CPU backend", cuda_versions());
      return make_cpu_backend(config, std::move(comm), sharded_rows);
  }
  throw Error("unreachable device choice");
}

std::vector<std::string> cuda_kernel_names() {
  // Listed here rather than read from cuda/kernel_registry.cpp, so that a CPU-only build takes the
  // same command lines; the CUDA build's tests check the list against the registry.
  return {"auto", "sorted", "persistent", "graph", "fused", "baseline", "deterministic"};
}

double measured_copy_bandwidth_gbs(DeviceChoice device) {
  if (device == DeviceChoice::cuda || (device == DeviceChoice::automatic && cuda_device_count() > 0))
    return cuda_copy_bandwidth_gbs();
  constexpr std::size_t kBytes = std::size_t{1} << 28;
  std::vector<unsigned char> from(kBytes, 1), to(kBytes, 0);
  std::vector<double> seconds;
  for (int rep = 0; rep < 6; ++rep) {  // the first is a warm-up
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(to.data(), from.data(), kBytes);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    from[rep] = to[kBytes - 1 - rep];  // keeps the copies observable
  }
  seconds.erase(seconds.begin());
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * kBytes / seconds[seconds.size() / 2] / 1e9;
}

}  // namespace cudaembed
