// persistent: one thread block keeps the table, its gradient and both Adam moments in shared memory
// and trains a whole epoch per launch. For small tables (the colours: 646 x 2) the step is bound by
// latency, not bandwidth, and this removes every launch and global round trip inside the epoch.
//
// A step is two phases and two barriers (docs/design.md, "The persistent step"):
//   A  one thread per lookup (pair i's row a on thread 2i, row b on 2i + 1): the forward of its
//      pair, its own row's gradient into shared memory, the Dense gradient into a warp partial;
//   -- barrier: gradients complete --
//   B  every thread sums the warp partials itself and updates its own copy of the Dense layer
//      (all copies see the same sums in the same order, so they stay equal without a broadcast);
//      the table's Adam, element by element; the next step's pairs are fetched meanwhile;
//   -- barrier: parameters updated, gradient zeroed --
#include <cub/block/block_reduce.cuh>

#include "cuda_check.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
// Adam step sizes are computed this many steps at a time. Small, so that the kernel's static shared
// memory stays within the 4 KiB that kernel_registry.cpp reserves for it.
constexpr int kStepSizes = 256;

struct EpochSums {
  double loss, squared_error, correct;
  __device__ EpochSums operator+(const EpochSums& o) const {
    return {loss + o.loss, squared_error + o.squared_error, correct + o.correct};
  }
};

// A batch member as one lookup sees it: both rows (element offsets) and the label.
struct BatchPair {
  uint32_t row_a, row_b;
  float label;
};

__device__ BatchPair fetch_pair(const StepArgs& args, long long start, int i, uint32_t key) {
  const uint32_t id = permute_index(static_cast<uint32_t>(start + i), args.pairs, key);
  return {args.pair_a[id], args.pair_b[id], args.label[id]};
}

// The Dense layer, one copy per thread (see the header).
struct DenseLayer {
  float w[2], m[2], v[2];
};

// Adds g to element .x and g^2 to .y with one 64-bit compare-and-swap. sm_90 has no shared-memory
// float atomicAdd: it compiles to a CAS loop anyway, so packing the two sums halves the loops.
__device__ void add_packed(float2* at, float g) {
  auto* word = reinterpret_cast<unsigned long long*>(at);  // .x in the low half (little-endian)
  unsigned long long seen = *word, expected;
  do {
    expected = seen;
    const float x = __uint_as_float(static_cast<unsigned>(expected)) + g;
    const float y = __uint_as_float(static_cast<unsigned>(expected >> 32)) + g * g;
    seen = atomicCAS(word, expected, static_cast<unsigned long long>(__float_as_uint(y)) << 32 | __float_as_uint(x));
  } while (seen != expected);  // compares bits, so a NaN cannot make it spin
}

// clock64() stamps per warp behind StepArgs::phase_cycles (bench --phase-profile): where a step's
// cycles go, accumulated over every launch. Layout in train_kernels.hpp (PhaseCycles).
struct PhaseClock {
  bool on;
  long long mark = 0, work_a = 0, work_b = 0;
  __device__ void start() {
    if (on) mark = clock64();
  }
  __device__ void end(long long& into) {
    if (on) into += clock64() - mark;
  }
};

template <bool Deterministic>
__global__ void __launch_bounds__(kThreads) persistent_epoch(StepArgs args) {
  extern __shared__ float smem[];
  const int D = args.dims;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const size_t n = static_cast<size_t>(args.rows) * D;
  // Atomic mode: the gradient and Keras's per-lookup squares, packed (N, D) x (g, g^2); first, where
  // the 8-byte alignment of float2 holds whatever N * D is.
  auto* grad = reinterpret_cast<float2*>(smem);
  float* table = Deterministic ? smem : smem + 2 * n;  // (N, D)
  float* m = table + n;                                // (N, D)
  float* v = m + n;                                    // (N, D)
  // Deterministic mode: each lookup's gradient (2 * batch, D) and its row (2 * batch,).
  float* lookup_grad = v + n;
  auto* lookup_row = reinterpret_cast<uint32_t*>(lookup_grad + 2 * static_cast<size_t>(args.batch) * D);
  __shared__ float2 dense_partial[kWarps];  // (dL/dw, dL/db) of each warp's lookups
  __shared__ float step_sizes[kStepSizes];  // Adam's step sizes for this chunk of steps
  __shared__ typename cub::BlockReduce<EpochSums, kThreads>::TempStorage sums_temp;

  DeviceScalars* s = args.scalars;
  for (size_t i = tid; i < n; i += kThreads) {
    table[i] = args.table[i];
    m[i] = args.table_m[i];
    v[i] = args.table_v[i];
    if constexpr (!Deterministic) grad[i] = make_float2(0.0f, 0.0f);
  }
  DenseLayer dense;
  for (int p = 0; p < 2; ++p) {
    dense.w[p] = s->dense[p];
    dense.m[p] = s->dense_m[p];
    dense.v[p] = s->dense_v[p];
  }
  const long long first_step = s->step;
  const uint32_t key = epoch_shuffle_key(args.seed, first_step / args.steps_per_epoch);
  const bool keras_squares = args.grad_sq != nullptr;
  __syncthreads();  // the table in shared memory before any lookup reads it
  PhaseClock clock{args.phase_cycles != nullptr};
  const long long epoch_start = clock.on ? clock64() : 0;

  EpochSums mine{0, 0, 0};
  // Step k's first batch member of this thread, fetched during step k - 1.
  BatchPair next = tid / 2 < min(static_cast<long long>(args.batch), static_cast<long long>(args.pairs))
                       ? fetch_pair(args, 0, tid / 2, key)
                       : BatchPair{};
  for (long long k = 0; k < args.steps_per_epoch; ++k) {
    const long long start = k * args.batch;
    const int count = static_cast<int>(min(static_cast<long long>(args.batch), args.pairs - start));
    // Two pow()s in double per step, kStepSizes steps at a time and in parallel: off the critical path.
    if (k % kStepSizes == 0 && tid < kStepSizes) step_sizes[tid] = adam_step_size(args.adam, first_step + k + tid + 1);

    // ---- A: forward and backward, one lookup per thread ----
    clock.start();
    float2 dense_grad = make_float2(0.0f, 0.0f);
    const float scale = 1.0f / static_cast<float>(count);
    for (int j = tid; j < 2 * count; j += kThreads) {
      const int side = j & 1;
      const BatchPair pair = j == tid ? next : fetch_pair(args, start, j / 2, key);
      const size_t row_a = static_cast<size_t>(pair.row_a) * D, row_b = static_cast<size_t>(pair.row_b) * D;
      const size_t own = side ? row_b : row_a;
      // Each thread computes its pair's whole forward (D is small) and keeps its own row's gradient.
      auto add_own = [&](int want_side) {
        return [&, want_side](int c, float g) {
          if (side != want_side) return;
          if constexpr (Deterministic)
            lookup_grad[static_cast<size_t>(j) * D + c] = g;
          else
            add_packed(grad + own + c, g);
        };
      };
      const PairResult<float> r = pair_forward_backward(table + row_a, table + row_b, D, args.normalize, dense.w[0],
                                                        dense.w[1], pair.label, scale, add_own(0), add_own(1));
      if constexpr (Deterministic) lookup_row[j] = side ? pair.row_b : pair.row_a;
      if (side == 0) {  // the pair's Dense gradient and metrics, once
        dense_grad.x += r.dlogit * r.score;
        dense_grad.y += r.dlogit;
        mine.loss += r.loss;
        mine.squared_error += (pair.label - r.prob) * (pair.label - r.prob);
        mine.correct += (r.prob > 0.5f) == (pair.label > 0.5f) ? 1.0 : 0.0;
      }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      dense_grad.x += __shfl_down_sync(0xffffffffu, dense_grad.x, offset);
      dense_grad.y += __shfl_down_sync(0xffffffffu, dense_grad.y, offset);
    }
    if (lane == 0) dense_partial[warp] = dense_grad;
    clock.end(clock.work_a);
    __syncthreads();  // gradients complete

    // ---- B: the optimizer; the next step's pairs are fetched first, to arrive while it runs ----
    clock.start();
    const long long next_start = start + args.batch;
    if (k + 1 < args.steps_per_epoch && tid / 2 < min(static_cast<long long>(args.batch), args.pairs - next_start))
      next = fetch_pair(args, next_start, tid / 2, key);
    const float step_size = step_sizes[k % kStepSizes];
    float2 total = make_float2(0.0f, 0.0f);
    for (int w = 0; w < kWarps; ++w) {  // the same order in every thread
      total.x += dense_partial[w].x;
      total.y += dense_partial[w].y;
    }
    adam_update(dense.w[0], dense.m[0], dense.v[0], total.x, total.x * total.x, step_size, args.coef);
    adam_update(dense.w[1], dense.m[1], dense.v[1], total.y, total.y * total.y, step_size, args.coef);

    if constexpr (Deterministic) {
      // Each row's gradient summed over the batch's lookups in batch order (the CPU reference's).
      for (int64_t row = tid; row < args.rows; row += kThreads)
        for (int c = 0; c < D; ++c) {
          float g = 0.0f, g2 = 0.0f;
          for (int j = 0; j < 2 * count; ++j)
            if (lookup_row[j] == row) {
              const float x = lookup_grad[static_cast<size_t>(j) * D + c];
              g += x;
              g2 += x * x;
            }
          const size_t idx = static_cast<size_t>(row) * D + c;
          adam_update(table[idx], m[idx], v[idx], g, keras_squares ? g2 : g * g, step_size, args.coef);
        }
    } else {
      for (size_t i = tid; i < n; i += kThreads) {
        const float2 g = grad[i];
        grad[i] = make_float2(0.0f, 0.0f);
        adam_update(table[i], m[i], v[i], g.x, keras_squares ? g.y : g.x * g.x, step_size, args.coef);
      }
    }
    clock.end(clock.work_b);
    __syncthreads();  // parameters updated and gradient zeroed before the next step reads them
  }

  if (clock.on && lane == 0) {
    PhaseCycles* out = args.phase_cycles;
    atomicAdd(&out->work_a[warp], static_cast<unsigned long long>(clock.work_a));
    atomicAdd(&out->work_b[warp], static_cast<unsigned long long>(clock.work_b));
    if (tid == 0) {
      atomicAdd(&out->steps, static_cast<unsigned long long>(args.steps_per_epoch));
      atomicAdd(&out->total, static_cast<unsigned long long>(clock64() - epoch_start));
    }
  }
  for (size_t i = tid; i < n; i += kThreads) {
    args.table[i] = table[i];
    args.table_m[i] = m[i];
    args.table_v[i] = v[i];
  }
  const EpochSums sums = cub::BlockReduce<EpochSums, kThreads>(sums_temp).Sum(mine);
  if (tid == 0) {
    for (int p = 0; p < 2; ++p) {
      s->dense[p] = dense.w[p];
      s->dense_m[p] = dense.m[p];
      s->dense_v[p] = dense.v[p];
    }
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
  return 5 * table;  // table, m, v, and the packed (g, g^2)
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
