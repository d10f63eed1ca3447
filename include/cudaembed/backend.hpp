// A backend runs training steps somewhere: CpuBackend (host/) or CudaBackend (cuda/).
// It knows nothing of files; the trainer knows nothing of kernels.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cudaembed/config.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

// Per-sample sums over an epoch; Keras reports their means (weighted by batch size).
struct EpochMetrics {
  double loss_sum = 0;
  double squared_error_sum = 0;  // (label - prob)^2, Keras's "mse" metric
  double correct = 0;            // (prob > 0.5) == label, Keras's "accuracy"
  int64_t samples = 0;
  double seconds = 0;                 // the epoch's compute time: CUDA events on the GPU, the steady clock on the CPU
  int64_t first_nonfinite_step = -1;  // step of the epoch whose loss first went non-finite (CPU only)
  bool complete = true;               // false when `stop` ended the epoch early
  // Whether the table and the Dense layer were all finite at the end of the epoch, as the backend
  // checked them where they live (a reduction on the GPU); empty when it did not check, and then
  // the trainer copies them back to check them itself.
  std::optional<bool> parameters_finite = std::nullopt;

  double loss() const { return samples ? loss_sum / samples : 0.0; }
  double mse() const { return samples ? squared_error_sum / samples : 0.0; }
  double accuracy() const { return samples ? correct / samples : 0.0; }
};

struct BackendInfo {
  std::string name;    // "cpu" or "cuda"
  std::string device;  // CPU model or GPU name
  std::string kernel;  // the kernel variant in use ("reference" on the CPU)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendInfo info() const = 0;
  // Pairs over colours rgb (N, 3), drawn by this backend's cuRAND generator; the same for a seed
  // on every backend.
  virtual PairSet generate_pairs(std::span<const float> rgb, const PairSpec& spec) = 0;
  // Sets the training data and the starting state (the CPU takes any step; CUDA an epoch boundary).
  virtual void load(const PairSet& pairs, const ModelState& state) = 0;
  // Trains the rest of the epoch the current step is in: every batch, Adam after each. `so_far`
  // holds the sums of that epoch's earlier steps (from a mid-epoch checkpoint), and they are
  // carried on. When `stop` turns true, a backend may return after the current step with
  // complete = false (the CPU does; CUDA finishes the epoch, and a persistent launch of several
  // epochs runs on to its end, unseen: fetch still gives the last epoch returned).
  virtual EpochMetrics train_epoch(const std::atomic<bool>* stop = nullptr, const EpochMetrics& so_far = {}) = 0;
  // After load(): train_epoch will be called at most `epochs` times, fewer if the caller stops. A
  // backend may train ahead up to there, and never past it (CUDA's persistent kernels train many
  // epochs a launch); fetch still gives the state after the epochs train_epoch has returned.
  // Without it, each epoch is trained when asked for.
  virtual void plan_epochs(int64_t /*epochs*/) {}
  // Copies the parameters back into `state` (and, with with_optimizer, the moments and step).
  virtual void fetch(ModelState& state, bool with_optimizer) = 0;
  // With TrainConfig::phase_profile: where the kernel's cycles went, one line per phase; else empty.
  virtual std::string phase_report() const { return {}; }
};

enum class DeviceChoice { automatic, cpu, cuda };
DeviceChoice parse_device_choice(const std::string& name);

class Communicator;
// With `comm` of K > 1 ranks, data parallel: each rank trains its slice of every batch and the
// gradients are summed across ranks (distributed.hpp). With sharded_rows > 0 as well, row sharded:
// the state load() takes is this rank's shard (init_model_shard) of a sharded_rows-row table, and
// every step is cpu_sharded_step.
std::unique_ptr<Backend> make_cpu_backend(const TrainConfig& config, std::shared_ptr<Communicator> comm = nullptr,
                                          int64_t sharded_rows = 0);
// Throws Error when the build has no CUDA device to run on. With `comm` of K > 1 ranks, data
// parallel (or, with sharded_rows as make_cpu_backend's, row sharded) on the sorted path: each
// rank on the GPU of its local rank, the exchanges on NCCL (an Error when a rank has no GPU of
// its own or libnccl cannot be loaded). Every rank must call it.
std::unique_ptr<Backend> make_cuda_backend(const TrainConfig& config, std::shared_ptr<Communicator> comm = nullptr,
                                           int64_t sharded_rows = 0);
// automatic: CUDA when a device exists, else the CPU (and says so in the log); K > 1 ranks take
// CUDA when every rank has a GPU of its own (the ranks agree). sharded_rows: as make_cpu_backend's.
std::unique_ptr<Backend> make_backend(DeviceChoice choice, const TrainConfig& config,
                                      std::shared_ptr<Communicator> comm = nullptr, int64_t sharded_rows = 0);

// What the CUDA runtime sees: 0 devices when there is no GPU or no driver (never throws); 0 in a
// CPU-only build.
int cuda_device_count();
// Returns when a CUDA device is visible; otherwise throws the Error `--device cuda` gets: no
// device, or a build without CUDA (then it names the build option and --device cpu).
void require_cuda_device();
// "CUDA runtime 13.0, driver 13.0" or "... driver none".
std::string cuda_versions();
// Copy bandwidth (bytes read + bytes written per second, in GB/s) measured now: cudaMemcpy
// device-to-device of 1 GiB on CUDA, memcpy of 256 MiB on the CPU; the median of 5. What
// memory-bound kernels are compared against.
double measured_copy_bandwidth_gbs(DeviceChoice device);
double cuda_copy_bandwidth_gbs();

// The values --kernel takes, "auto" first: the CUDA backend's variants, the same in a CPU-only build
// (whose CPU backend runs its own path and says so).
std::vector<std::string> cuda_kernel_names();
// Whether `--kernel NAME` can train a `rows` x config.dims table on CUDA device 0: persistent and
// deterministic need the table in one block's shared memory, sorted an instantiated D. False with
// no device. Where it is false, training throws an Error that names the kernel and the shape.
bool cuda_kernel_supports(const std::string& kernel, int64_t rows, const TrainConfig& config);

}  // namespace cudaembed
