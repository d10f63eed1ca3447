// Kernels launched once or more per step: the fused forward+backward of a batch, the three-stage
// baseline, the dense Adam update, and pair labelling. All math comes from cudaembed/math.hpp.
#include <algorithm>

#include <cub/block/block_reduce.cuh>
#include <nvtx3/nvtx3.hpp>

#include "cuda_check.hpp"
#include "grid_stride.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 256;

// The per-block sums of a backward pass: Dense gradients and the epoch's metrics.
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

// Where the current step's batch sits: derived from the step counter in device memory, so that
// launches carry no per-step arguments (and an epoch can be captured as a graph).
struct BatchPosition {
  long long step;  // 0-based global step
  long long epoch;
  long long start;  // position of the batch's first pair in the epoch's permutation
  int count;        // pairs in this batch (the last one of an epoch may be partial)
  Permutation perm;  // the epoch's shuffle
};

__device__ BatchPosition batch_position(const StepArgs& args) {
  BatchPosition p;
  p.step = args.scalars->step;
  p.epoch = p.step / args.steps_per_epoch;
  p.start = (p.step % args.steps_per_epoch) * args.batch;
  p.count = static_cast<int>(min(static_cast<long long>(args.batch), args.pairs - p.start));
  p.perm = make_permutation(args.pairs, epoch_shuffle_key(args.seed, p.epoch));
  return p;
}

// Batch member i: where its two rows start in the table, and its label.
struct BatchPair {
  size_t row_a, row_b;
  float label;
};

__device__ BatchPair batch_pair(const StepArgs& args, const BatchPosition& pos, int i) {
  const uint32_t id = permute_index(static_cast<uint32_t>(pos.start + i), pos.perm);
  return {static_cast<size_t>(args.pair_a[id]) * args.dims, static_cast<size_t>(args.pair_b[id]) * args.dims,
          args.label[id]};
}

// Row-gradient accumulation into global memory: the sum, and for Keras's Adam the per-lookup squares.
__device__ auto global_accumulator(const StepArgs& args, size_t row) {
  return [&args, row](int k, float g) {
    atomicAdd(args.grad + row + k, g);
    if (args.grad_sq) atomicAdd(args.grad_sq + row + k, g * g);
  };
}

// Reduces the block's sums into DeviceScalars; the last block to finish advances the step and sets
// the step size Adam will use.
__device__ void finish_backward_block(const StepArgs& args, const BatchPosition& pos, const BatchSums& sums) {
  using Reduce = cub::BlockReduce<BatchSums, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const BatchSums total = Reduce(temp).Sum(sums);
  if (threadIdx.x != 0) return;
  DeviceScalars* s = args.scalars;
  atomicAdd(&s->dense_grad[0], total.dense_grad[0]);
  atomicAdd(&s->dense_grad[1], total.dense_grad[1]);
  atomicAdd(&s->loss_sum, static_cast<double>(total.loss));
  atomicAdd(&s->squared_error_sum, static_cast<double>(total.squared_error));
  atomicAdd(&s->correct, static_cast<unsigned long long>(total.correct));
  __threadfence();
  if (atomicAdd(&s->blocks_done, 1u) == gridDim.x - 1) {  // every other block has read `step`
    s->blocks_done = 0;
    s->step = pos.step + 1;
    s->step_size = adam_step_size(args.adam, pos.step + 1);
  }
}

__device__ BatchSums sample_sums(const PairResult<float>& r, float label) {
  return {{r.dlogit * r.score, r.dlogit},
          r.loss,
          (label - r.prob) * (label - r.prob),
          (r.prob > 0.5f) == (label > 0.5f) ? 1.0f : 0.0f};
}

// fused: one thread per pair of the batch gathers both rows, computes distance, sigmoid, BCE and
// the whole backward; row gradients land in args.grad through atomics.
__global__ void __launch_bounds__(kThreads) fused_forward_backward(StepArgs args) {
  const BatchPosition pos = batch_position(args);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  BatchSums sums{};
  if (i < pos.count) {
    const BatchPair p = batch_pair(args, pos, i);
    const DeviceScalars* s = args.scalars;
    const PairResult<float> r = pair_forward_backward(
        args.table + p.row_a, args.table + p.row_b, args.dims, args.normalize, s->dense[0], s->dense[1], p.label,
        1.0f / static_cast<float>(pos.count), global_accumulator(args, p.row_a), global_accumulator(args, p.row_b));
    sums = sample_sums(r, p.label);
  }
  finish_backward_block(args, pos, sums);
}

// baseline, stage 1: gather both rows and compute the distance, kept for stage 2.
__global__ void __launch_bounds__(kThreads) gather_distance(StepArgs args) {
  const BatchPosition pos = batch_position(args);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= pos.count) return;
  const BatchPair p = batch_pair(args, pos, i);
  args.forward_cache[i] = pair_forward(args.table + p.row_a, args.table + p.row_b, args.dims, args.normalize);
}

// baseline, stage 2: sigmoid, BCE and the backward from the stored distances.
__global__ void __launch_bounds__(kThreads) loss_backward(StepArgs args) {
  const BatchPosition pos = batch_position(args);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  BatchSums sums{};
  if (i < pos.count) {
    const BatchPair p = batch_pair(args, pos, i);
    const float w = args.scalars->dense[0], b = args.scalars->dense[1];
    const PairForward<float> f = args.forward_cache[i];
    const LogitLoss<float> out = bce_from_logit(w * f.score + b, p.label);
    const float dlogit = out.dlogit * (1.0f / static_cast<float>(pos.count));  // as pair_forward_backward
    pair_backward(args.table + p.row_a, args.table + p.row_b, args.dims, f, dlogit * w,
                  global_accumulator(args, p.row_a), global_accumulator(args, p.row_b));
    sums = sample_sums({f.score, out.prob, out.loss, dlogit}, p.label);
  }
  finish_backward_block(args, pos, sums);
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

int batch_blocks(const StepArgs& args) { return (args.batch + kThreads - 1) / kThreads; }

unsigned adam_blocks(const StepArgs& args) {
  return grid_stride_blocks(static_cast<uint64_t>(args.rows) * static_cast<uint64_t>(args.dims), kThreads,
                            args.sm_count);
}

}  // namespace

void run_epoch_baseline(const StepArgs& args, cudaStream_t stream) {
  for (long long k = 0; k < args.steps_per_epoch; ++k) {
    nvtx3::scoped_range step{"step"};
    gather_distance<<<batch_blocks(args), kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("gather_distance");
    loss_backward<<<batch_blocks(args), kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("loss_backward");
    adam_dense<<<adam_blocks(args), kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("adam_dense");
  }
}

void run_epoch_fused(const StepArgs& args, cudaStream_t stream) {
  for (long long k = 0; k < args.steps_per_epoch; ++k) {
    nvtx3::scoped_range step{"step"};
    fused_forward_backward<<<batch_blocks(args), kThreads, 0, stream>>>(args);
    CE_CHECK_LAUNCH("fused_forward_backward");
    adam_dense<<<adam_blocks(args), kThreads, 0, stream>>>(args);
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
