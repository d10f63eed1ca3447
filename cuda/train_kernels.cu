// Training kernels: the fused forward+backward of a batch, the dense Adam update, and the pair
// labelling kernel. All math comes from cudaembed/math.hpp.
#include <algorithm>

#include <cub/block/block_reduce.cuh>

#include "cuda_check.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 256;

// The five per-block sums of a forward/backward pass.
struct BatchSums {
  float dense_grad[2];
  float loss, squared_error, correct;

  __device__ BatchSums operator+(const BatchSums& o) const {
    return {{dense_grad[0] + o.dense_grad[0], dense_grad[1] + o.dense_grad[1]},
            loss + o.loss,
            squared_error + o.squared_error,
            correct + o.correct};
  }
};

// One thread per pair of the current batch: gathers both rows, distance, sigmoid, BCE and the
// whole backward; row gradients land in args.grad through atomics. The last block to finish
// advances the step counter and sets the step size Adam will use.
__global__ void __launch_bounds__(kThreads) fused_forward_backward(StepArgs args) {
  DeviceScalars* s = args.scalars;
  const long long step = s->step;
  const long long epoch = step / args.steps_per_epoch;
  const long long start = (step % args.steps_per_epoch) * args.batch;
  const int count = static_cast<int>(min(static_cast<long long>(args.batch), args.pairs - start));
  const int i = blockIdx.x * blockDim.x + threadIdx.x;

  BatchSums sums{};
  if (i < count) {
    const uint32_t id =
        permute_index(static_cast<uint32_t>(start + i), args.pairs, epoch_shuffle_key(args.seed, epoch));
    const uint32_t a = args.pair_a[id], b = args.pair_b[id];
    const float label = args.label[id];
    const size_t row_a = static_cast<size_t>(a) * args.dims, row_b = static_cast<size_t>(b) * args.dims;
    auto accumulate = [&](size_t row) {
      return [&, row](int k, float g) {
        atomicAdd(args.grad + row + k, g);
        if (args.grad_sq) atomicAdd(args.grad_sq + row + k, g * g);
      };
    };
    const PairResult<float> r = pair_forward_backward(args.table + row_a, args.table + row_b, args.dims, args.normalize,
                                                      s->dense[0], s->dense[1], label, 1.0f / static_cast<float>(count),
                                                      accumulate(row_a), accumulate(row_b));
    sums = {{r.dlogit * r.dist, r.dlogit},
            r.loss,
            (label - r.prob) * (label - r.prob),
            (r.prob > 0.5f) == (label > 0.5f) ? 1.0f : 0.0f};
  }

  using Reduce = cub::BlockReduce<BatchSums, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const BatchSums total = Reduce(temp).Sum(sums);
  if (threadIdx.x == 0) {
    atomicAdd(&s->dense_grad[0], total.dense_grad[0]);
    atomicAdd(&s->dense_grad[1], total.dense_grad[1]);
    atomicAdd(&s->loss_sum, static_cast<double>(total.loss));
    atomicAdd(&s->squared_error_sum, static_cast<double>(total.squared_error));
    atomicAdd(&s->correct, static_cast<unsigned long long>(total.correct));
    __threadfence();
    if (atomicAdd(&s->blocks_done, 1u) == gridDim.x - 1) {  // every other block has read `step`
      s->blocks_done = 0;
      s->step = step + 1;
      s->step_size = adam_step_size(args.adam, step + 1);
    }
  }
}

// Keras's dense Adam over every parameter; consumes and zeroes the gradient.
__global__ void __launch_bounds__(kThreads) adam_dense(StepArgs args) {
  DeviceScalars* s = args.scalars;
  const float step_size = s->step_size;
  const size_t n = static_cast<size_t>(args.rows) * args.dims;
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n; i += size_t{gridDim.x} * kThreads) {
    const float g = args.grad[i];
    args.grad[i] = 0.0f;
    float g2 = g * g;
    if (args.grad_sq) {
      g2 = args.grad_sq[i];
      args.grad_sq[i] = 0.0f;
    }
    adam_update(args.table[i], args.table_m[i], args.table_v[i], g, g2, step_size, args.coef);
  }
  if (blockIdx.x == 0 && threadIdx.x < 2) {
    const int p = threadIdx.x;
    const float g = s->dense_grad[p];
    s->dense_grad[p] = 0.0f;
    adam_update(s->dense[p], s->dense_m[p], s->dense_v[p], g, g * g, step_size, args.coef);
  }
}

int adam_blocks(const StepArgs& args) {
  const long long n = args.rows * args.dims;
  return static_cast<int>(std::max(1ll, std::min<long long>((n + kThreads - 1) / kThreads, 8ll * args.sm_count)));
}

// One thread per pair: random bits to (a, b, label).
__global__ void pairs_from_bits_kernel(const uint32_t* bits, const float* rgb, uint32_t colours, uint64_t count,
                                       float threshold, uint32_t* a, uint32_t* b, float* label) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count; i += uint64_t{gridDim.x} * blockDim.x) {
    const uint32_t ia = index_from_bits(bits[i], colours), ib = index_from_bits(bits[count + i], colours);
    a[i] = ia;
    b[i] = ib;
    label[i] = colour_pair_label(rgb + 3 * ia, rgb + 3 * ib, unit_from_bits(bits[2 * count + i]), threshold);
  }
}

}  // namespace

void run_epoch_fused(const StepArgs& args, cudaStream_t stream) {
  const int fwd_blocks = (args.batch + kThreads - 1) / kThreads;
  const int opt_blocks = adam_blocks(args);
  for (long long k = 0; k < args.steps_per_epoch; ++k) {
    fused_forward_backward<<<fwd_blocks, kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("fused_forward_backward");
    adam_dense<<<opt_blocks, kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("adam_dense");
  }
}

void launch_pairs_from_bits(const uint32_t* bits, const float* rgb, uint32_t colours, uint64_t count, float threshold,
                            uint32_t* a, uint32_t* b, float* label, int sm_count, cudaStream_t stream) {
  pairs_from_bits_kernel<<<std::max(1, sm_count * 8), kThreads, 0, stream>>>(bits, rgb, colours, count, threshold, a, b,
                                                                             label);
  CE_CHECK_LAUNCH("pairs_from_bits_kernel");
}

}  // namespace cudaembed
