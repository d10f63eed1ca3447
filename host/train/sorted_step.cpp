// The sorted-segment step on the CPU: the plain twin of cuda/sorted_kernels.cu, written for reading.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "train/sorted_phases.hpp"

namespace cudaembed {

void shuffled_epoch_records(const PairSet& pairs, uint64_t seed, int64_t epoch, std::vector<PairRecord>& out) {
  const bool weighted = !pairs.weight.empty();
  gather_in_epoch_order(static_cast<uint32_t>(pairs.size()), seed, epoch, out, [&](uint32_t id) {
    return PairRecord{pairs.a[id], pairs.b[id], pairs.label[id], weighted ? pairs.weight[id] : 1.0f};
  });
}

PairRecord step_sample(std::span<const PairRecord> batch, uint32_t s, int negatives, uint64_t seed, int64_t step,
                       uint32_t rows) {
  const uint32_t group = static_cast<uint32_t>(negatives) + 1;
  const PairRecord& pair = batch[s / group];
  if (s % group == 0) return pair;
  return {pair.a, negative_row(seed, step, s, rows), 0.0f, pair.weight};
}

namespace {

// |x|^2 of a row, in index order (the segment kernel's order for a lane group of one).
float row_sq_norm(const float* p, int dims) {
  float sum = 0.0f;
  for (int k = 0; k < dims; ++k) sum += p[k] * p[k];
  return sum;
}

}  // namespace

// 11 bits a pass: one pass where rows <= 2048, and each pass's histogram fits in L1.
void sort_by_row(std::vector<uint64_t>& keys, uint32_t rows, std::vector<uint64_t>& scratch,
                 std::vector<uint32_t>& count) {
  constexpr int kDigitBits = 11;
  constexpr uint32_t kDigits = 1u << kDigitBits;
  scratch.resize(keys.size());
  count.resize(kDigits);
  for (int shift = 32; shift < 64 && (rows - 1) >> (shift - 32) != 0; shift += kDigitBits) {
    std::fill(count.begin(), count.end(), 0u);
    for (const uint64_t k : keys) ++count[(k >> shift) & (kDigits - 1)];
    uint32_t offset = 0;
    for (uint32_t& c : count) offset += std::exchange(c, offset);
    for (const uint64_t k : keys) scratch[count[(k >> shift) & (kDigits - 1)]++] = k;
    keys.swap(scratch);
  }
}

void apply_row_update(ModelState& state, int64_t row, const float* g, const float* g2, const TrainConfig& config,
                      float step_size, float lr_scale) {
  const int dims = state.dims;
  const std::size_t base = static_cast<std::size_t>(row) * dims;
  float* p = &state.table[base];
  const float lr = config.adam.lr;
  switch (config.optimizer) {
    case Optimizer::rsgd:
    case Optimizer::radam: {
      const float s = poincare_metric_scale(row_sq_norm(p, dims));  // at the row before the step
      if (config.optimizer == Optimizer::radam) {
        const float size = adam_step_size(config.adam, ++state.row_step[static_cast<std::size_t>(row)]) * lr_scale;
        const AdamCoefficients coef = adam_coefficients(config.adam);
        for (int k = 0; k < dims; ++k)
          radam_update(p[k], state.table_m[base + k], state.table_v[base + k], g[k], g2[k], s, size, coef);
      } else {
        for (int k = 0; k < dims; ++k) sgd_update(p[k], s * g[k], lr * lr_scale);
      }
      const float r = ball_retraction(row_sq_norm(p, dims));
      if (r < 1.0f)
        for (int k = 0; k < dims; ++k) p[k] *= r;
      break;
    }
    case Optimizer::adam:
    case Optimizer::lazy_adam: {
      if (config.optimizer == Optimizer::lazy_adam)  // the row's own bias correction
        step_size = adam_step_size(config.adam, ++state.row_step[static_cast<std::size_t>(row)]);
      const AdamCoefficients coef = adam_coefficients(config.adam);
      for (int k = 0; k < dims; ++k)
        adam_update(p[k], state.table_m[base + k], state.table_v[base + k], g[k], g2[k], step_size, coef);
      break;
    }
    case Optimizer::sgd:
      for (int k = 0; k < dims; ++k) sgd_update(p[k], g[k], lr);
      break;
    case Optimizer::adagrad: {
      float sum_sq = 0.0f;
      for (int k = 0; k < dims; ++k) sum_sq += g[k] * g[k];
      const float factor = adagrad_row_factor(state.row_acc[static_cast<std::size_t>(row)],
                                              sum_sq / static_cast<float>(dims), lr, config.adam.epsilon);
      for (int k = 0; k < dims; ++k) p[k] -= g[k] * factor;
      break;
    }
  }
}

namespace {

// Keras's dense Adam on rows [first, last) that the step did not touch: a zero gradient, so the
// moments decay and the parameters keep moving.
void decay_untouched(ModelState& state, int64_t first, int64_t last, float step_size, const AdamCoefficients& coef) {
  const auto begin = static_cast<std::size_t>(first) * state.dims, end = static_cast<std::size_t>(last) * state.dims;
  float* p = state.table.data();
  float* m = state.table_m.data();
  float* v = state.table_v.data();
  for (std::size_t i = begin; i < end; ++i) adam_update(p[i], m[i], v[i], 0.0f, 0.0f, step_size, coef);
}

}  // namespace

void step_samples(std::span<const PairRecord> batch, const TrainConfig& config, int64_t step, uint32_t rows,
                  std::vector<PairRecord>& out) {
  const auto samples = static_cast<uint32_t>(batch.size() * (static_cast<std::size_t>(config.negatives) + 1));
  out.resize(samples);
  for (uint32_t s = 0; s < samples; ++s) {
    const PairRecord x = step_sample(batch, s, config.negatives, config.seed, step, rows);
    if (x.a >= rows || x.b >= rows) throw Error("pair row id out of range");  // the loaders check; a last guard
    out[s] = x;
  }
}

void draw_samples(std::span<const PairRecord> batch, const TrainConfig& config, int64_t step, uint32_t rows,
                  int dims, SortedWorkspace& work) {
  step_samples(batch, config, step, rows, work.samples);
  work.lookup_grad.resize(static_cast<std::size_t>(2) * work.samples.size() * dims);
  work.sample_sums.resize(work.samples.size());
}

void forward_backward(const float* table, std::span<const PairRecord> samples, const ModelState& state,
                      const TrainConfig& config, SortedWorkspace& work, Slice mine) {
  const int dims = state.dims;
  const float inv_samples = 1.0f / static_cast<float>(samples.size());
  const float w = state.dense[0], bias = state.dense[1];
  for (std::size_t s = mine.begin; s < mine.end; ++s) {
    const PairRecord& x = samples[s];
    const float* ea = &table[static_cast<std::size_t>(x.a) * dims];
    const float* eb = &table[static_cast<std::size_t>(x.b) * dims];
    float* ga = &work.lookup_grad[(2 * s) * dims];
    float* gb = ga + dims;
    const PairResult<float> r = pair_forward_backward(
        ea, eb, dims, config.normalize, w, bias, x.label, x.weight * inv_samples, [&](int k, float g) { ga[k] = g; },
        [&](int k, float g) { gb[k] = g; }, config.head);
    work.sample_sums[s] = {r.dlogit * r.score, r.dlogit, x.weight * r.loss, x.label - r.prob,
                           (r.prob > 0.5f) == (x.label > 0.5f) ? 1.0f : 0.0f};
  }
}

void gather_samples(Communicator& comm, SortedWorkspace& work, int dims, bool with_lookups) {
  const std::size_t samples = work.samples.size(), ranks = static_cast<std::size_t>(comm.size());
  const std::size_t lookup_values = with_lookups ? 2 * static_cast<std::size_t>(dims) : 0;
  const std::size_t longest = rank_slice(samples, 0, comm.size()).end;  // rank 0's is never shorter
  const Slice mine = rank_slice(samples, comm.rank(), comm.size());
  std::vector<float>& send = work.send;
  send.assign(longest * (lookup_values + SampleSums::kValues), 0.0f);
  const std::size_t grads = (mine.end - mine.begin) * lookup_values;
  std::copy_n(work.lookup_grad.data() + mine.begin * lookup_values, grads, send.begin());
  std::memcpy(send.data() + grads, work.sample_sums.data() + mine.begin, (mine.end - mine.begin) * sizeof(SampleSums));
  work.received.resize(ranks * send.size());
  comm.all_gather(std::span<const float>(send), std::span<float>(work.received));
  for (int r = 0; r < comm.size(); ++r) {
    const Slice theirs = rank_slice(samples, r, comm.size());
    const float* from = work.received.data() + static_cast<std::size_t>(r) * send.size();
    const std::size_t n = (theirs.end - theirs.begin) * lookup_values;
    std::copy_n(from, n, work.lookup_grad.data() + theirs.begin * lookup_values);
    std::memcpy(work.sample_sums.data() + theirs.begin, from + n, (theirs.end - theirs.begin) * sizeof(SampleSums));
  }
}

void sum_samples(const SortedWorkspace& work, float dense_grad[2], EpochMetrics& metrics) {
  dense_grad[0] = dense_grad[1] = 0.0f;
  for (const SampleSums& x : work.sample_sums) {
    dense_grad[0] += x.dscore;
    dense_grad[1] += x.dlogit;
    metrics.loss_sum += x.loss;
    metrics.squared_error_sum += static_cast<double>(x.error) * x.error;
    metrics.correct += x.correct;
  }
  metrics.samples += static_cast<int64_t>(work.sample_sums.size());
}

void update_row_range(ModelState& state, std::span<const uint64_t> order, std::span<const float> lookup_grad,
                      const TrainConfig& config, float lr_scale, int64_t first_row, int64_t last_row,
                      std::vector<float>& row_grad, std::vector<float>& row_grad_sq) {
  const int dims = state.dims;
  const bool per_lookup = config.second_moment == SecondMoment::lookups;
  const bool dense_adam = config.optimizer == Optimizer::adam;
  const float step_size = adam_step_size(config.adam, state.step + 1);
  const AdamCoefficients coef = adam_coefficients(config.adam);
  row_grad.resize(dims);
  row_grad_sq.resize(dims);
  int64_t untouched_from = first_row;
  for (std::size_t first = 0; first < order.size();) {
    const uint32_t row = static_cast<uint32_t>(order[first] >> 32);
    std::fill(row_grad.begin(), row_grad.end(), 0.0f);
    std::fill(row_grad_sq.begin(), row_grad_sq.end(), 0.0f);
    std::size_t last = first;
    for (; last < order.size() && static_cast<uint32_t>(order[last] >> 32) == row; ++last) {
      const float* g = &lookup_grad[static_cast<std::size_t>(order[last] & 0xffffffffu) * dims];
      for (int k = 0; k < dims; ++k) {
        row_grad[k] += g[k];
        row_grad_sq[k] += g[k] * g[k];
      }
    }
    if (!per_lookup)
      for (int k = 0; k < dims; ++k) row_grad_sq[k] = row_grad[k] * row_grad[k];
    if (dense_adam) decay_untouched(state, untouched_from, row, step_size, coef);
    apply_row_update(state, row, row_grad.data(), row_grad_sq.data(), config, step_size, lr_scale);
    untouched_from = static_cast<int64_t>(row) + 1;
    first = last;
  }
  if (dense_adam) decay_untouched(state, untouched_from, last_row, step_size, coef);
}

void update_rows(ModelState& state, SortedWorkspace& work, const TrainConfig& config, float lr_scale) {
  update_row_range(state, work.order, work.lookup_grad, config, lr_scale, 0, state.rows, work.row_grad,
                   work.row_grad_sq);
}

void update_dense(ModelState& state, const float dense_grad[2], const TrainConfig& config, float lr_scale) {
  const int64_t step = state.step + 1;
  const float step_size = adam_step_size(config.adam, step);
  const AdamCoefficients coef = adam_coefficients(config.adam);
  for (int i = 0; i < 2; ++i) {
    const float g = dense_grad[i];
    switch (config.optimizer) {
      case Optimizer::adam:
      case Optimizer::lazy_adam:
      case Optimizer::radam:  // a Euclidean parameter: plain Adam, on the global step
        adam_update(state.dense[i], state.dense_m[i], state.dense_v[i], g, g * g, step_size * lr_scale, coef);
        break;
      case Optimizer::sgd:
      case Optimizer::rsgd:
        sgd_update(state.dense[i], g, config.adam.lr * lr_scale);
        break;
      case Optimizer::adagrad:
        adagrad_update(state.dense[i], state.dense_v[i], g, config.adam.lr, config.adam.epsilon);
        break;
    }
  }
  state.step = step;
}

void cpu_sorted_step(ModelState& state, std::span<const PairRecord> batch, const TrainConfig& config,
                     SortedWorkspace& work, EpochMetrics& metrics, float lr_scale, Communicator* comm) {
  const int dims = state.dims;
  const auto rows = static_cast<uint32_t>(state.rows);
  const bool shared = comm && comm->size() > 1;

  // 1: the step's samples (every rank draws them all: cheap, and the same everywhere), forward and
  // backward of this rank's slice of them, then (K > 1) every rank's lookups gathered: the touched
  // rows only, never the table. Every rank then holds the step's lookups as one process computes them.
  draw_samples(batch, config, state.step, rows, dims, work);
  const auto samples = work.samples.size();
  forward_backward(state.table.data(), work.samples, state, config, work,
                   shared ? rank_slice(samples, comm->rank(), comm->size()) : Slice{0, samples});
  if (shared) gather_samples(*comm, work, dims, true);
  float dense_grad[2];  // dL/dw, dL/db, summed in sample order on every rank
  sum_samples(work, dense_grad, metrics);

  // 2: the lookups sorted by row (then by lookup, so each row sums in lookup order).
  work.order.resize(2 * samples);
  for (std::size_t l = 0; l < 2 * samples; ++l)
    work.order[l] = static_cast<uint64_t>(lookup_row(work.samples, l)) << 32 | l;
  sort_by_row(work.order, rows, work.order_scratch, work.digit_count);

  // 3: per row, the sum of its lookups' gradients (and of their squares), then the optimizer.
  update_rows(state, work, config, lr_scale);
  // 4: the Dense layer, an ordinary dense tensor: Adam's v sees its square in every mode.
  update_dense(state, dense_grad, config, lr_scale);
}

int auto_sorted_threads(int64_t samples, int dims, int cores) { return threads_for_values(2 * samples * dims, cores); }

void cpu_sorted_step_team(ThreadTeam& team, ModelState& state, std::span<const PairRecord> batch,
                          const TrainConfig& config, SortedWorkspace& work, EpochMetrics& metrics, float lr_scale) {
  const auto rows = static_cast<uint32_t>(state.rows);
  const int members = team.size();
  draw_samples(batch, config, state.step, rows, state.dims, work);
  const std::size_t samples = work.samples.size();
  work.members.resize(members);
  float dense_grad[2];
  team.run([&](int t) {
    forward_backward(state.table.data(), work.samples, state, config, work, rank_slice(samples, t, members));
    team.barrier();  // every lookup's gradient is made
    const int64_t first_row = state.rows * t / members, last_row = state.rows * (t + 1) / members;
    SortedMemberWork& mine = work.members[t];
    mine.order.clear();
    for (std::size_t l = 0; l < 2 * samples; ++l) {  // in lookup order, so each row sums in it
      const uint32_t row = lookup_row(work.samples, l);
      if (row >= first_row && row < last_row) mine.order.push_back(static_cast<uint64_t>(row) << 32 | l);
    }
    sort_by_row(mine.order, rows, mine.order_scratch, mine.digit_count);
    update_row_range(state, mine.order, work.lookup_grad, config, lr_scale, first_row, last_row, mine.row_grad,
                     mine.row_grad_sq);
    if (t == 0) sum_samples(work, dense_grad, metrics);
  });
  update_dense(state, dense_grad, config, lr_scale);
}

}  // namespace cudaembed
