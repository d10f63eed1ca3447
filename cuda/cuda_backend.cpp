// The CUDA backend: pairs from cuRAND's device generator, training by a kernel variant, the
// parameters checked for NaN/Inf on the device after each epoch and copied back when asked for.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <type_traits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nvtx3/nvtx3.hpp>

#include "cuda_check.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "device_buffer.hpp"
#include "device_checks.hpp"
#include "epoch_snapshots.hpp"
#include "finite_check.hpp"
#include "nccl_communicator.hpp"
#include "sorted_kernels.hpp"
#include "sorted_trainer.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

// What a variant's supports() and the auto rules read: the shape, and whether per-lookup squares are kept.
StepArgs shape_args(int64_t rows, const TrainConfig& config) {
  StepArgs args{};
  args.rows = rows;
  args.dims = config.dims;
  args.batch = static_cast<int>(config.batch);
  static float marker = 0;
  args.grad_sq = config.second_moment == SecondMoment::lookups ? &marker : nullptr;
  return args;
}

class CudaBackend final : public Backend {
 public:
  // With `comm` of K > 1 ranks, data parallel (or, with sharded_rows, row sharded) on the sorted
  // path: this rank takes the GPU of its local rank, and NCCL carries the exchanges (SortedTrainer).
  CudaBackend(const TrainConfig& config, std::shared_ptr<Communicator> comm, int64_t sharded_rows)
      : config_(config),
        comm_(comm && comm->size() > 1 ? std::move(comm) : nullptr),
        sharded_rows_(comm_ ? sharded_rows : 0),
        sorted_path_(needs_sorted_path(config, false) || comm_) {
    if (config.kernel != "auto" && config.kernel != "sorted") variant_ = &find_kernel_variant(config.kernel);
    if (sorted_path_ && variant_)
      throw Error(fmt::format(
          "--kernel {}: runs only the tutorial's model on one GPU (euclidean head, adam, no negatives, unweighted "
          "pairs; K ranks train on the sorted path); use --kernel sorted or auto",
          config.kernel));
    if (sorted_path_ && !sorted_dims_supported(config.dims)) throw Error(unsupported_dims_message(config.dims));
    require_cuda_device();
    if (comm_) device_ = comm_->local_rank();
    if (const auto problem =
            rank_device_problem(comm_ ? comm_->rank() : 0, device_, comm_ ? comm_->size() : 1, cuda_device_count());
        !problem.empty())
      throw Error(problem);
    CE_CUDA_CHECK(cudaSetDevice(device_));
    CE_CUDA_CHECK(cudaGetDeviceProperties(&props_, device_));
    if (const auto problem = compute_capability_problem(props_.major, props_.minor, props_.name); !problem.empty())
      throw Error(problem);
    CE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CE_CUDA_CHECK(cudaEventCreate(&epoch_start_));
    CE_CUDA_CHECK(cudaEventCreate(&epoch_end_));
    if (comm_) nccl_ = std::make_unique<NcclCommunicator>(*comm_);  // every rank, together
  }
  ~CudaBackend() override {
    snapshots_.reset();  // they wait for the stream's copies into their host memory
    sorted_.reset();
    cudaEventDestroy(epoch_start_);
    cudaEventDestroy(epoch_end_);
    cudaStreamDestroy(stream_);
  }

  BackendInfo info() const override {
    return {"cuda",
            fmt::format("{} ({} SMs, sm_{}{}){}", props_.name, props_.multiProcessorCount, props_.major, props_.minor,
                        nccl_ ? fmt::format(", GPU {} of this machine, {} on {}", device_,
                                            sharded_rows_ ? "row sharded" : "data parallel", nccl_->describe())
                              : ""),
            sharded_rows_  ? "sorted, row sharded"
            : sorted_path_ ? "sorted"
            : variant_     ? variant_->name
                           : "auto"};
  }

  PairSet generate_pairs(std::span<const float> rgb, const PairSpec& spec) override {
    nvtx3::scoped_range range{"generate_pairs"};
    const auto colours = static_cast<uint32_t>(rgb.size() / 3);
    DeviceBuffer<float> d_rgb;
    d_rgb.upload(rgb.data(), rgb.size(), stream_);
    DeviceBuffer<uint32_t> bits(3 * spec.count), a(spec.count), b(spec.count);
    DeviceBuffer<float> label(spec.count);
    // Destroyed after the stream's work that reads its output has finished.
    std::unique_ptr<std::remove_pointer_t<curandGenerator_t>, decltype(&curandDestroyGenerator)> gen{
        nullptr, curandDestroyGenerator};
    curandGenerator_t made = nullptr;
    CE_CURAND_CHECK(curandCreateGenerator(&made, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    gen.reset(made);
    // On the stream pairs_from_bits reads on. Legacy ordering, as on the host generator: the one
    // whose sequence cuRAND promises to keep across releases.
    CE_CURAND_CHECK(curandSetStream(made, stream_));
    CE_CURAND_CHECK(curandSetGeneratorOrdering(made, CURAND_ORDERING_PSEUDO_LEGACY));
    CE_CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(made, spec.seed));
    CE_CURAND_CHECK(curandGenerate(made, bits.data(), bits.size()));
    launch_pairs_from_bits(bits.data(), d_rgb.data(), colours, spec.count, spec.threshold, a.data(), b.data(),
                           label.data(), props_.multiProcessorCount, stream_);
    CE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    PairSet pairs;
    a.download(pairs.a, stream_);
    b.download(pairs.b, stream_);
    label.download(pairs.label, stream_);
    return pairs;
  }

  void load(const PairSet& pairs, const ModelState& state) override {
    snapshots_.reset();  // the last run's: its launches finish before its host copies go
    if (pairs.size() == 0) throw Error("no pairs to train on");
    if (pairs.size() >= (1ull << 32))
      throw Error(fmt::format("{} pairs: at most 2^32 - 1 are supported", pairs.size()));
    if (config_.kernel == "auto" && !needs_sorted_path(config_, false) && !comm_) {
      sorted_path_ = auto_takes_sorted_path(shape_args(state.rows, config_), props_);
      if (sorted_path_) spdlog::info("--kernel auto: sorted for {} x {} on {}", state.rows, state.dims, props_.name);
    }
    if (!sorted_path_) sorted_.reset();  // a dense run after a sorted one on the same backend
    if (!pairs.weight.empty() && !sorted_path_)
      throw Error(fmt::format("--kernel {}: weighted pairs need --kernel sorted (or auto)", config_.kernel));
    if (sorted_path_) {
      sorted_.reset();  // free the last run's device memory before the next one's check
      const RowShard shard{RowPlacement{comm_ ? comm_->rank() : 0, comm_ ? comm_->size() : 1}, sharded_rows_};
      sorted_ = std::make_unique<SortedTrainer>(config_, pairs, state, props_, stream_, SortedLaunch::graph,
                                                nccl_.get(), sharded_rows_ ? &shard : nullptr);
      return;
    }
    size_t free = 0, total = 0;
    CE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    const uint64_t needed = training_device_bytes(pairs.size(), state.rows, state.dims, config_.batch,
                                                  config_.second_moment == SecondMoment::lookups);
    if (const auto problem = device_memory_problem(needed, free, total, props_.name); !problem.empty())
      throw Error(problem);
    steps_per_epoch_ = steps_per_epoch(pairs.size(), config_.batch);
    if (state.step % steps_per_epoch_ != 0)
      throw Error(
          fmt::format("the run stopped at step {}, inside an epoch of {} steps (it was interrupted on the CPU); "
                      "resume it with --device cpu",
                      state.step, steps_per_epoch_));
    pair_a_.upload(pairs.a, stream_);
    pair_b_.upload(pairs.b, stream_);
    label_.upload(pairs.label, stream_);
    table_.upload(state.table, stream_);
    table_m_.upload(state.table_m, stream_);
    table_v_.upload(state.table_v, stream_);
    grad_.resize(state.table.size());
    grad_.zero(stream_);
    grad_sq_.resize(config_.second_moment == SecondMoment::lookups ? state.table.size() : 0);
    grad_sq_.zero(stream_);
    DeviceScalars host{};
    host.step = state.step;
    for (int i = 0; i < 2; ++i) {
      host.dense[i] = state.dense[i];
      host.dense_m[i] = state.dense_m[i];
      host.dense_v[i] = state.dense_v[i];
    }
    scalars_.upload(&host, 1, stream_);
    rows_ = state.rows;
    dims_ = state.dims;
    forward_cache_.resize(static_cast<std::size_t>(config_.batch));
    nonfinite_.resize(1);
    phase_cycles_.resize(config_.phase_profile ? 1 : 0);
    phase_cycles_.zero(stream_);

    const StepArgs args = step_args();
    if (config_.kernel == "auto") {
      variant_ = &auto_kernel_variant(args, props_);
      spdlog::info("--kernel auto: {} for {} x {} on {}", variant_->name, rows_, dims_, props_.name);
    } else if (!variant_->supports(args, props_)) {
      throw Error(
          fmt::format("--kernel {}: cannot train a {} x {} table on {} ({} KiB of shared memory per block "
                      "needed, {} KiB there); use --kernel auto",
                      variant_->name, rows_, dims_, props_.name,
                      (persistent_shared_bytes(args, variant_->name == std::string("deterministic")) + 1023) / 1024,
                      props_.sharedMemPerBlockOptin / 1024));
    }
    runner_ = variant_->make();
    if (variant_->many_epochs_a_launch)
      snapshots_ = std::make_unique<EpochSnapshots>(
          rows_, dims_, pairs.size(), epochs_per_launch(steps_per_epoch_, config_.epochs_per_launch), stream_);
  }

  void plan_epochs(int64_t epochs) override {
    if (snapshots_) snapshots_->plan(epochs);
  }

  EpochMetrics train_epoch(const std::atomic<bool>*, const EpochMetrics&) override {
    if (sorted_) return sorted_->train_epoch();
    nvtx3::scoped_range range{variant_->name};
    if (snapshots_) return snapshots_->next_epoch(step_args(), *runner_);
    // The epoch sums are the struct's tail, from loss_sum on.
    constexpr size_t kSums = offsetof(DeviceScalars, loss_sum);
    CE_CUDA_CHECK(
        cudaMemsetAsync(reinterpret_cast<char*>(scalars_.data()) + kSums, 0, sizeof(DeviceScalars) - kSums, stream_));
    CE_CUDA_CHECK(cudaEventRecord(epoch_start_, stream_));
    runner_->run_epoch(step_args(), stream_);
    CE_CUDA_CHECK(cudaEventRecord(epoch_end_, stream_));
    // The divergence guard, after the compute events: train's time counts it, the kernel's does not.
    nonfinite_.zero(stream_);
    launch_nonfinite_check(table_.data(), table_.size(), nonfinite_.data(), props_.multiProcessorCount, stream_);
    DeviceScalars host{};
    scalars_.download(&host, 1, stream_);
    unsigned int nonfinite = 0;
    nonfinite_.download(&nonfinite, 1, stream_);
    float ms = 0;
    CE_CUDA_CHECK(cudaEventElapsedTime(&ms, epoch_start_, epoch_end_));
    EpochMetrics metrics{host.loss_sum, host.squared_error_sum, static_cast<double>(host.correct),
                         static_cast<int64_t>(pair_a_.size()), ms / 1e3};
    metrics.parameters_finite = nonfinite == 0 && std::isfinite(host.dense[0]) && std::isfinite(host.dense[1]);
    return metrics;
  }

  std::string phase_report() const override {
    if (phase_cycles_.size() == 0 || !variant_) return {};
    PhaseCycles c{};
    phase_cycles_.download(&c, 1, stream_);
    return format_phase_cycles(c, variant_->name, sm_clock_mhz());
  }

  void fetch(ModelState& state, bool with_optimizer) override {
    if (sorted_) return sorted_->fetch(state, with_optimizer);
    if (snapshots_ && snapshots_->fetch(state, with_optimizer)) return;  // the epoch last served, not a later one
    DeviceScalars host{};
    scalars_.download(&host, 1, stream_);
    state.rows = rows_;
    state.dims = dims_;
    table_.download(state.table, stream_);
    state.step = host.step;
    for (int i = 0; i < 2; ++i) state.dense[i] = host.dense[i];
    if (!with_optimizer) return;
    table_m_.download(state.table_m, stream_);
    table_v_.download(state.table_v, stream_);
    for (int i = 0; i < 2; ++i) {
      state.dense_m[i] = host.dense_m[i];
      state.dense_v[i] = host.dense_v[i];
    }
  }

 private:
  double sm_clock_mhz() const {
    int khz = 0;
    CE_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device_));
    return khz / 1e3;
  }

  StepArgs step_args() {
    StepArgs a{};
    a.pair_a = pair_a_.data();
    a.pair_b = pair_b_.data();
    a.label = label_.data();
    a.pairs = static_cast<uint32_t>(pair_a_.size());
    a.batch = static_cast<int>(config_.batch);
    a.steps_per_epoch = steps_per_epoch_;
    a.seed = config_.seed;
    a.table = table_.data();
    a.table_m = table_m_.data();
    a.table_v = table_v_.data();
    a.grad = grad_.data();
    a.grad_sq = grad_sq_.size() ? grad_sq_.data() : nullptr;
    a.rows = rows_;
    a.dims = dims_;
    a.normalize = config_.normalize;
    a.adam = config_.adam;
    a.coef = adam_coefficients(config_.adam);
    a.forward_cache = forward_cache_.data();
    a.scalars = scalars_.data();
    a.sm_count = props_.multiProcessorCount;
    a.phase_cycles = phase_cycles_.size() ? phase_cycles_.data() : nullptr;
    a.epochs = 1;  // EpochSnapshots sets the persistent kernels' epochs and snapshot buffers
    return a;
  }

  TrainConfig config_;
  std::shared_ptr<Communicator> comm_;      // K > 1 ranks; null: one GPU
  int64_t sharded_rows_;                    // row sharded: the whole table's rows (the state is this rank's); 0: not
  std::unique_ptr<NcclCommunicator> nccl_;  // with comm_: the GPUs' exchange
  int device_ = 0;                          // this process's GPU: its local rank among K
  bool sorted_path_;                        // the sorted-segment path rather than a dense variant (auto: set in load())
  std::unique_ptr<SortedTrainer> sorted_;   // its state, made in load()
  const KernelVariant* variant_ = nullptr;  // chosen in load() for --kernel auto
  std::unique_ptr<EpochRunner> runner_;
  std::unique_ptr<EpochSnapshots> snapshots_;  // the persistent kernels': many epochs a launch
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  cudaEvent_t epoch_start_ = nullptr, epoch_end_ = nullptr;
  DeviceBuffer<uint32_t> pair_a_, pair_b_;
  DeviceBuffer<float> label_, table_, table_m_, table_v_, grad_, grad_sq_;
  DeviceBuffer<PairForward<float>> forward_cache_;
  DeviceBuffer<DeviceScalars> scalars_;
  DeviceBuffer<unsigned int> nonfinite_;    // (1,): set by the divergence guard when the table is not finite
  DeviceBuffer<PhaseCycles> phase_cycles_;  // (1,) with config_.phase_profile, else empty
  long long steps_per_epoch_ = 0, rows_ = 0;
  int dims_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const TrainConfig& config, std::shared_ptr<Communicator> comm,
                                           int64_t sharded_rows) {
  return std::make_unique<CudaBackend>(config, std::move(comm), sharded_rows);
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" / "no driver" error
    return 0;
  }
  return count;
}

void require_cuda_device() {
  if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device is visible (try --device cpu or auto)");
}

std::string cuda_versions() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  auto v = [](int x) { return fmt::format("{}.{}", x / 1000, (x % 1000) / 10); };
  return fmt::format("CUDA runtime {}, driver {}", v(runtime), driver ? v(driver) : std::string("none"));
}

double cuda_copy_bandwidth_gbs() {
  constexpr std::size_t kBytes = std::size_t{1} << 30;
  DeviceBuffer<unsigned char> from(kBytes), to(kBytes);
  cudaEvent_t start = nullptr, end = nullptr;
  CE_CUDA_CHECK(cudaEventCreate(&start));
  CE_CUDA_CHECK(cudaEventCreate(&end));
  std::vector<double> seconds;
  for (int rep = 0; rep < 6; ++rep) {  // the first is a warm-up
    CE_CUDA_CHECK(cudaEventRecord(start));
    CE_CUDA_CHECK(cudaMemcpy(to.data(), from.data(), kBytes, cudaMemcpyDeviceToDevice));
    CE_CUDA_CHECK(cudaEventRecord(end));
    CE_CUDA_CHECK(cudaEventSynchronize(end));
    float ms = 0;
    CE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
    if (rep > 0) seconds.push_back(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(end);
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * kBytes / seconds[seconds.size() / 2] / 1e9;
}

bool cuda_kernel_supports(const std::string& kernel, int64_t rows, const TrainConfig& config) {
  if (cuda_device_count() == 0) return false;
  if (kernel == "auto") return true;
  if (kernel == "sorted") return sorted_dims_supported(config.dims);
  const KernelVariant& variant = find_kernel_variant(kernel);
  cudaDeviceProp props{};
  CE_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
  return variant.supports(shape_args(rows, config), props);
}

}  // namespace cudaembed
