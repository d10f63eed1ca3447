// The kernel variants --kernel can name. Adding a variant: its launcher in a .cu file, one entry here,
// its name in cuda_kernel_names() (host/train/backend.cpp; a test checks the two agree).
#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/error.hpp"
#include "graph_capture.hpp"
#include "sorted_kernels.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

// Launches a fixed sequence of kernels every epoch.
template <void (*Launch)(const StepArgs&, cudaStream_t)>
class LaunchRunner final : public EpochRunner {
 public:
  void run_epoch(const StepArgs& args, cudaStream_t stream) override { Launch(args, stream); }
};

// Captures one epoch of `fused` (2 launches per step) as a CUDA graph on first use and replays it:
// the launches read no per-step arguments, so the same graph serves every epoch.
class GraphRunner final : public EpochRunner {
 public:
  ~GraphRunner() override {
    if (exec_) cudaGraphExecDestroy(exec_);
  }
  void run_epoch(const StepArgs& args, cudaStream_t stream) override {
    if (!exec_) exec_ = capture_graph(stream, [&] { run_epoch_fused(args, stream); });
    CE_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

bool always(const StepArgs&, const cudaDeviceProp&) { return true; }

template <bool Deterministic>
bool fits_in_shared_memory(const StepArgs& args, const cudaDeviceProp& props) {
  constexpr std::size_t kStaticReserve = 4096;  // the kernel's own __shared__ scalars and CUB scratch
  return persistent_shared_bytes(args, Deterministic) + kStaticReserve <= props.sharedMemPerBlockOptin;
}

template <class Runner>
std::unique_ptr<EpochRunner> make() {
  return std::make_unique<Runner>();
}

}  // namespace

const std::vector<KernelVariant>& kernel_variants() {
  // In the order of expected speed (not yet measured on a GPU): --kernel auto takes the first that
  // supports the shape.
  static const std::vector<KernelVariant> variants = {
      {"persistent", "one block keeps table, gradient and Adam moments in shared memory; many epochs per launch",
       fits_in_shared_memory<false>, make<LaunchRunner<run_epoch_persistent>>, true},
      {"graph", "an epoch of 'fused' captured once as a CUDA graph and replayed", always, make<GraphRunner>, false},
      {"fused", "one kernel for the batch's forward and backward, one for dense Adam; launched every step", always,
       make<LaunchRunner<run_epoch_fused>>, false},
      {"baseline", "one kernel per stage: gather and distance, loss and backward, Adam; launched every step", always,
       make<LaunchRunner<run_epoch_baseline>>, false},
      // Last: never auto's choice. --deterministic selects it.
      {"deterministic",
       "persistent without float atomics: bit-identical runs; each step sorts its lookups by row (block radix sort)",
       fits_in_shared_memory<true>, make<LaunchRunner<run_epoch_deterministic>>, true},
  };
  return variants;
}

const KernelVariant& find_kernel_variant(const std::string& name) {
  std::string allowed = "auto";
  for (const auto& v : kernel_variants()) {
    if (name == v.name) return v;
    allowed += fmt::format(", {}", v.name);
  }
  throw Error(fmt::format("--kernel: unknown variant '{}' (allowed: {})", name, allowed));
}

bool auto_takes_sorted_path(const StepArgs& args, const cudaDeviceProp& props) {
  // A table that fits one block's shared memory is persistent's; the sorted kernels take only some D.
  if (fits_in_shared_memory<false>(args, props) || !sorted_dims_supported(args.dims)) return false;
  // Per pair, `fused` adds 2D gradients (4D with per-lookup squares) with float atomics; from
  // D = 64 those atomics bound its step. The sorted path writes each lookup's gradient once and
  // sums each row in registers, with no atomics.
  constexpr int kWideRow = 64;
  // Per element per step, `fused`'s dense Adam reads and writes p, m, v and the gradient (and its
  // square) and zeroes them: 10 accesses; the sorted path's decay reads and writes p, m and v of
  // the untouched rows: 6. From 2^22 elements (16 MiB an array) those 4 accesses (64 MiB, ~16 us
  // at 4 TB/s) outweigh the sorted path's extra launches and its sort of the batch. An estimate,
  // not yet measured.
  constexpr uint64_t kBigTable = uint64_t{1} << 22;
  return args.dims >= kWideRow || static_cast<uint64_t>(args.rows) * static_cast<uint64_t>(args.dims) >= kBigTable;
}

const KernelVariant& auto_kernel_variant(const StepArgs& args, const cudaDeviceProp& props) {
  for (const auto& v : kernel_variants())
    if (v.supports(args, props)) return v;
  throw Error("no kernel variant supports this shape");
}

}  // namespace cudaembed
