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

namespace {

// Whether every rank has a GPU of its own (its local rank below its machine's device count),
// asked of every rank so that they all choose the same backend.
bool every_rank_has_a_gpu(Communicator& comm) {
  std::vector<double> has{comm.local_rank() < cuda_device_count() ? 1.0 : 0.0}, scratch;
  sum_in_rank_order(comm, std::span<double>(has), scratch);
  return has[0] == static_cast<double>(comm.size());
}

}  // namespace

std::unique_ptr<Backend> make_backend(DeviceChoice choice, const TrainConfig& config,
                                      std::shared_ptr<Communicator> comm, int64_t sharded_rows) {
  const bool distributed = comm && comm->size() > 1;
  auto cuda = [&] { return make_cuda_backend(config, comm, sharded_rows); };
  switch (choice) {
    case DeviceChoice::cpu:
      return make_cpu_backend(config, std::move(comm), sharded_rows);
    case DeviceChoice::cuda:
      return cuda();
    case DeviceChoice::automatic:
      if (!distributed) {
        if (cuda_device_count() > 0) return cuda();
        spdlog::info("no CUDA device found ({}): training on the CPU backend", cuda_versions());
      } else if (every_rank_has_a_gpu(*comm)) {
        return cuda();
      } else {
        spdlog::info("--device auto: the {} ranks train on the CPU (not every rank has a GPU of its own)",
                     comm->size());
      }
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
