// Link-prediction rank counts on the GPU: one block per query; its threads share the candidate slots
// and the source's known positives, each calling tally_slot / tally_known (rank_math.hpp), the
// helpers the CPU loop calls, and add their counts into the block's with shared-memory atomics.
// Integer counts of bit-identical scores: the result is the CPU's exactly, in any thread order.
#include <algorithm>

#include "cuda_check.hpp"
#include "rank_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 256;

__global__ void rank_counts(RankView v, uint64_t queries, RankCounts* out) {
  __shared__ unsigned int block[4];  // better, equal, candidates, known_at_or_above
  for (uint64_t q = blockIdx.x; q < queries; q += gridDim.x) {
    if (threadIdx.x < 4) block[threadIdx.x] = 0;
    __syncthreads();
    const float target = target_preference(v, q);
    RankCounts c;
    for (uint32_t s = threadIdx.x; s < rank_slots(v); s += blockDim.x) tally_slot(v, q, target, s, c);
    const uint64_t known = known_count(v, q);
    for (uint64_t k = threadIdx.x; k < known; k += blockDim.x) tally_known(v, q, target, k, c);
    atomicAdd(&block[0], c.better);
    atomicAdd(&block[1], c.equal);
    atomicAdd(&block[2], c.candidates);
    atomicAdd(&block[3], c.known_at_or_above);
    __syncthreads();
    if (threadIdx.x == 0) {
      RankCounts total;
      total.better = block[0];
      total.equal = block[1];
      total.candidates = block[2];
      total.known_at_or_above = block[3];
      out[q] = total;
    }
    __syncthreads();  // the next query zeroes `block` only after thread 0 has read it
  }
}

}  // namespace

void launch_rank_counts(const RankView& view, uint64_t queries, RankCounts* out, cudaStream_t stream) {
  if (queries == 0) return;
  const auto blocks = static_cast<unsigned>(std::min<uint64_t>(queries, 65535));
  rank_counts<<<blocks, kThreads, 0, stream>>>(view, queries, out);
  CE_CHECK_LAUNCH("rank_counts");
}

}  // namespace cudaembed
