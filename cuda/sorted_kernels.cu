// The sorted-segment step (see sorted_kernels.hpp): FBGEMM's way of training an embedding table.
// Rows are held in registers by a group of kLanes lanes with 16-byte loads where D allows; the row
// width D is a template parameter, chosen by one switch (with_dims). All math is cudaembed/math.hpp's.
#include <algorithm>

#include <cub/block/block_reduce.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#include "cuda_check.hpp"
#include "cudaembed/error.hpp"
#include "grid_stride.hpp"
#include "sorted_kernels.hpp"

namespace cudaembed {
namespace {

constexpr int kThreads = 256;
constexpr int kHotThreads = 512;
constexpr int kFinishThreads = 256;
static_assert(kFinishChunk % kFinishThreads == 0);

// How a group of lanes holds a row of D floats: kLanes lanes, each with kLoads loads of kVec floats.
template <int D>
struct RowLayout {
  static constexpr int kVec = D % 4 == 0 ? 4 : 1;
  static constexpr int kLanes = D % 4 == 0 ? (D / 4 < 32 ? D / 4 : 32) : 1;
  static constexpr int kLoads = D / (kVec * kLanes);
  static constexpr int kPerLane = kVec * kLoads;
  static_assert(kLoads * kVec * kLanes == D && 32 % kLanes == 0);
};

// The element of the row that a lane's i-th value is.
template <int D>
__device__ __forceinline__ int element(int lane_in_group, int i) {
  using L = RowLayout<D>;
  return ((i / L::kVec) * L::kLanes + lane_in_group) * L::kVec + i % L::kVec;
}

template <int D>
using LaneRow = float[RowLayout<D>::kPerLane];

template <int D>
__device__ __forceinline__ void load_row(const float* row, int lane_in_group, LaneRow<D>& out) {
  using L = RowLayout<D>;
#pragma unroll
  for (int e = 0; e < L::kLoads; ++e) {
    const int at = element<D>(lane_in_group, e * L::kVec);
    if constexpr (L::kVec == 4) {
      const float4 v = *reinterpret_cast<const float4*>(row + at);
      out[4 * e] = v.x;
      out[4 * e + 1] = v.y;
      out[4 * e + 2] = v.z;
      out[4 * e + 3] = v.w;
    } else {
      out[e] = row[at];
    }
  }
}

template <int D>
__device__ __forceinline__ void store_row(float* row, int lane_in_group, const LaneRow<D>& in) {
  using L = RowLayout<D>;
#pragma unroll
  for (int e = 0; e < L::kLoads; ++e) {
    const int at = element<D>(lane_in_group, e * L::kVec);
    if constexpr (L::kVec == 4) {
      *reinterpret_cast<float4*>(row + at) = make_float4(in[4 * e], in[4 * e + 1], in[4 * e + 2], in[4 * e + 3]);
    } else {
      row[at] = in[e];
    }
  }
}

// Sum over the lanes of a group. Every lane of the warp must call it (full-warp shuffles).
template <int D>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int offset = RowLayout<D>::kLanes / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Adam's step size for step t (1-based): the host's table, or adam_step_size where there is none.
__device__ __forceinline__ float step_size_at(const SortedArgs& a, long long t) {
  if (a.step_size_count == 0) return adam_step_size(a.adam, t);
  return a.step_sizes[min(t, static_cast<long long>(a.step_size_count)) - 1];
}

// Where this step's batch sits, from the step counter in device memory.
struct StepShape {
  long long step;  // 0-based
  uint32_t first;  // the batch's first position in the epoch's permutation
  uint32_t samples;
  Permutation perm;  // the epoch's shuffle
};

__device__ StepShape step_shape(const SortedArgs& a) {
  StepShape s;
  s.step = a.scalars->step;
  const long long epoch = s.step / a.steps_per_epoch;
  s.first = static_cast<uint32_t>((s.step % a.steps_per_epoch) * a.batch);
  const uint32_t pairs = min(static_cast<uint32_t>(a.batch), a.pair_count - s.first);
  s.samples = pairs * static_cast<uint32_t>(a.negatives + 1);
  s.perm = make_permutation(a.pair_count, epoch_shuffle_key(a.seed, epoch));
  return s;
}

// Sample s of the step, as host/train/sorted_step.cpp's step_sample.
__device__ PairRecord step_sample(const SortedArgs& a, const StepShape& shape, uint32_t s) {
  const uint32_t group = static_cast<uint32_t>(a.negatives) + 1;
  const PairRecord pair = a.pairs[permute_index(shape.first + s / group, shape.perm)];
  if (s % group == 0) return pair;
  return {pair.a, negative_row(a.seed, shape.step, s, a.rows), 0.0f, pair.weight};
}

// Lookups 2s and 2s + 1 (sample s's a and b) for the sort: their rows, or the sentinel `rows`
// (sorted last) for a slot past this step's samples.
__device__ __forceinline__ void write_lookup_rows(const SortedArgs& a, uint32_t s, bool valid, const PairRecord& x) {
  a.lookup_row[2 * s] = valid ? x.a : a.rows;
  a.lookup_row[2 * s + 1] = valid ? x.b : a.rows;
  a.lookup_id[2 * s] = 2 * s;
  a.lookup_id[2 * s + 1] = 2 * s + 1;
}

// 1: a lane group per sample: gather both rows, the head, sigmoid, BCE, and both row gradients
// into the sample's own rows of lookup_grad. On one GPU the grid covers every slot of the step
// (slots past its samples become sentinel lookups) and writes the lookups' rows for the sort. Of
// K ranks the grid covers the longest slice and each rank computes its own slice: data parallel
// draws the samples here (sorted_lookup_rows writes every slot's rows); row sharded reads the
// host's planned samples, ids into the rows received (the plan brings the rows for the sort). The
// exchanges bring the other ranks' gradients and partials.
template <int D>
__global__ void __launch_bounds__(kThreads) sorted_forward_backward(SortedArgs a) {
  using L = RowLayout<D>;
  const int g = (threadIdx.x & 31) % L::kLanes;
  const uint32_t t = (blockIdx.x * kThreads + threadIdx.x) / L::kLanes;
  const StepShape shape = step_shape(a);
  const bool alone = a.ranks == 1;  // which skips rank_slice's 64-bit division
  const Slice slice = alone ? Slice{0, shape.samples} : rank_slice(shape.samples, a.rank, a.ranks);
  const auto s = static_cast<uint32_t>(slice.begin) + t;
  const bool mine = s < slice.end;  // a sample of this step that this rank computes
  // A lane group past its slice computes row 0 twice and stores nothing: the whole warp must take
  // part in group_sum's shuffles.
  const PairRecord x = !mine               ? PairRecord{0, 0, 0.0f, 0.0f}
                       : a.planned_samples ? a.planned_samples[s]
                                           : step_sample(a, shape, s);

  LaneRow<D> ea, eb;
  load_row<D>(a.read_table + static_cast<size_t>(x.a) * D, g, ea);
  load_row<D>(a.read_table + static_cast<size_t>(x.b) * D, g, eb);
  PairForward<float> f{0, 1, 1, 0, 0};
  bool project_a = false, project_b = false;
  if (a.normalize) {  // as pair_forward, with the sums shared across the group
    float ss_a = 0, ss_b = 0;
    for (int i = 0; i < L::kPerLane; ++i) {
      ss_a += ea[i] * ea[i];
      ss_b += eb[i] * eb[i];
    }
    ss_a = group_sum<D>(ss_a);
    ss_b = group_sum<D>(ss_b);
    project_a = ss_a > kNormalizeEpsilon;
    project_b = ss_b > kNormalizeEpsilon;
    f.inv_a = 1.0f / sqrtf(fmaxf(ss_a, kNormalizeEpsilon));
    f.inv_b = 1.0f / sqrtf(fmaxf(ss_b, kNormalizeEpsilon));
  }
  for (int i = 0; i < L::kPerLane; ++i) head_accumulate(a.head, ea[i] * f.inv_a, eb[i] * f.inv_b, f);
  f.score = group_sum<D>(f.score);
  f.dot_a = group_sum<D>(f.dot_a);
  f.dot_b = group_sum<D>(f.dot_b);
  head_finish(a.head, D, project_a, project_b, f);

  const float w = a.scalars->dense[0], bias = a.scalars->dense[1];
  const LogitLoss<float> out = bce_from_logit(w * f.score + bias, x.label);
  const float dlogit = out.dlogit * (x.weight * (1.0f / static_cast<float>(shape.samples)));
  const HeadScale<float> scale = head_scale(a.head, f, dlogit * w);
  LaneRow<D> ga, gb;
  for (int i = 0; i < L::kPerLane; ++i) head_gradient(a.head, ea[i] * f.inv_a, eb[i] * f.inv_b, f, scale, ga[i], gb[i]);

  if (s >= a.max_samples) return;
  if (mine) {
    store_row<D>(a.lookup_grad + static_cast<size_t>(2 * s) * D, g, ga);
    store_row<D>(a.lookup_grad + static_cast<size_t>(2 * s + 1) * D, g, gb);
  }
  if (g != 0) return;
  if (alone)
    write_lookup_rows(a, s, mine, x);  // alone, mine is "a sample of this step"
  else if (!mine)
    return;
  float* p = a.sample_partials + s;  // column s of (5, max_samples): each partial coalesced across samples
  const size_t column = a.max_samples;
  const float error = x.label - out.prob;
  p[0] = mine ? dlogit * f.score : 0.0f;
  p[column] = mine ? dlogit : 0.0f;
  p[2 * column] = mine ? x.weight * out.loss : 0.0f;
  p[3 * column] = mine ? error * error : 0.0f;
  p[4 * column] = mine && (out.prob > 0.5f) == (x.label > 0.5f) ? 1.0f : 0.0f;
}

// The group's |x|^2 of a row it holds. Every lane of the warp must call it.
template <int D>
__device__ __forceinline__ float group_sq_norm(const LaneRow<D>& p) {
  float sum = 0.0f;
  for (int i = 0; i < RowLayout<D>::kPerLane; ++i) sum += p[i] * p[i];
  return group_sum<D>(sum);
}

// The burn-in's factor on the learning rate of step `step` (1-based), as the CPU backend's.
__device__ __forceinline__ float lr_scale_at(const SortedArgs& a, long long step) {
  return burn_in_scale((step - 1) / a.steps_per_epoch, a.burn_in);
}

// rsgd and radam on one row, as host/train/sorted_step.cpp's apply_row_update: the gradient rescaled by
// the metric at the row, the step, the retraction. Every lane of the warp calls it (the norms
// shuffle); groups that are not `mine` work on zeros and write nothing.
template <int D>
__device__ void update_row_riemannian(const SortedArgs& a, uint32_t row, int g, bool mine, const LaneRow<D>& grad,
                                      const LaneRow<D>& grad_sq, long long step) {
  using L = RowLayout<D>;
  float* p_row = a.table + static_cast<size_t>(row) * D;
  LaneRow<D> p = {};
  if (mine) load_row<D>(p_row, g, p);
  const float s = poincare_metric_scale(group_sq_norm<D>(p));
  const float lr_scale = lr_scale_at(a, step);
  if (a.optimizer == Optimizer::radam) {
    float* m_row = a.table_m + static_cast<size_t>(row) * D;
    float* v_row = a.table_v + static_cast<size_t>(row) * D;
    LaneRow<D> m = {}, v = {};
    long long t = 1;
    if (mine) {
      t = a.row_step[row] + 1;
      load_row<D>(m_row, g, m);
      load_row<D>(v_row, g, v);
    }
    const float step_size = step_size_at(a, t) * lr_scale;
    for (int i = 0; i < L::kPerLane; ++i) radam_update(p[i], m[i], v[i], grad[i], grad_sq[i], s, step_size, a.coef);
    __syncwarp();  // every lane has read the row's step count before lane 0 writes it
    if (mine) {
      if (g == 0) a.row_step[row] = t;
      store_row<D>(m_row, g, m);
      store_row<D>(v_row, g, v);
    }
  } else {
    for (int i = 0; i < L::kPerLane; ++i) sgd_update(p[i], s * grad[i], a.adam.lr * lr_scale);
  }
  const float r = ball_retraction(group_sq_norm<D>(p));
  if (r < 1.0f)
    for (int i = 0; i < L::kPerLane; ++i) p[i] *= r;
  if (mine) store_row<D>(p_row, g, p);
}

// The optimizer on one row, given the group's share of its summed gradient and per-lookup squares.
// Every lane of the warp calls it (Adagrad's row sum shuffles); only `mine` groups write.
template <int D>
__device__ void update_row(const SortedArgs& a, uint32_t row, int g, bool mine, LaneRow<D>& grad, LaneRow<D>& grad_sq,
                           long long step) {
  using L = RowLayout<D>;
  if (a.second_moment == SecondMoment::rows)
    for (int i = 0; i < L::kPerLane; ++i) grad_sq[i] = grad[i] * grad[i];
  if (is_riemannian(a.optimizer)) {
    update_row_riemannian<D>(a, row, g, mine, grad, grad_sq, step);
    return;
  }
  long long t = step;
  float acc = 0.0f, factor = 0.0f;
  if (mine && a.optimizer == Optimizer::lazy_adam) t = a.row_step[row] + 1;
  if (mine && a.optimizer == Optimizer::adagrad) acc = a.row_acc[row];
  if (a.optimizer == Optimizer::adagrad) {
    float sum_sq = 0.0f;
    for (int i = 0; i < L::kPerLane; ++i) sum_sq += grad[i] * grad[i];
    factor = adagrad_row_factor(acc, group_sum<D>(sum_sq) / static_cast<float>(D), a.adam.lr, a.adam.epsilon);
  }
  __syncwarp();  // every lane has read the row's counters before lane 0 writes them
  if (!mine) return;
  if (g == 0) {
    if (a.optimizer == Optimizer::lazy_adam) a.row_step[row] = t;
    if (a.optimizer == Optimizer::adagrad) a.row_acc[row] = acc;
    if (a.optimizer == Optimizer::adam) atomicOr(a.touched + row / 32, 1u << (row % 32));
  }
  float* p_row = a.table + static_cast<size_t>(row) * D;
  LaneRow<D> p;
  load_row<D>(p_row, g, p);
  if (a.optimizer == Optimizer::adam || a.optimizer == Optimizer::lazy_adam) {
    float* m_row = a.table_m + static_cast<size_t>(row) * D;
    float* v_row = a.table_v + static_cast<size_t>(row) * D;
    LaneRow<D> m, v;
    load_row<D>(m_row, g, m);
    load_row<D>(v_row, g, v);
    const float step_size = step_size_at(a, t);
    for (int i = 0; i < L::kPerLane; ++i) adam_update(p[i], m[i], v[i], grad[i], grad_sq[i], step_size, a.coef);
    store_row<D>(m_row, g, m);
    store_row<D>(v_row, g, v);
  } else if (a.optimizer == Optimizer::sgd) {
    for (int i = 0; i < L::kPerLane; ++i) sgd_update(p[i], grad[i], a.adam.lr);
  } else {
    for (int i = 0; i < L::kPerLane; ++i) p[i] -= grad[i] * factor;
  }
  store_row<D>(p_row, g, p);
}

// 2: a lane group per run of equal rows: its lookups' gradients summed in lookup order, then the
// optimizer. Runs longer than kHotRunLength are listed for the hot kernel instead.
template <int D>
__global__ void __launch_bounds__(kThreads) sorted_segments(SortedArgs a) {
  using L = RowLayout<D>;
  constexpr int kGroups = 32 / L::kLanes;  // per warp
  const int g = (threadIdx.x & 31) % L::kLanes;
  const int group = (threadIdx.x & 31) / L::kLanes;
  const uint32_t warp = (blockIdx.x * kThreads + threadIdx.x) / 32, warps = gridDim.x * kThreads / 32;
  const auto runs = static_cast<uint32_t>(a.scalars->runs);
  const long long step = a.scalars->step + 1;
  // The loop bound is the warp's, not the group's: every lane takes part in update_row's shuffles.
  for (uint32_t first = warp * kGroups; first < runs; first += warps * kGroups) {
    const uint32_t r = first + group;
    uint32_t row = a.rows, length = 0, offset = 0;
    if (r < runs) {
      row = a.unique_row[r];
      length = a.run_length[r];
      offset = a.run_offset[r];
    }
    bool mine = row < a.rows;  // not the sentinel run
    if (mine && length > kHotRunLength) {
      if (g == 0) a.hot_runs[atomicAdd(&a.scalars->hot_count, 1u)] = r;
      mine = false;
    }
    LaneRow<D> sum = {}, sum_sq = {};
    const uint32_t count = mine ? length : 0;
    // Unrolled so that the loads of four lookups are in flight together; the adds stay in lookup order.
#pragma unroll 4
    for (uint32_t j = 0; j < count; ++j) {
      LaneRow<D> v;
      load_row<D>(a.lookup_grad + static_cast<size_t>(a.sorted_id[offset + j]) * D, g, v);
      for (int i = 0; i < L::kPerLane; ++i) {
        sum[i] += v[i];
        sum_sq[i] += v[i] * v[i];
      }
    }
    update_row<D>(a, row, g, mine, sum, sum_sq, step);
  }
}

// 3: a block per hot run (the grid is fixed; each block takes every gridDim.x-th run of the list):
// each lane group sums a contiguous slice of the lookups, the slices are added in order (so the
// result does not depend on timing or on which block takes the run), and warp 0 applies the optimizer.
template <int D>
__global__ void __launch_bounds__(kHotThreads) sorted_hot_segments(SortedArgs a) {
  using L = RowLayout<D>;
  constexpr int kGroups = kHotThreads / L::kLanes;
  __shared__ float slice_sum[kGroups][D], slice_sq[kGroups][D];
  const unsigned int hot = a.scalars->hot_count;
  const long long step = a.scalars->step + 1;
  const int g = threadIdx.x % L::kLanes, group = threadIdx.x / L::kLanes;
  for (unsigned int h = blockIdx.x; h < hot; h += gridDim.x) {
    const uint32_t r = a.hot_runs[h];
    const uint32_t row = a.unique_row[r], length = a.run_length[r], offset = a.run_offset[r];
    const uint32_t slice = (length + kGroups - 1) / kGroups;
    const uint32_t begin = min(length, group * slice), end = min(length, begin + slice);
    LaneRow<D> sum = {}, sum_sq = {};
#pragma unroll 4
    for (uint32_t j = begin; j < end; ++j) {
      LaneRow<D> v;
      load_row<D>(a.lookup_grad + static_cast<size_t>(a.sorted_id[offset + j]) * D, g, v);
      for (int i = 0; i < L::kPerLane; ++i) {
        sum[i] += v[i];
        sum_sq[i] += v[i] * v[i];
      }
    }
    for (int i = 0; i < L::kPerLane; ++i) {
      slice_sum[group][element<D>(g, i)] = sum[i];
      slice_sq[group][element<D>(g, i)] = sum_sq[i];
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      for (int i = 0; i < L::kPerLane; ++i) {
        float total = 0.0f, total_sq = 0.0f;
        for (int q = 0; q < kGroups; ++q) {
          total += slice_sum[q][element<D>(g, i)];
          total_sq += slice_sq[q][element<D>(g, i)];
        }
        sum[i] = total;
        sum_sq[i] = total_sq;
      }
      update_row<D>(a, row, g, group == 0, sum, sum_sq, step);
    }
    __syncthreads();  // warp 0 has read the slices before the next run writes them
  }
}

// 4 (adam only): Keras's dense Adam moves the rows the step did not touch too, with a zero gradient.
// A warp per word of the touched bitmap: its 32 rows are 32 * D contiguous floats, walked in
// vectors of kVec (the row of a vector is a division by a constant); then the word is cleared for
// the next step.
template <int D>
__global__ void __launch_bounds__(kThreads) sorted_decay_untouched(SortedArgs a) {
  constexpr int kVec = RowLayout<D>::kVec;
  constexpr uint32_t kRowVecs = D / kVec;
  const float step_size = step_size_at(a, a.scalars->step + 1);
  const int lane = threadIdx.x & 31;
  const size_t words = touched_bitmap_words(a.rows);
  const size_t warps = size_t{gridDim.x} * (kThreads / 32);
  for (size_t w = (size_t{blockIdx.x} * kThreads + threadIdx.x) / 32; w < words; w += warps) {
    const uint32_t touched = a.touched[w];
    const size_t first = w * 32 * D;  // the word's first float
    const uint32_t vecs = min(32u, a.rows - static_cast<uint32_t>(w * 32)) * kRowVecs;
    for (uint32_t e = lane; e < vecs; e += 32) {
      if (touched >> (e / kRowVecs) & 1u) continue;
      float* p = a.table + first + size_t{e} * kVec;
      float* m = a.table_m + first + size_t{e} * kVec;
      float* v = a.table_v + first + size_t{e} * kVec;
      if constexpr (kVec == 4) {
        float4 p4 = *reinterpret_cast<float4*>(p), m4 = *reinterpret_cast<float4*>(m),
               v4 = *reinterpret_cast<float4*>(v);
        adam_update(p4.x, m4.x, v4.x, 0.0f, 0.0f, step_size, a.coef);
        adam_update(p4.y, m4.y, v4.y, 0.0f, 0.0f, step_size, a.coef);
        adam_update(p4.z, m4.z, v4.z, 0.0f, 0.0f, step_size, a.coef);
        adam_update(p4.w, m4.w, v4.w, 0.0f, 0.0f, step_size, a.coef);
        *reinterpret_cast<float4*>(p) = p4;
        *reinterpret_cast<float4*>(m) = m4;
        *reinterpret_cast<float4*>(v) = v4;
      } else {
        adam_update(*p, *m, *v, 0.0f, 0.0f, step_size, a.coef);
      }
    }
    __syncwarp();  // every lane has read the word before lane 0 clears it
    if (lane == 0 && touched != 0) a.touched[w] = 0;
  }
}

// The block's sum of five per-thread values (two float, three double). CUB's BlockReduce adds in
// an order fixed by the block size, so the sum does not depend on timing. Thread 0 gets the result.
__device__ FinishPartial block_sum(FinishPartial mine) {
  using FloatReduce = cub::BlockReduce<float, kFinishThreads>;
  using DoubleReduce = cub::BlockReduce<double, kFinishThreads>;
  __shared__ union {
    typename FloatReduce::TempStorage f;
    typename DoubleReduce::TempStorage d;
  } temp;
  FinishPartial total;
  for (int c = 0; c < 2; ++c) {
    total.dense_grad[c] = FloatReduce(temp.f).Sum(mine.dense_grad[c]);
    __syncthreads();
  }
  for (int c = 0; c < 3; ++c) {
    total.metrics[c] = DoubleReduce(temp.d).Sum(mine.metrics[c]);
    __syncthreads();
  }
  return total;
}

// 5: block b sums samples [b * kFinishChunk, (b + 1) * kFinishChunk) of the partials (each thread
// 8 samples in order, then the block in CUB's order) into finish_partials[b]. The last block to
// finish (a ticket) adds the blocks' sums in block order, updates the Dense layer and the epoch's
// sums, and advances the step. The grid is finish_blocks(max_samples): fixed, so every sum has one order.
__global__ void __launch_bounds__(kFinishThreads) sorted_finish(SortedArgs a) {
  const StepShape shape = step_shape(a);
  const size_t column = a.max_samples;
  FinishPartial mine{{0.0f, 0.0f}, {0.0, 0.0, 0.0}};
  const uint32_t first = blockIdx.x * kFinishChunk;
  for (uint32_t s = first + threadIdx.x; s < min(first + kFinishChunk, shape.samples); s += kFinishThreads) {
    const float* p = a.sample_partials + s;
    mine.dense_grad[0] += p[0];
    mine.dense_grad[1] += p[column];
    for (int c = 0; c < 3; ++c) mine.metrics[c] += p[(2 + c) * column];
  }
  const FinishPartial block = block_sum(mine);
  __shared__ bool last;
  if (threadIdx.x == 0) {
    a.finish_partials[blockIdx.x] = block;
    __threadfence();  // the partial is visible to every block before the ticket is taken
    last = atomicAdd(&a.scalars->finish_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  mine = FinishPartial{{0.0f, 0.0f}, {0.0, 0.0, 0.0}};
  for (uint32_t b = threadIdx.x; b < gridDim.x; b += kFinishThreads) {
    const FinishPartial* q = a.finish_partials + b;  // written by other blocks: read past L1
    for (int c = 0; c < 2; ++c) mine.dense_grad[c] += __ldcg(&q->dense_grad[c]);
    for (int c = 0; c < 3; ++c) mine.metrics[c] += __ldcg(&q->metrics[c]);
  }
  const FinishPartial total = block_sum(mine);
  if (threadIdx.x != 0) return;
  SortedScalars* sc = a.scalars;
  const float step_size = step_size_at(a, sc->step + 1);
  for (int i = 0; i < 2; ++i) {
    const float gr = total.dense_grad[i];
    if (a.optimizer == Optimizer::adam || a.optimizer == Optimizer::lazy_adam)
      adam_update(sc->dense[i], sc->dense_m[i], sc->dense_v[i], gr, gr * gr, step_size, a.coef);
    else if (a.optimizer == Optimizer::radam)  // a Euclidean parameter: plain Adam, on the global step
      adam_update(sc->dense[i], sc->dense_m[i], sc->dense_v[i], gr, gr * gr, step_size * lr_scale_at(a, sc->step + 1),
                  a.coef);
    else if (a.optimizer == Optimizer::rsgd)
      sgd_update(sc->dense[i], gr, a.adam.lr * lr_scale_at(a, sc->step + 1));
    else if (a.optimizer == Optimizer::sgd)
      sgd_update(sc->dense[i], gr, a.adam.lr);
    else
      adagrad_update(sc->dense[i], sc->dense_v[i], gr, a.adam.lr, a.adam.epsilon);
  }
  sc->loss_sum += total.metrics[0];
  sc->squared_error_sum += total.metrics[1];
  sc->correct += total.metrics[2];
  sc->hot_count = 0;
  sc->finish_done = 0;
  sc->step += 1;
}

// 1a (K > 1 ranks): every slot's two lookup rows for the sort, a thread a slot (on one GPU
// sorted_forward_backward writes them).
__global__ void __launch_bounds__(kThreads) sorted_lookup_rows(SortedArgs a) {
  const uint32_t s = blockIdx.x * kThreads + threadIdx.x;
  if (s >= a.max_samples) return;
  const StepShape shape = step_shape(a);
  const bool valid = s < shape.samples;
  write_lookup_rows(a, s, valid, valid ? step_sample(a, shape, s) : PairRecord{0, 0, 0.0f, 0.0f});
}

// Data parallel: the step's per-sample arrays and this rank, as sample_exchange.hpp reads them.
__device__ SampleExchange step_exchange(const SortedArgs& a) {
  return {a.lookup_grad, a.sample_partials, a.max_samples, step_shape(a).samples, exchanged_dims(a), a.rank, a.ranks};
}

// 1b (K > 1 ranks): this rank's slice of the step's gradients and partials into its chunk, a
// thread an element (sample_exchange.hpp's packed_value).
__global__ void __launch_bounds__(kThreads) sorted_pack_slice(SortedArgs a, float* chunk) {
  const SampleExchange x = step_exchange(a);
  const uint64_t n = exchange_chunk(x.column, x.dims, x.ranks);
  for (uint64_t e = blockIdx.x * uint64_t{kThreads} + threadIdx.x; e < n; e += uint64_t{gridDim.x} * kThreads)
    chunk[e] = packed_value(x, e);
}

// 1c (K > 1 ranks), after the all-gather: rank blockIdx.y's chunk into place (unpack_value).
__global__ void __launch_bounds__(kThreads) sorted_unpack_slices(SortedArgs a, const float* gathered) {
  const SampleExchange x = step_exchange(a);
  const uint64_t n = exchange_chunk(x.column, x.dims, x.ranks);
  const int from = static_cast<int>(blockIdx.y);
  for (uint64_t e = blockIdx.x * uint64_t{kThreads} + threadIdx.x; e < n; e += uint64_t{gridDim.x} * kThreads)
    unpack_value(x, gathered + from * n, from, e);
}

// Row sharded: row i of `to` = row index[i] of `from` (gather), or the other way (scatter), a
// thread an element.
__global__ void __launch_bounds__(kThreads)
    gather_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims) {
  const uint64_t n = uint64_t{count} * static_cast<uint64_t>(dims);
  for (uint64_t e = blockIdx.x * uint64_t{kThreads} + threadIdx.x; e < n; e += uint64_t{gridDim.x} * kThreads)
    to[e] = from[uint64_t{index[e / dims]} * dims + e % dims];
}
__global__ void __launch_bounds__(kThreads)
    scatter_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims) {
  const uint64_t n = uint64_t{count} * static_cast<uint64_t>(dims);
  for (uint64_t e = blockIdx.x * uint64_t{kThreads} + threadIdx.x; e < n; e += uint64_t{gridDim.x} * kThreads)
    to[uint64_t{index[e / dims]} * dims + e % dims] = from[e];
}

// Blocks of a grid-stride loop over one chunk.
unsigned exchange_blocks(const SortedArgs& a) {
  return grid_stride_blocks(exchange_chunk(a.max_samples, exchanged_dims(a), a.ranks), kThreads, a.sm_count);
}

template <int D>
void launch_forward_dims(const SortedArgs& a, cudaStream_t stream) {
  using L = RowLayout<D>;
  // One GPU: every slot of the step. K ranks: the longest slice; every slot's rows apart.
  const uint32_t groups = a.ranks == 1 ? a.max_samples : exchange_longest(a.max_samples, a.ranks);
  const auto forward_blocks =
      static_cast<unsigned>((static_cast<size_t>(groups) * L::kLanes + kThreads - 1) / kThreads);
  sorted_forward_backward<D><<<forward_blocks, kThreads, 0, stream>>>(a);
  CE_CHECK_LAUNCH("sorted_forward_backward");
  if (a.ranks == 1 || a.planned_samples) return;  // planned: lookup_row came with the plan
  sorted_lookup_rows<<<(a.max_samples + kThreads - 1) / kThreads, kThreads, 0, stream>>>(a);
  CE_CHECK_LAUNCH("sorted_lookup_rows");
}

template <int D>
void launch_update_dims(const SortedArgs& a, cudaStream_t stream) {
  using L = RowLayout<D>;
  const uint32_t lookups = 2 * a.max_samples;
  size_t bytes = a.cub_temp_bytes;
  CE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(a.cub_temp, bytes, a.lookup_row, a.sorted_row, a.lookup_id, a.sorted_id,
                                                lookups, 0, a.key_bits, stream));
  bytes = a.cub_temp_bytes;
  CE_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(a.cub_temp, bytes, a.sorted_row, a.unique_row, a.run_length,
                                                   &a.scalars->runs, lookups, stream));
  bytes = a.cub_temp_bytes;
  CE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(a.cub_temp, bytes, a.run_length, a.run_offset, lookups, stream));
  const unsigned segment_blocks = grid_stride_blocks(uint64_t{lookups} * L::kLanes, kThreads, a.sm_count);
  sorted_segments<D><<<segment_blocks, kThreads, 0, stream>>>(a);
  CE_CHECK_LAUNCH("sorted_segments");
  // Hot runs are counted on the device: a fixed grid that loops over however many there are.
  const auto hot_blocks = static_cast<unsigned>(std::min<size_t>(lookups / kHotRunLength + 1, 2 * a.sm_count));
  sorted_hot_segments<D><<<hot_blocks, kHotThreads, 0, stream>>>(a);
  CE_CHECK_LAUNCH("sorted_hot_segments");
  if (a.optimizer == Optimizer::adam) {
    const unsigned decay_blocks = grid_stride_blocks(uint64_t{touched_bitmap_words(a.rows)} * 32, kThreads, a.sm_count);
    sorted_decay_untouched<D><<<decay_blocks, kThreads, 0, stream>>>(a);
    CE_CHECK_LAUNCH("sorted_decay_untouched");
  }
}

// The one switch from a run-time D to the kernels' template parameter.
template <class F>
bool with_dims(int dims, F&& f) {
  switch (dims) {
    case 1:
      f.template operator()<1>();
      return true;
    case 2:
      f.template operator()<2>();
      return true;
    case 3:
      f.template operator()<3>();
      return true;
    case 4:
      f.template operator()<4>();
      return true;
    case 8:
      f.template operator()<8>();
      return true;
    case 10:  // the Poincaré paper's width
      f.template operator()<10>();
      return true;
    case 16:
      f.template operator()<16>();
      return true;
    case 32:
      f.template operator()<32>();
      return true;
    case 64:
      f.template operator()<64>();
      return true;
    case 128:
      f.template operator()<128>();
      return true;
    case 256:
      f.template operator()<256>();
      return true;
    default:
      return false;
  }
}

struct DoNothing {
  template <int D>
  void operator()() const {}
};

}  // namespace

bool sorted_dims_supported(int dims) { return with_dims(dims, DoNothing{}); }

std::size_t sorted_cub_temp_bytes(uint32_t max_samples, int key_bits) {
  const uint32_t lookups = 2 * max_samples;
  // Null pointers of exactly the types launch_update_dims passes: another type is another template
  // instantiation, whose scratch size need not be the same.
  const SortedArgs a{};
  int* const runs = nullptr;  // &a.scalars->runs there
  size_t sort = 0, encode = 0, scan = 0;
  CE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort, a.lookup_row, a.sorted_row, a.lookup_id, a.sorted_id,
                                                lookups, 0, key_bits));
  CE_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, encode, a.sorted_row, a.unique_row, a.run_length, runs,
                                                   lookups));
  CE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan, a.run_length, a.run_offset, lookups));
  return std::max({sort, encode, scan});
}

void launch_sorted_forward(const SortedArgs& a, cudaStream_t stream) {
  if (!with_dims(a.dims, [&]<int D>() { launch_forward_dims<D>(a, stream); }))
    throw Error(unsupported_dims_message(a.dims));
}

void launch_sorted_update(const SortedArgs& a, cudaStream_t stream) {
  if (!with_dims(a.dims, [&]<int D>() { launch_update_dims<D>(a, stream); }))
    throw Error(unsupported_dims_message(a.dims));
  sorted_finish<<<finish_blocks(a.max_samples), kFinishThreads, 0, stream>>>(a);
  CE_CHECK_LAUNCH("sorted_finish");
}

void launch_sorted_step(const SortedArgs& a, cudaStream_t stream) {
  launch_sorted_forward(a, stream);
  launch_sorted_update(a, stream);
}

void launch_pack_slice(const SortedArgs& a, float* chunk, cudaStream_t stream) {
  sorted_pack_slice<<<exchange_blocks(a), kThreads, 0, stream>>>(a, chunk);
  CE_CHECK_LAUNCH("sorted_pack_slice");
}

void launch_gather_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims, int sm_count,
                        cudaStream_t stream) {
  if (count == 0) return;
  gather_rows<<<grid_stride_blocks(uint64_t{count} * dims, kThreads, sm_count), kThreads, 0, stream>>>(to, from, index,
                                                                                                       count, dims);
  CE_CHECK_LAUNCH("gather_rows");
}

void launch_scatter_rows(float* to, const float* from, const uint32_t* index, uint32_t count, int dims, int sm_count,
                         cudaStream_t stream) {
  if (count == 0) return;
  scatter_rows<<<grid_stride_blocks(uint64_t{count} * dims, kThreads, sm_count), kThreads, 0, stream>>>(to, from, index,
                                                                                                        count, dims);
  CE_CHECK_LAUNCH("scatter_rows");
}

void launch_unpack_slices(const SortedArgs& a, const float* gathered, cudaStream_t stream) {
  sorted_unpack_slices<<<dim3(exchange_blocks(a), static_cast<unsigned>(a.ranks)), kThreads, 0, stream>>>(a, gathered);
  CE_CHECK_LAUNCH("sorted_unpack_slices");
}

}  // namespace cudaembed
