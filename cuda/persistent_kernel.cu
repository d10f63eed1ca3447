// persistent: one thread block keeps the table, its gradient and both Adam moments in shared memory
// and trains many epochs per launch (StepArgs::epochs), writing a snapshot of each epoch's end for
// the host (EpochSnapshots copies them back while the next launch trains). For small tables (the
// colours: 646 x 2) the step is bound by latency and instruction issue on one SM, not bandwidth,
// and this removes every launch and global round trip inside the epoch, and the per-epoch launch,
// copies and synchronisation between epochs.
//
// The block's warps split in two (docs/design.md, "The persistent step"). A step is two phases
// and two barriers:
//   A  compute warps (0-15): one pair per thread from the pair buffer: its forward, both rows'
//      gradients into shared memory, the Dense gradient into the thread's slot;
//      fetch warps (16-31): the next step's pairs, permuted and loaded from global memory into the
//      other half of the double-buffered pair buffer, so their latency hides behind the compute;
//   -- barrier: gradients complete, next pairs in place --
//   B  all warps: the table's Adam, element by element; compute warps also sum the 512 Dense
//      slots (a butterfly at the end) and update their copy of the Dense layer (every copy sees
//      the same sums in the same order, so they stay equal without a broadcast).
//      Deterministic: first a stable block radix sort of the step's lookups by row (its own
//      barriers, and one after it), so that a thread finds its rows' lookups and sums them in
//      slot order (see sort_lookups; docs/design.md, "deterministic's optimizer phase");
//   -- barrier: parameters updated, gradient zeroed --
// The Ncu profile of the first restructure (one lookup per thread) showed the step issue-bound:
// 28,700 warp instructions a step, most of them a pair's forward computed twice, the permutation
// computed twice, and CAS loops run once per divergent group. Hence one pair per thread, fetching
// in other warps, and __syncwarp() before the CAS loops. Its second profile still showed the CAS
// loops splitting warps (lanes that succeeded ran ahead, and the rest of the backward then ran once
// per group) and the Dense shuffles taking their diverged path: hence a warp-uniform CAS loop, and
// per-thread Dense slots summed in phase B, where warps are converged.
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>

#include "cuda_check.hpp"
#include "cudaembed/error.hpp"
#include "train_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 1024;
constexpr int kComputeThreads = kThreads / 2;  // warps 0-15; warps 16-31 fetch
static_assert(kComputeThreads % 32 == 0, "dense_gradient reads the slots 32 at a time");
// Adam step sizes are computed this many steps at a time. Small, so that the kernel's static shared
// memory stays within the 4 KiB that kernel_registry.cpp reserves for it.
constexpr int kStepSizes = 256;

// The deterministic variant sorts a step's lookups (2 per pair) with kSortItems per thread: batches
// up to kSortPairs pairs, the common sizes (the default is 512). Larger batches keep the scan of
// every lookup per row and column (correct and in the same order, only slower): see phase B.
constexpr int kSortItems = 4;
constexpr std::size_t kSortPairs = kThreads * kSortItems / 2;  // 2048
// Keys are rows, values are slots. Its TempStorage (36 KiB: mostly the 4-bit digit counters of
// 1024 threads) lives in dynamic shared memory, counted by persistent_shared_bytes.
using LookupSort = cub::BlockRadixSort<uint32_t, kThreads, kSortItems, uint32_t>;
constexpr std::size_t kSortAlign = alignof(LookupSort::TempStorage);

__host__ __device__ constexpr bool sorts_lookups(std::size_t batch) { return batch <= kSortPairs; }

struct EpochSums {
  double loss, squared_error, correct;
  __device__ EpochSums operator+(const EpochSums& o) const {
    return {loss + o.loss, squared_error + o.squared_error, correct + o.correct};
  }
};

// A batch member: both rows and the label, as the pair buffer holds it.
struct BatchPair {
  uint32_t row_a, row_b;
  float label;
};

// Where an epoch's steps are. 32-bit: an epoch has fewer than 2^32 pairs.
struct StepPosition {
  uint32_t start;  // the batch's first position in the epoch's permutation
  uint32_t count;  // pairs in the batch (the last one may be partial)
};

__device__ StepPosition step_position(const StepArgs& args, uint32_t k) {
  const uint32_t start = k * static_cast<uint32_t>(args.batch);
  return {start, min(static_cast<uint32_t>(args.batch), args.pairs - start)};
}

// The fetch warps' part of a step: the batch at `pos` into `into` (batch,).
__device__ void fetch_batch(const StepArgs& args, const StepPosition& pos, const Permutation& perm, BatchPair* into,
                            int fetcher) {
  for (uint32_t i = fetcher; i < pos.count; i += kThreads - kComputeThreads) {
    const uint32_t id = permute_index(pos.start + i, perm);
    into[i] = {args.pair_a[id], args.pair_b[id], args.label[id]};
  }
}

// The Dense layer: lane 0 of every compute warp keeps the weight, lane 1 the bias, each with its
// Adam moments; the whole warp holds both values after each step (see the header).
struct DenseLayer {
  float param, m, v;  // this lane's parameter (lanes 0 and 1)
  float w, b;         // both, in every lane
};

// The step's Dense gradient from the compute threads' slots (kComputeThreads,): lane l sums slots
// l, l + 32, ... in that order, and a butterfly gives every lane the total. Each level adds the
// same two values in each lane of a pair (a + b == b + a exactly), so every lane of every warp ends
// with the same bits, without a barrier to broadcast them.
__device__ float2 dense_gradient(const float2* slots, int lane) {
  float2 g = slots[lane];
  for (int j = lane + 32; j < kComputeThreads; j += 32) {
    g.x += slots[j].x;
    g.y += slots[j].y;
  }
  for (int mask = 16; mask > 0; mask /= 2) {
    g.x += __shfl_xor_sync(0xffffffffu, g.x, mask);
    g.y += __shfl_xor_sync(0xffffffffu, g.y, mask);
  }
  return g;
}

// Adds g to element .x and g^2 to .y with one 64-bit compare-and-swap. sm_90 has no shared-memory
// float atomicAdd: it compiles to a CAS loop anyway, so packing the two sums halves the loops. The
// retry loop is one the warp's `lanes` run together: in a loop per lane, lanes that succeed run
// ahead and the warp then runs the rest of the backward once per group.
__device__ void add_packed(float2* at, float g, unsigned lanes) {
  auto* word = reinterpret_cast<unsigned long long*>(at);  // .x in the low half (little-endian)
  unsigned long long seen = *word;
  bool pending = true;
  while (__any_sync(lanes, pending)) {
    if (pending) {
      const unsigned long long expected = seen;
      const float x = __uint_as_float(static_cast<unsigned>(expected)) + g;
      const float y = __uint_as_float(static_cast<unsigned>(expected >> 32)) + g * g;
      seen = atomicCAS(word, expected, static_cast<unsigned long long>(__float_as_uint(y)) << 32 | __float_as_uint(x));
      pending = seen != expected;  // compares bits, so a NaN cannot make it spin
    }
  }
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

// Phase A of a compute thread: pair i of the batch through the model and back; both rows'
// gradients go to shared memory (Deterministic: to the pair's two lookup slots, for batch-order
// sums in phase B). Returns the pair's Dense gradient (dL/dw, dL/db).
template <bool Deterministic>
__device__ float2 train_pair(const StepArgs& args, const BatchPair& pair, uint32_t i, float scale,
                             const DenseLayer& dense, const float* table, float2* grad, float* lookup_grad,
                             uint32_t* lookup_row, EpochSums& sums, unsigned lanes) {
  const int D = args.dims;
  const size_t row_a = static_cast<size_t>(pair.row_a) * D, row_b = static_cast<size_t>(pair.row_b) * D;
  const PairForward<float> f = pair_forward(table + row_a, table + row_b, D, args.normalize);
  const LogitLoss<float> out = bce_from_logit(dense.w * f.score + dense.b, pair.label);
  const float dlogit = out.dlogit * scale;
  // The forward's branches (expf, logf, the label) split the warp; the CAS loops below would run
  // once per split group without this. `lanes`: those of the warp with a pair here.
  __syncwarp(lanes);
  if constexpr (Deterministic) {
    lookup_row[2 * i] = pair.row_a;
    lookup_row[2 * i + 1] = pair.row_b;
    float* slot_a = lookup_grad + static_cast<size_t>(2 * i) * D;
    float* slot_b = slot_a + D;
    pair_backward(
        table + row_a, table + row_b, D, f, dlogit * dense.w, [&](int c, float g) { slot_a[c] = g; },
        [&](int c, float g) { slot_b[c] = g; });
  } else {
    pair_backward(
        table + row_a, table + row_b, D, f, dlogit * dense.w,
        [&](int c, float g) { add_packed(grad + row_a + c, g, lanes); },
        [&](int c, float g) { add_packed(grad + row_b + c, g, lanes); });
  }
  sums.loss += out.loss;
  sums.squared_error += (pair.label - out.prob) * (pair.label - out.prob);
  sums.correct += (out.prob > 0.5f) == (pair.label > 0.5f) ? 1.0 : 0.0;
  return make_float2(dlogit * f.score, dlogit);
}

// Deterministic phase B: sorts the step's `lookups` lookups by row, stably, in place. lookup_row
// (lookups,) becomes ascending and sorted_slot (lookups,) holds the slot each came from, ascending
// within a row: the order the scan of every slot adds them in, so the sums keep their bits.
__device__ void sort_lookups(uint32_t* lookup_row, uint32_t* sorted_slot, uint32_t lookups, uint32_t rows,
                             LookupSort::TempStorage& temp) {
  const uint32_t first = threadIdx.x * kSortItems;  // blocked: thread t holds slots t * kSortItems + i
  uint32_t row[kSortItems], slot[kSortItems];
  for (int i = 0; i < kSortItems; ++i) {
    slot[i] = first + i;
    row[i] = slot[i] < lookups ? lookup_row[slot[i]] : rows;  // padding sorts after every row
  }
  // Only the bits that 0..rows take (10 for the colours: 3 passes of 4). Each pass is stable.
  const int row_bits = 32 - __clz(static_cast<int>(rows));
  LookupSort(temp).Sort(row, slot, 0, row_bits);
  // Sort's barriers order these writes after every thread's reads above.
  for (int i = 0; i < kSortItems; ++i)
    if (first + i < lookups) {
      lookup_row[first + i] = row[i];
      sorted_slot[first + i] = slot[i];
    }
}

// Deterministic phase B for one row: for each column, the row's lookup gradients (lookup_grad
// (lookups, D)) summed from 0 in ascending slot order, as for_each_slot(add) visits them, then Adam.
// A row without lookups gets Adam with a zero gradient (dense Adam decays every row).
template <class ForEachSlot>
__device__ void adam_row(const StepArgs& args, int64_t row, ForEachSlot for_each_slot, const float* lookup_grad,
                         float* table, float* m, float* v, float step_size) {
  const int D = args.dims;
  for (int c = 0; c < D; ++c) {
    float g = 0.0f, g2 = 0.0f;
    for_each_slot([&](uint32_t j) {
      const float x = lookup_grad[static_cast<size_t>(j) * D + c];
      g += x;
      g2 += x * x;
    });
    const size_t idx = static_cast<size_t>(row) * D + c;
    adam_update(table[idx], m[idx], v[idx], g, args.grad_sq ? g2 : g * g, step_size, args.coef);
  }
}

// The block's dynamic shared memory, as persistent_shared_bytes sizes it.
struct SharedLayout {
  float2* dense_slots;     // (kComputeThreads,) each compute thread's Dense gradient this step
  BatchPair* pair_buffer;  // (2, batch) this step's pairs and the next's
  float2* grad;            // atomic mode: (N, D) x (g, g^2), the gradient and Keras's per-lookup squares
  float *table, *m, *v;    // (N, D) each
  // Deterministic mode: each lookup's gradient (2 * batch, D) and its row (2 * batch,); when the
  // batch is one it sorts, the sorted lookups' slots (2 * batch,) and the sort's storage.
  float* lookup_grad;
  uint32_t* lookup_row;
  uint32_t* sorted_slot;
  LookupSort::TempStorage* sort_temp;
};

template <bool Deterministic>
__device__ SharedLayout shared_layout(float* smem, size_t n, size_t batch, int D) {
  SharedLayout l{};
  l.dense_slots = reinterpret_cast<float2*>(smem);
  // 2 * batch * 12 bytes, a multiple of 8, so the float2 gradient after them stays aligned.
  l.pair_buffer = reinterpret_cast<BatchPair*>(l.dense_slots + kComputeThreads);
  float* rest = reinterpret_cast<float*>(l.pair_buffer + 2 * batch);
  l.grad = reinterpret_cast<float2*>(rest);
  l.table = Deterministic ? rest : rest + 2 * n;
  l.m = l.table + n;
  l.v = l.m + n;
  l.lookup_grad = l.v + n;
  l.lookup_row = reinterpret_cast<uint32_t*>(l.lookup_grad + 2 * batch * D);
  l.sorted_slot = l.lookup_row + 2 * batch;
  const size_t sort_at =
      (reinterpret_cast<char*>(l.sorted_slot + 2 * batch) - reinterpret_cast<char*>(smem) + kSortAlign - 1) /
      kSortAlign * kSortAlign;
  l.sort_temp = reinterpret_cast<LookupSort::TempStorage*>(reinterpret_cast<char*>(smem) + sort_at);
  return l;
}

// Deterministic phase B: each row's gradient summed over the batch's lookups in batch order (the
// CPU reference's), then Adam.
__device__ void deterministic_rows(const StepArgs& args, const SharedLayout& l, uint32_t count, float step_size) {
  const int tid = threadIdx.x;
  const uint32_t lookups = 2 * count;
  if (sorts_lookups(static_cast<size_t>(args.batch))) {  // the same for every thread: the barriers are the block's
    sort_lookups(l.lookup_row, l.sorted_slot, lookups, static_cast<uint32_t>(args.rows), *l.sort_temp);
    __syncthreads();  // the sorted lookups complete before any row reads them
    for (int64_t row = tid; row < args.rows; row += kThreads) {
      // The row's run among the sorted lookups: [first, last).
      const uint32_t first = lower_bound_in(l.lookup_row, lookups, static_cast<uint32_t>(row));
      const uint32_t last = lower_bound_in(l.lookup_row, lookups, static_cast<uint32_t>(row) + 1);
      const auto run = [&](auto add) {
        for (uint32_t p = first; p < last; ++p) add(l.sorted_slot[p]);
      };
      adam_row(args, row, run, l.lookup_grad, l.table, l.m, l.v, step_size);
    }
  } else {  // beyond the sort's capacity: every lookup scanned, per row and column
    for (int64_t row = tid; row < args.rows; row += kThreads) {
      const auto scan = [&](auto add) {
        for (uint32_t j = 0; j < lookups; ++j)
          if (l.lookup_row[j] == row) add(j);
      };
      adam_row(args, row, scan, l.lookup_grad, l.table, l.m, l.v, step_size);
    }
  }
}

// Every step of the epoch that starts at Adam step `first_step`, its first batch already in
// pair_buffer[0]. Adds the pairs' sums to `mine`; ends on a barrier.
template <bool Deterministic>
__device__ void train_steps(const StepArgs& args, const SharedLayout& l, long long first_step, const Permutation& perm,
                            DenseLayer& dense, float* step_sizes, EpochSums& mine, PhaseClock& clock) {
  const int tid = threadIdx.x, lane = tid % 32, own_param = min(lane, 1);
  const bool computes = tid < kComputeThreads;
  const size_t n = static_cast<size_t>(args.rows) * args.dims, batch = static_cast<size_t>(args.batch);
  const auto steps = static_cast<uint32_t>(args.steps_per_epoch);
  for (uint32_t k = 0; k < steps; ++k) {
    const StepPosition pos = step_position(args, k);
    // Two pow()s in double per step, kStepSizes steps at a time and in parallel: off the critical path.
    if (k % kStepSizes == 0 && tid < kStepSizes) step_sizes[tid] = adam_step_size(args.adam, first_step + k + tid + 1);

    // ---- A: forward and backward in the compute warps, the next batch in the fetch warps ----
    clock.start();
    if (computes) {
      const BatchPair* batch_pairs = l.pair_buffer + (k % 2) * batch;
      float2 dense_grad = make_float2(0.0f, 0.0f);
      const float scale = 1.0f / static_cast<float>(pos.count);
      for (uint32_t base = 0; base < pos.count; base += kComputeThreads) {  // the same trip count in a warp
        const uint32_t i = base + tid;
        const unsigned lanes = __ballot_sync(0xffffffffu, i < pos.count);
        if (i < pos.count) {
          const float2 g = train_pair<Deterministic>(args, batch_pairs[i], i, scale, dense, l.table, l.grad,
                                                     l.lookup_grad, l.lookup_row, mine, lanes);
          dense_grad.x += g.x;
          dense_grad.y += g.y;
        }
      }
      l.dense_slots[tid] = dense_grad;
    } else if (k + 1 < steps) {
      fetch_batch(args, step_position(args, k + 1), perm, l.pair_buffer + ((k + 1) % 2) * batch, tid - kComputeThreads);
    }
    clock.end(clock.work_a);
    __syncthreads();  // gradients complete, the next batch in place

    // ---- B: the optimizer ----
    clock.start();
    const float step_size = step_sizes[k % kStepSizes];
    if (computes) {
      const float2 total = dense_gradient(l.dense_slots, lane);
      const float g = own_param == 0 ? total.x : total.y;
      adam_update(dense.param, dense.m, dense.v, g, g * g, step_size, args.coef);
      dense.w = __shfl_sync(0xffffffffu, dense.param, 0);
      dense.b = __shfl_sync(0xffffffffu, dense.param, 1);
    }
    if constexpr (Deterministic) {
      deterministic_rows(args, l, pos.count, step_size);
    } else {
      for (size_t i = tid; i < n; i += kThreads) {
        const float2 g = l.grad[i];
        l.grad[i] = make_float2(0.0f, 0.0f);
        adam_update(l.table[i], l.m[i], l.v[i], g.x, args.grad_sq ? g.y : g.x * g.x, step_size, args.coef);
      }
    }
    clock.end(clock.work_b);
    __syncthreads();  // parameters updated and gradient zeroed before the next step reads them
  }
}

using SumsReduce = cub::BlockReduce<EpochSums, kThreads>;

// The end of epoch `e` of this launch, for the host: the table, m and v (snapshot_params), and the
// epoch's sums, the Dense layer and whether the table is all finite (snapshot_heads). The finite
// flag costs nothing extra: each value is checked as it is copied out.
__device__ void write_snapshot(const StepArgs& args, int e, const SharedLayout& l, const DenseLayer& dense,
                               const EpochSums& mine, long long step, SumsReduce::TempStorage& temp) {
  const int tid = threadIdx.x;
  const size_t n = static_cast<size_t>(args.rows) * args.dims;
  float* out = args.snapshot_params + static_cast<size_t>(e) * 3 * n;  // (3, N, D)
  bool finite = true;
  for (size_t i = tid; i < n; i += kThreads) {
    out[i] = l.table[i];
    out[n + i] = l.m[i];
    out[2 * n + i] = l.v[i];
    finite = finite && isfinite(l.table[i]);
  }
  const bool all_finite = __syncthreads_and(finite);
  const EpochSums sums = SumsReduce(temp).Sum(mine);  // valid in thread 0
  EpochSnapshot& head = args.snapshot_heads[e];
  if (tid < 2) {  // lanes 0 and 1 of warp 0: the weight's and the bias's owners
    head.dense[tid] = dense.param;
    head.dense_m[tid] = dense.m;
    head.dense_v[tid] = dense.v;
  }
  if (tid == 0) {
    head.loss_sum = sums.loss;
    head.squared_error_sum = sums.squared_error;
    head.correct = static_cast<unsigned long long>(sums.correct);
    head.step = step;
    head.nonfinite = all_finite ? 0u : 1u;
  }
}

// Trains args.epochs epochs from the state in args (table, m, v) and args.scalars (the Dense
// layer and the step), writes each epoch's snapshot, and leaves the state where it found it.
template <bool Deterministic>
__global__ void __launch_bounds__(kThreads) persistent_epoch(StepArgs args) {
  extern __shared__ __align__(16) float smem[];  // 16: the sort's storage (Deterministic)
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const size_t n = static_cast<size_t>(args.rows) * args.dims;
  const SharedLayout l = shared_layout<Deterministic>(smem, n, static_cast<size_t>(args.batch), args.dims);
  __shared__ float step_sizes[kStepSizes];  // Adam's step sizes for this chunk of steps
  __shared__ typename SumsReduce::TempStorage sums_temp;

  DeviceScalars* s = args.scalars;
  for (size_t i = tid; i < n; i += kThreads) {
    l.table[i] = args.table[i];
    l.m[i] = args.table_m[i];
    l.v[i] = args.table_v[i];
    if constexpr (!Deterministic) l.grad[i] = make_float2(0.0f, 0.0f);
  }
  const int own_param = min(lane, 1);  // lanes 0 and 1 own the weight and the bias; the rest mirror 1
  DenseLayer dense{s->dense[own_param], s->dense_m[own_param], s->dense_v[own_param], s->dense[0], s->dense[1]};
  const long long launch_step = s->step;
  PhaseClock clock{args.phase_cycles != nullptr};
  long long loop_cycles = 0;

  for (int e = 0; e < args.epochs; ++e) {
    const long long first_step = launch_step + e * args.steps_per_epoch;
    const Permutation perm =
        make_permutation(args.pairs, epoch_shuffle_key(args.seed, first_step / args.steps_per_epoch));
    // The last epoch's steps and snapshot ended on barriers: nobody reads the pair buffer now.
    if (tid >= kComputeThreads) fetch_batch(args, step_position(args, 0), perm, l.pair_buffer, tid - kComputeThreads);
    __syncthreads();  // the table (first epoch) and the first batch in shared memory before any pair reads them
    const long long loop_start = clock.on ? clock64() : 0;
    EpochSums mine{0, 0, 0};
    train_steps<Deterministic>(args, l, first_step, perm, dense, step_sizes, mine, clock);
    if (clock.on) loop_cycles += clock64() - loop_start;
    write_snapshot(args, e, l, dense, mine, first_step + args.steps_per_epoch, sums_temp);
  }

  if (clock.on && lane == 0) {
    PhaseCycles* out = args.phase_cycles;
    atomicAdd(&out->work_a[warp], static_cast<unsigned long long>(clock.work_a));
    atomicAdd(&out->work_b[warp], static_cast<unsigned long long>(clock.work_b));
    if (tid == 0) {
      atomicAdd(&out->steps, static_cast<unsigned long long>(args.steps_per_epoch * args.epochs));
      atomicAdd(&out->total, static_cast<unsigned long long>(loop_cycles));
    }
  }
  for (size_t i = tid; i < n; i += kThreads) {
    args.table[i] = l.table[i];
    args.table_m[i] = l.m[i];
    args.table_v[i] = l.v[i];
  }
  if (tid < 2) {
    s->dense[tid] = dense.param;
    s->dense_m[tid] = dense.m;
    s->dense_v[tid] = dense.v;
  }
  if (tid == 0) s->step = launch_step + args.steps_per_epoch * args.epochs;
}

}  // namespace

std::size_t persistent_shared_bytes(const StepArgs& args, bool deterministic) {
  const auto table = static_cast<std::size_t>(args.rows) * args.dims * sizeof(float);
  const auto batch = static_cast<std::size_t>(args.batch);
  // The compute threads' Dense slots, and this step's pairs and the next's.
  const std::size_t pair_buffer = kComputeThreads * sizeof(float2) + 2 * batch * sizeof(BatchPair);
  if (deterministic) {  // table, m, v, and the batch's lookups: a gradient of D floats and a row each
    const std::size_t bytes = pair_buffer + 3 * table + 2 * batch * (args.dims * sizeof(float) + sizeof(uint32_t));
    if (!sorts_lookups(batch)) return bytes;
    // The sorted slots, then the sort's storage at its alignment (as the kernel lays them out).
    const std::size_t slots = bytes + 2 * batch * sizeof(uint32_t);
    return (slots + kSortAlign - 1) / kSortAlign * kSortAlign + sizeof(LookupSort::TempStorage);
  }
  return pair_buffer + 5 * table;  // table, m, v, and the packed (g, g^2)
}

template <bool Deterministic>
void launch_persistent(const StepArgs& args, cudaStream_t stream) {
  if (args.epochs < 1 || !args.snapshot_heads || !args.snapshot_params)
    throw Error("persistent_epoch: a launch needs at least one epoch and somewhere to write its snapshots");
  const std::size_t bytes = persistent_shared_bytes(args, Deterministic);
  CE_CUDA_CHECK(cudaFuncSetAttribute(persistent_epoch<Deterministic>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(bytes)));
  persistent_epoch<Deterministic><<<1, kThreads, bytes, stream>>>(args);
  CE_CHECK_LAUNCH("persistent_epoch");
}

void run_epoch_persistent(const StepArgs& args, cudaStream_t stream) { launch_persistent<false>(args, stream); }

void run_epoch_deterministic(const StepArgs& args, cudaStream_t stream) { launch_persistent<true>(args, stream); }

}  // namespace cudaembed
