// What a run needs from the GPU, and what to say when the GPU cannot give it.
#include "device_checks.hpp"

#include <fmt/format.h>

#include "cudaembed/pairs.hpp"
#include "sorted_kernels.hpp"

namespace cudaembed {

uint64_t training_device_bytes(uint64_t pairs, int64_t rows, int dims, int64_t batch, bool per_lookup_moment) {
  const uint64_t table = static_cast<uint64_t>(rows) * static_cast<uint64_t>(dims) * sizeof(float);
  const uint64_t tables = table * (per_lookup_moment ? 5 : 4);  // weights, m, v, gradient (+ squared)
  const uint64_t pair_bytes = pairs * (2 * sizeof(uint32_t) + sizeof(float));
  const uint64_t scratch = static_cast<uint64_t>(batch) * 5 * sizeof(float) + 4096;
  return pair_bytes + tables + scratch;
}

std::string device_memory_problem(uint64_t needed, uint64_t free, uint64_t total, const std::string& device) {
  if (needed <= free) return {};
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  return fmt::format(
      "--device cuda: training needs {:.1f} MiB of GPU memory (pairs, the table with its Adam state and gradients), "
      "but {} has {:.1f} MiB free of {:.1f} MiB; use fewer --pairs or a smaller table, or --device cpu",
      mib(needed), device, mib(free), mib(total));
}

SortedMemory sorted_device_bytes(uint64_t pairs, int64_t rows, int dims, int64_t batch, int negatives,
                                 Optimizer optimizer, int exchange_ranks, bool row_sharded) {
  const auto n = static_cast<uint64_t>(rows);
  const uint64_t row_bytes = static_cast<uint64_t>(dims) * sizeof(float);
  SortedMemory m;
  m.pairs = pairs * sizeof(PairRecord);
  m.table = n * row_bytes;
  const bool moments =
      optimizer == Optimizer::adam || optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam;
  if (moments) m.table += 2 * n * row_bytes;
  if (optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam) m.table += n * sizeof(long long);
  if (optimizer == Optimizer::adagrad) m.table += n * sizeof(float);
  if (optimizer == Optimizer::adam) m.table += touched_bitmap_words(n) * sizeof(uint32_t);
  const uint64_t samples = static_cast<uint64_t>(batch) * (static_cast<uint64_t>(negatives) + 1);
  const uint64_t lookups = 2 * samples;
  // lookup gradients; 7 uint32 arrays; per-sample partials; CUB's radix sort double buffers and slack
  m.batch_buffers =
      lookups * row_bytes + lookups * 7 * sizeof(uint32_t) + samples * 5 * sizeof(float) + lookups * 16 + (1u << 20);
  // the hot-run list, sorted_finish's block sums, and adam_step_size_table at its longest
  m.batch_buffers += (lookups / kHotRunLength + 1) * sizeof(uint32_t) +
                     finish_blocks(static_cast<uint32_t>(samples)) * sizeof(FinishPartial);
  if (moments) m.batch_buffers += kMaxStepSizes * sizeof(float);
  if (exchange_ranks > 0)  // this rank's chunk and the K gathered ones (the partials only when row sharded)
    m.batch_buffers += exchange_chunk(static_cast<uint32_t>(samples), row_sharded ? 0 : dims, exchange_ranks) *
                       static_cast<uint64_t>(exchange_ranks + 1) * sizeof(float);
  if (row_sharded && exchange_ranks > 0) {  // cuda/sorted_trainer.cpp's ShardedSteps
    const uint64_t slice_lookups =
        2 * static_cast<uint64_t>(exchange_longest(static_cast<uint32_t>(samples), exchange_ranks));
    m.batch_buffers += samples * sizeof(PairRecord) + 2 * lookups * sizeof(uint32_t) +
                       slice_lookups * sizeof(uint32_t) + (2 * lookups + 2 * slice_lookups) * row_bytes;
  }
  return m;
}

std::string sorted_memory_problem(const SortedMemory& need, uint64_t free, uint64_t total, const std::string& device) {
  if (need.total() <= free) return {};
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  return fmt::format(
      "--device cuda: training needs {:.1f} MiB of GPU memory ({:.1f} MiB for the pairs, {:.1f} MiB for the table "
      "and its optimizer state, {:.1f} MiB for the batch buffers), but {} has {:.1f} MiB free of {:.1f} MiB; use a "
      "smaller --batch or table, an optimizer with less state (sgd, adagrad), or --device cpu",
      mib(need.total()), mib(need.pairs), mib(need.table), mib(need.batch_buffers), device, mib(free), mib(total));
}

std::string compute_capability_problem(int major, int minor, const std::string& device) {
  if (major * 10 + minor >= kMinComputeCapability) return {};
  return fmt::format(
      "--device cuda: {} is compute capability {}.{}, older than this build supports ({}.{} and newer); rebuild with "
      "-DCUDAEMBED_CUDA_ARCHITECTURES={}{} or use --device cpu",
      device, major, minor, kMinComputeCapability / 10, kMinComputeCapability % 10, major, minor);
}

std::string rank_device_problem(int rank, int local_rank, int ranks, int devices) {
  if (local_rank < devices) return {};
  return fmt::format(
      "rank {} of {}: it is rank {} on its machine, which has {} visible GPU{}; each rank trains on a GPU of its own "
      "(NCCL cannot share one between ranks): start at most {} rank{} a machine, or train the ranks with --device cpu",
      rank, ranks, local_rank, devices, devices == 1 ? "" : "s", devices, devices == 1 ? "" : "s");
}

}  // namespace cudaembed
