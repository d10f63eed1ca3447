// Backend selection: --device auto|cpu|cuda.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

DeviceChoice parse_device_choice(const std::string& name) {
  if (name == "auto") return DeviceChoice::automatic;
  if (name == "cpu") return DeviceChoice::cpu;
  if (name == "cuda") return DeviceChoice::cuda;
  throw Error(fmt::format("--device: unknown device '{}' (allowed: auto, cpu, cuda)", name));
}

std::unique_ptr<Backend> make_backend(DeviceChoice choice, const TrainConfig& config) {
  switch (choice) {
    case DeviceChoice::cpu:
      return make_cpu_backend(config);
    case DeviceChoice::cuda:
      return make_cuda_backend(config);
    case DeviceChoice::automatic:
      if (cuda_device_count() > 0) return make_cuda_backend(config);
      spdlog::info("no CUDA device found ({}): training on the CPU backend", cuda_versions());
      return make_cpu_backend(config);
  }
  throw Error("unreachable device choice");
}

}  // namespace cudaembed
