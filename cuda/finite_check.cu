// The divergence guard's kernel: one read of the table, float4 at a time, a warp vote per 32 loads,
// and one store of the flag per warp that saw a non-finite value (all store 1, so no atomics).
#include <cstdint>

#include "cuda_check.hpp"
#include "finite_check.hpp"
#include "grid_stride.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 256;

__global__ void nonfinite_check(const float* values, std::size_t count, unsigned int* flag) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // cudaMalloc'd memory is 256-byte aligned: the body as float4, the last count % 4 one by one.
  const std::size_t quads = count / 4;
  const auto* body = reinterpret_cast<const float4*>(values);
  bool bad = false;
  for (std::size_t i = first; i < quads; i += stride) {
    const float4 q = body[i];
    bad |= !isfinite(q.x) || !isfinite(q.y) || !isfinite(q.z) || !isfinite(q.w);
  }
  for (std::size_t i = 4 * quads + first; i < count; i += stride) bad |= !isfinite(values[i]);
  if (__any_sync(0xffffffffu, bad) && threadIdx.x % 32 == 0) *flag = 1;
}

}  // namespace

void launch_nonfinite_check(const float* values, std::size_t count, unsigned int* flag, int sm_count,
                            cudaStream_t stream) {
  if (count == 0) return;
  // Enough blocks to keep every SM's loads in flight, no more: each thread then reads many float4s.
  nonfinite_check<<<grid_stride_blocks(count / 4, kThreads, sm_count), kThreads, 0, stream>>>(values, count, flag);
  CE_CHECK_LAUNCH("nonfinite_check");
}

}  // namespace cudaembed
