// persistent: one thread block keeps the table, its gradient and both Adam moments in shared memory
// and trains a whole epoch per launch. For small tables (the colours: 646 x 2) the step is bound by
// latency, not bandwidth, and this removes every launch and global round trip inside the epoch.
#include <cub/block/block_reduce.cuh>

#include "cuda_check.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 1024;

struct DenseGrad {
  float dw, db;
  __device__ DenseGrad operator+(const DenseGrad& o) const { return {dw + o.dw, db + o.db}; }
};

struct EpochSums {
  double loss, squared_error, correct;
  __device__ EpochSums operator+(const EpochSums& o) const {
    return {loss + o.loss, squared_error + o.squared_error, correct + o.correct};
  }
};

// Deterministic: no float atomics. Each pair writes its two lookups' gradients to their own slots,
// then each thread sums whole rows over the batch's lookups in batch order (the CPU reference's
// order), so runs repeat bit for bit. The price is a scan of 2 * batch lookups per row per step.
template <bool Deterministic>
__global__ void __launch_bounds__(kThreads) persistent_epoch(StepArgs args) {
  extern __shared__ float smem[];
  const size_t n = static_cast<size_t>(args.rows) * args.dims;
  float* table = smem;   // (N, D)
  float* m = table + n;  // (N, D)
  float* v = m + n;      // (N, D)
  // Atomic mode: the gradient (N, D) and Keras's per-lookup squares (N, D).
  float* grad = v + n;
  float* grad_sq = !Deterministic && args.grad_sq ? grad + n : nullptr;
  // Deterministic mode: each lookup's gradient (2 * batch, D) and its row (2 * batch,).
  float* lookup_grad = v + n;
  auto* lookup_row = reinterpret_cast<uint32_t*>(lookup_grad + 2 * static_cast<size_t>(args.batch) * args.dims);
  __shared__ float dense[2], dense_m[2], dense_v[2], dense_grad[2], step_size;
  using GradReduce = cub::BlockReduce<DenseGrad, kThreads>;
  using SumReduce = cub::BlockReduce<EpochSums, kThreads>;
  __shared__ union {
    typename GradReduce::TempStorage grad;
    typename SumReduce::TempStorage sums;
  } temp;

  DeviceScalars* s = args.scalars;
  for (size_t i = threadIdx.x; i < n; i += kThreads) {
    table[i] = args.table[i];
    m[i] = args.table_m[i];
    v[i] = args.table_v[i];
    if constexpr (!Deterministic) {
      grad[i] = 0.0f;
      if (grad_sq) grad_sq[i] = 0.0f;
    }
  }
  if (threadIdx.x < 2) {
    dense[threadIdx.x] = s->dense[threadIdx.x];
    dense_m[threadIdx.x] = s->dense_m[threadIdx.x];
    dense_v[threadIdx.x] = s->dense_v[threadIdx.x];
  }
  const long long first_step = s->step;
  const uint32_t key = epoch_shuffle_key(args.seed, first_step / args.steps_per_epoch);
  __syncthreads();

  auto shared_accumulator = [&](size_t row) {
    return [&, row](int k, float g) {
      atomicAdd(grad + row + k, g);
      if (grad_sq) atomicAdd(grad_sq + row + k, g * g);
    };
  };
  auto lookup_slot = [&](size_t slot) { return [&, slot](int k, float g) { lookup_grad[slot * args.dims + k] = g; }; };

  EpochSums mine{0, 0, 0};
  for (long long k = 0; k < args.steps_per_epoch; ++k) {
    const long long start = k * args.batch;
    const int count = static_cast<int>(min(static_cast<long long>(args.batch), args.pairs - start));
    DenseGrad local{0, 0};
    for (int i = threadIdx.x; i < count; i += kThreads) {
      const uint32_t id = permute_index(static_cast<uint32_t>(start + i), args.pairs, key);
      const size_t row_a = static_cast<size_t>(args.pair_a[id]) * args.dims;
      const size_t row_b = static_cast<size_t>(args.pair_b[id]) * args.dims;
      const float label = args.label[id];
      const float scale = 1.0f / static_cast<float>(count);
      PairResult<float> r;
      if constexpr (Deterministic) {
        lookup_row[2 * i] = args.pair_a[id];
        lookup_row[2 * i + 1] = args.pair_b[id];
        r = pair_forward_backward(table + row_a, table + row_b, args.dims, args.normalize, dense[0], dense[1], label,
                                  scale, lookup_slot(2 * i), lookup_slot(2 * i + 1));
      } else {
        r = pair_forward_backward(table + row_a, table + row_b, args.dims, args.normalize, dense[0], dense[1], label,
                                  scale, shared_accumulator(row_a), shared_accumulator(row_b));
      }
      local.dw += r.dlogit * r.score;
      local.db += r.dlogit;
      mine.loss += r.loss;
      mine.squared_error += (label - r.prob) * (label - r.prob);
      mine.correct += (r.prob > 0.5f) == (label > 0.5f) ? 1.0 : 0.0;
    }
    const DenseGrad total = GradReduce(temp.grad).Sum(local);
    if (threadIdx.x == 0) {
      dense_grad[0] = total.dw;
      dense_grad[1] = total.db;
      step_size = adam_step_size(args.adam, first_step + k + 1);
    }
    __syncthreads();  // gradients complete, step size set

    if constexpr (Deterministic) {
      for (int64_t row = threadIdx.x; row < args.rows; row += kThreads)
        for (int c = 0; c < args.dims; ++c) {
          float g = 0.0f, g2 = 0.0f;
          for (int j = 0; j < 2 * count; ++j)
            if (lookup_row[j] == row) {
              const float x = lookup_grad[static_cast<size_t>(j) * args.dims + c];
              g += x;
              g2 += x * x;
            }
          const size_t idx = static_cast<size_t>(row) * args.dims + c;
          adam_update(table[idx], m[idx], v[idx], g, args.grad_sq ? g2 : g * g, step_size, args.coef);
        }
    } else {
      for (size_t i = threadIdx.x; i < n; i += kThreads) {
        const float g = grad[i];
        grad[i] = 0.0f;
        float g2 = g * g;
        if (grad_sq) {
          g2 = grad_sq[i];
          grad_sq[i] = 0.0f;
        }
        adam_update(table[i], m[i], v[i], g, g2, step_size, args.coef);
      }
    }
    if (threadIdx.x < 2) {
      const float g = dense_grad[threadIdx.x];
      adam_update(dense[threadIdx.x], dense_m[threadIdx.x], dense_v[threadIdx.x], g, g * g, step_size, args.coef);
    }
    __syncthreads();  // parameters updated before the next batch reads them
  }

  for (size_t i = threadIdx.x; i < n; i += kThreads) {
    args.table[i] = table[i];
    args.table_m[i] = m[i];
    args.table_v[i] = v[i];
  }
  const EpochSums sums = SumReduce(temp.sums).Sum(mine);
  if (threadIdx.x < 2) {
    s->dense[threadIdx.x] = dense[threadIdx.x];
    s->dense_m[threadIdx.x] = dense_m[threadIdx.x];
    s->dense_v[threadIdx.x] = dense_v[threadIdx.x];
  }
  if (threadIdx.x == 0) {
    s->step = first_step + args.steps_per_epoch;
    s->loss_sum += sums.loss;
    s->squared_error_sum += sums.squared_error;
    s->correct += static_cast<unsigned long long>(sums.correct);
  }
}

}  // namespace

std::size_t persistent_shared_bytes(const StepArgs& args, bool deterministic) {
  const auto table = static_cast<std::size_t>(args.rows) * args.dims * sizeof(float);
  if (deterministic)  // table, m, v, and the batch's lookups: a gradient of D floats and a row each
    return 3 * table + 2 * static_cast<std::size_t>(args.batch) * (args.dims * sizeof(float) + sizeof(uint32_t));
  return (args.grad_sq ? 5 : 4) * table;
}

template <bool Deterministic>
void launch_persistent(const StepArgs& args, cudaStream_t stream) {
  const std::size_t bytes = persistent_shared_bytes(args, Deterministic);
  CE_CUDA_CHECK(cudaFuncSetAttribute(persistent_epoch<Deterministic>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(bytes)));
  persistent_epoch<Deterministic><<<1, kThreads, bytes, stream>>>(args);
  CE_CHECK_LAUNCH("persistent_epoch");
}

void run_epoch_persistent(const StepArgs& args, cudaStream_t stream) { launch_persistent<false>(args, stream); }

void run_epoch_deterministic(const StepArgs& args, cudaStream_t stream) { launch_persistent<true>(args, stream); }

}  // namespace cudaembed
