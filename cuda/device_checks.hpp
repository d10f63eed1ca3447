// Checks made before a run touches the GPU, as plain functions so their messages can be tested
// without one.
#pragma once

#include <cstdint>
#include <string>

#include "cudaembed/math.hpp"

namespace cudaembed {

// The oldest compute capability this build runs on (its lowest CUDAEMBED_CUDA_ARCHITECTURES entry).
constexpr int kMinComputeCapability = 80;

// Device memory a training run allocates: the pairs, the table with its Adam state and gradients,
// and the per-batch scratch.
uint64_t training_device_bytes(uint64_t pairs, int64_t rows, int dims, int64_t batch, bool per_lookup_moment);

// Device memory of a sorted-path run, by what it is for.
struct SortedMemory {
  uint64_t pairs = 0;          // the pair records
  uint64_t table = 0;          // the embedding table with its optimizer state
  uint64_t batch_buffers = 0;  // per-step scratch: lookups, their gradients, sort and CUB space
  uint64_t total() const { return pairs + table + batch_buffers; }
};
// With exchange_ranks K (0: one GPU, no exchange), each rank's also holds the exchange's chunks
// (sample_exchange.hpp); row_sharded (then `rows` are this rank's), the buffers of the rows and
// gradients it sends and receives too.
SortedMemory sorted_device_bytes(uint64_t pairs, int64_t rows, int dims, int64_t batch, int negatives,
                                 Optimizer optimizer, int exchange_ranks = 0, bool row_sharded = false);
// Empty when it fits in `free`; otherwise the message to throw, with the breakdown.
std::string sorted_memory_problem(const SortedMemory& need, uint64_t free, uint64_t total, const std::string& device);

// Empty when the device can take the run; otherwise the message to throw.
std::string device_memory_problem(uint64_t needed, uint64_t free, uint64_t total, const std::string& device);
std::string compute_capability_problem(int major, int minor, const std::string& device);
// Rank `rank` of `ranks` takes the GPU of its local rank: empty when its machine has that many
// devices; otherwise the message (NCCL cannot put two ranks of one communicator on one GPU).
std::string rank_device_problem(int rank, int local_rank, int ranks, int devices);

}  // namespace cudaembed
