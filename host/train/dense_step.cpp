// The tutorial's step on the CPU, built for speed: cpu_train_step's arithmetic in loops over pairs
// that vectorise (compiled for AVX-512 and AVX2 too, vector_clones.hpp), and split across a team
// of threads without reordering any float sum. docs/profiling.md has the profile behind each loop.
#include "train/dense_step.hpp"

#include <algorithm>
#include <cmath>

#include "train/vector_clones.hpp"

namespace cudaembed {

int auto_dense_threads(const ModelState& state, int64_t batch, int cores) {
  return threads_for_values((state.rows + batch) * state.dims, cores);
}

DenseWorkspace::DenseWorkspace(const ModelState& state, SecondMoment moment, int64_t batch, int threads)
    : members(static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(state.rows, 1)))),
      grad(state.table.size()),
      grad_sq(moment == SecondMoment::lookups ? state.table.size() : 0),
      forward(batch),
      score(batch),
      dw_term(batch),
      dlogit(batch),
      loss(batch),
      squared_error(batch),
      hit(batch),
      // Only the widths compiled in (2 and 3, run_first_half) copy rows out; one member of any other
      // width adds its lookups in the backward. Wide rows would waste 268 MB here at D = 256, batch 65536.
      row_values(state.dims <= 3 ? 2 * batch * state.dims : 0),
      lookup_grad(state.dims <= 3 || members > 1 ? 2 * batch * state.dims : 0) {
  first_row.resize(members + 1);
  for (int t = 0; t <= members; ++t) first_row[t] = state.rows * t / members;
  if (members == 1) return;
  owner.resize(state.rows);
  for (int t = 0; t < members; ++t) std::fill(owner.begin() + first_row[t], owner.begin() + first_row[t + 1], t);
  bucket.resize(static_cast<std::size_t>(members) * members * 2 * batch);
  bucket_size.resize(static_cast<std::size_t>(members) * members);
}

namespace {

// Member `t` of `members`' share [first, last) of `count` items.
struct Share {
  std::size_t first, last;
};
Share share_of(std::size_t count, int t, int members) {
  return {count * static_cast<std::size_t>(t) / members, count * static_cast<std::size_t>(t + 1) / members};
}

// One step as the members see it: its pairs are [0, count) of the columns a, b and label.
struct StepView {
  ModelState& state;
  const TrainConfig& config;
  DenseWorkspace& work;
  std::size_t count;
  const uint32_t* a;
  const uint32_t* b;
  const float* label;
  int64_t step_number;  // the step being taken, from 1: Adam's bias correction
};

// Where element k of pair i's row a (side 0) or b (side 1) lives in the per-lookup arrays. Rows of
// a width known when compiled: (D, 2, batch), so that loops over pairs read and write consecutive
// pairs together (vectors). Any width: (batch, 2, D), a lookup's values side by side, so that wide
// rows' additions stream through memory rather than stride a batch apart (measured 2.7x slower at
// D = 256 the other way).
template <int Dims>
std::size_t element(std::size_t i, int side, int k, std::size_t stride, int dims) {
  if constexpr (Dims > 0)
    return (2 * static_cast<std::size_t>(k) + side) * stride + i;
  else
    return (2 * i + side) * dims + k;
}

// pair_backward's callback storing element k of pair i's `side` gradient in `grads`.
template <int Dims>
auto store_lookup(float* grads, std::size_t i, int side, std::size_t stride, int dims) {
  return [=](int k, float g) { grads[element<Dims>(i, side, k, stride, dims)] = g; };
}

// A lookup's gradient element added to its row's sum at `at`, and its square to the squares' sum
// where g2 is not null (--adam-v lookups): the reference's two additions.
inline void add_gradient(float* g, float* g2, std::size_t at, float value) {
  g[at] += value;
  if (g2) g2[at] += value * value;
}

// ---- Forward and backward: loops over pairs ----

// What a pair's sums need, worked out in the vectorised loops so that the ordered loop only adds.
struct PairOutputs {
  float* __restrict dw_term;           // dL/dlogit * score: the pair's dL/dw
  float* __restrict dlogit;            // dL/dlogit (over the batch size): its dL/db
  float* __restrict loss;              // BCE
  double* __restrict squared_error;    // (label - prob)^2, in double as the reference sums it
  int32_t* __restrict hit;             // (prob > 0.5) == label

  void set(std::size_t i, float label, float score, const LogitLoss<float>& out, float grad_scale) const {
    dlogit[i] = out.dlogit * grad_scale;
    dw_term[i] = dlogit[i] * score;
    loss[i] = out.loss;
    squared_error[i] = static_cast<double>(label - out.prob) * (label - out.prob);
    hit[i] = (out.prob > 0.5f) == (label > 0.5f);
  }
};

// The head, sigmoid and BCE of pairs [first, last), from their rows' elements in `values`. The
// arrays are restrict parameters of the marked function itself: GCC 12 vectorises the loop only
// there (inlined into a caller it loses restrict and the loop stays scalar).
template <int Dims, bool Normalize>
CE_VECTOR_CLONES void head_and_loss(std::size_t first, std::size_t last, std::size_t stride,
                                    const float* __restrict values, const float* __restrict label, float weight,
                                    float bias, float grad_scale, float* __restrict dw_term, float* __restrict dlogit,
                                    float* __restrict loss, double* __restrict squared_error, int32_t* __restrict hit) {
  const PairOutputs out{dw_term, dlogit, loss, squared_error, hit};
  for (std::size_t i = first; i < last; ++i) {
    float ea[Dims], eb[Dims];
    for (int k = 0; k < Dims; ++k) ea[k] = values[element<Dims>(i, 0, k, stride, Dims)];
    for (int k = 0; k < Dims; ++k) eb[k] = values[element<Dims>(i, 1, k, stride, Dims)];
    const float score = pair_forward(ea, eb, Dims, Normalize).score;
    out.set(i, label[i], score, bce_from_logit(weight * score + bias, label[i]), grad_scale);
  }
}

// Both rows' gradients of pairs [first, last) into `grads`; the forward recomputed, not stored.
template <int Dims, bool Normalize>
CE_VECTOR_CLONES void row_gradients(std::size_t first, std::size_t last, std::size_t stride,
                                    const float* __restrict values, const float* __restrict dlogit, float weight,
                                    float* __restrict grads) {
  for (std::size_t i = first; i < last; ++i) {
    float ea[Dims], eb[Dims];
    for (int k = 0; k < Dims; ++k) ea[k] = values[element<Dims>(i, 0, k, stride, Dims)];
    for (int k = 0; k < Dims; ++k) eb[k] = values[element<Dims>(i, 1, k, stride, Dims)];
    const PairForward<float> f = pair_forward(ea, eb, Dims, Normalize);
    pair_backward(ea, eb, Dims, f, dlogit[i] * weight, store_lookup<Dims>(grads, i, 0, stride, Dims),
                  store_lookup<Dims>(grads, i, 1, stride, Dims));
  }
}

// Rows of a width known when compiled: copied out of the table by element first, so that the
// loops over pairs need no gathers (which GCC 12 does not emit for generic tuning).
template <int Dims, bool Normalize>
void forward_backward_rows_known(const StepView& s, std::size_t first, std::size_t last) {
  DenseWorkspace& w = s.work;
  const std::size_t stride = w.dlogit.size();
  const float* table = s.state.table.data();
  float* values = w.row_values.data();
  for (std::size_t i = first; i < last; ++i) {
    const float* ea = &table[std::size_t{s.a[i]} * Dims];
    const float* eb = &table[std::size_t{s.b[i]} * Dims];
    for (int k = 0; k < Dims; ++k) values[element<Dims>(i, 0, k, stride, Dims)] = ea[k];
    for (int k = 0; k < Dims; ++k) values[element<Dims>(i, 1, k, stride, Dims)] = eb[k];
  }
  const float weight = s.state.dense[0];
  head_and_loss<Dims, Normalize>(first, last, stride, values, s.label, weight, s.state.dense[1],
                                 1.0f / static_cast<float>(s.count), w.dw_term.data(), w.dlogit.data(), w.loss.data(),
                                 w.squared_error.data(), w.hit.data());
  row_gradients<Dims, Normalize>(first, last, stride, values, w.dlogit.data(), weight, w.lookup_grad.data());
}

// Sigmoid and BCE of pairs [first, last) from their scores (vectorises).
CE_VECTOR_CLONES void loss_from_scores(std::size_t first, std::size_t last, const float* __restrict score,
                                       const float* __restrict label, float weight, float bias, float grad_scale,
                                       float* __restrict dw_term, float* __restrict dlogit, float* __restrict loss,
                                       double* __restrict squared_error, int32_t* __restrict hit) {
  const PairOutputs out{dw_term, dlogit, loss, squared_error, hit};
  for (std::size_t i = first; i < last; ++i)
    out.set(i, label[i], score[i], bce_from_logit(weight * score[i] + bias, label[i]), grad_scale);
}

// The same on rows read in place, the head's results kept per pair: any row width (Dims 0), and
// normalised rows, whose head (norms, square roots) does not vectorise anyway.
template <int Dims, bool Normalize>
void forward_backward_in_place(const StepView& s, std::size_t first, std::size_t last) {
  DenseWorkspace& w = s.work;
  const int dims = Dims ? Dims : s.state.dims;
  const std::size_t stride = w.dlogit.size();
  const float* table = s.state.table.data();
  const float weight = s.state.dense[0];
  for (std::size_t i = first; i < last; ++i) {  // the head
    const float* ea = &table[std::size_t{s.a[i]} * dims];
    w.forward[i] = pair_forward(ea, &table[std::size_t{s.b[i]} * dims], dims, Normalize);
    w.score[i] = w.forward[i].score;
  }
  loss_from_scores(first, last, w.score.data(), s.label, weight, s.state.dense[1], 1.0f / static_cast<float>(s.count),
                   w.dw_term.data(), w.dlogit.data(), w.loss.data(), w.squared_error.data(), w.hit.data());
  float* grads = w.lookup_grad.data();
  for (std::size_t i = first; i < last; ++i) {  // both rows' gradients
    const float* ea = &table[std::size_t{s.a[i]} * dims];
    const float* eb = &table[std::size_t{s.b[i]} * dims];
    const float dscore = w.dlogit[i] * weight;
    if (w.members > 1) {
      pair_backward(ea, eb, dims, w.forward[i], dscore, store_lookup<Dims>(grads, i, 0, stride, dims),
                    store_lookup<Dims>(grads, i, 1, stride, dims));
      continue;
    }
    // One member: straight into the gradient table, in batch order. Wide rows' gradients are too
    // big to store and read back (134 MB a step at D = 256, batch 65536).
    auto into = [&](uint32_t row) {
      return [&, at = std::size_t{row} * dims](int k, float g) { add_gradient(w.grad.data(), w.squares(), at + k, g); };
    };
    pair_backward(ea, eb, dims, w.forward[i], dscore, into(s.a[i]), into(s.b[i]));
  }
}

// ---- The sums that keep the reference's order ----

// The Dense layer's gradient and the metrics, pair by pair. `correct` counts in an integer, which
// gives the reference's double sum of 0s and 1s exactly, without a branch.
struct PairSums {
  float dw, db;
  double loss, squared_error;
  int64_t correct = 0;
};

// Pairs [first, last)'s lookups added to the gradient table in batch order, a before b (the
// reference's order), with add_gradient; and their PairSums. One loop: the
// sums are latency-bound chains, the table's additions fill the time between their links.
template <int Dims>
CE_VECTOR_CLONES void add_lookups_and_sums(std::size_t first, std::size_t last, std::size_t stride, int dims,
                                           const uint32_t* __restrict row_a, const uint32_t* __restrict row_b,
                                           const float* __restrict grads, float* __restrict g, float* __restrict g2,
                                           const float* __restrict dw_term, const float* __restrict dlogit,
                                           const float* __restrict loss, const double* __restrict squared_error,
                                           const int32_t* __restrict hit, PairSums& sums_out) {
  const int d = Dims ? Dims : dims;
  PairSums sums = sums_out;
  for (std::size_t i = first; i < last; ++i) {
    for (int side = 0; g && side < 2; ++side) {
      const std::size_t row = std::size_t{side ? row_b[i] : row_a[i]} * d;
      for (int k = 0; k < d; ++k) add_gradient(g, g2, row + k, grads[element<Dims>(i, side, k, stride, d)]);
    }
    sums.dw += dw_term[i];
    sums.db += dlogit[i];
    sums.loss += loss[i];
    sums.squared_error += squared_error[i];
    sums.correct += hit[i];
  }
  sums_out = sums;
}

// Member 0's part: with one member, the lookups into the table and the sums in one loop; with
// more, the sums only (the owners add the lookups). Carries the sums in the workspace and metrics.
template <int Dims>
void add_member0(const StepView& s, std::size_t first, std::size_t last, bool lookups, EpochMetrics& metrics) {
  DenseWorkspace& w = s.work;
  PairSums sums{w.dense_grad[0], w.dense_grad[1], metrics.loss_sum, metrics.squared_error_sum};
  add_lookups_and_sums<Dims>(first, last, w.dlogit.size(), s.state.dims, s.a, s.b, w.lookup_grad.data(),
                             lookups ? w.grad.data() : nullptr, lookups ? w.squares() : nullptr, w.dw_term.data(),
                             w.dlogit.data(), w.loss.data(), w.squared_error.data(), w.hit.data(), sums);
  w.dense_grad[0] = sums.dw;
  w.dense_grad[1] = sums.db;
  metrics.loss_sum = sums.loss;
  metrics.squared_error_sum = sums.squared_error;
  metrics.correct += static_cast<double>(sums.correct);
}

// ---- Several members: the lookups handed to their rows' owners ----

// Lookup j = 2i + side: pair i's a (side 0) or b (side 1), so that j runs in batch order. Not
// written (j & 1 ? s.b : s.a)[j >> 1]: GCC 12 with -fsanitize=undefined at -O2 compiles that to
// read a[0] for every even j (seen in CI's sanitizer build; a 10-line program reproduces it).
uint32_t row_of_lookup(const StepView& s, uint32_t j) {
  const std::size_t pair = j >> 1;
  return (j & 1) != 0 ? s.b[pair] : s.a[pair];
}

// Hands the lookups of pairs [first, last), made by member t, to their rows' owners, in batch order.
void sort_into_buckets(const StepView& s, int t, std::size_t first, std::size_t last) {
  DenseWorkspace& w = s.work;
  const std::size_t capacity = 2 * w.dlogit.size();
  uint32_t* size = w.bucket_size.data() + static_cast<std::size_t>(t) * w.members;
  std::fill(size, size + w.members, 0u);
  for (std::size_t j = 2 * first; j < 2 * last; ++j) {
    const std::size_t to = w.owner[row_of_lookup(s, static_cast<uint32_t>(j))];
    w.bucket[(static_cast<std::size_t>(t) * w.members + to) * capacity + size[to]++] = static_cast<uint32_t>(j);
  }
}

// Member t's rows: every member's lookups of them, in batch order (the members' shares are).
template <int Dims>
void add_owned_lookups(const StepView& s, int t) {
  DenseWorkspace& w = s.work;
  const int dims = Dims ? Dims : s.state.dims;
  const std::size_t stride = w.dlogit.size(), capacity = 2 * stride;
  for (int from = 0; from < w.members; ++from) {
    const std::size_t slot = static_cast<std::size_t>(from) * w.members + t;
    for (uint32_t n = 0; n < w.bucket_size[slot]; ++n) {
      const uint32_t j = w.bucket[slot * capacity + n];
      const std::size_t row = std::size_t{row_of_lookup(s, j)} * dims;
      for (int k = 0; k < dims; ++k)
        add_gradient(w.grad.data(), w.squares(), row + k, w.lookup_grad[element<Dims>(j >> 1, j & 1, k, stride, dims)]);
    }
  }
}

// ---- Adam ----

// Adam on parameters [first, last), their gradients zeroed for the next step; g2 holds the
// per-lookup squares, or is null for the squared sums (--adam-v rows). Two branch-free loops so
// that each vectorises.
CE_VECTOR_CLONES void adam_range(std::size_t first, std::size_t last, float step_size, AdamCoefficients coef,
                                 float* __restrict param, float* __restrict m, float* __restrict v,
                                 float* __restrict g, float* __restrict g2) {
  if (g2) {
    for (std::size_t i = first; i < last; ++i) {
      adam_update(param[i], m[i], v[i], g[i], g2[i], step_size, coef);
      g[i] = 0.0f;
      g2[i] = 0.0f;
    }
  } else {
    for (std::size_t i = first; i < last; ++i) {
      adam_update(param[i], m[i], v[i], g[i], g[i] * g[i], step_size, coef);
      g[i] = 0.0f;
    }
  }
}

// The Dense layer's Adam, once member 0 has summed its gradient.
void update_dense(const StepView& s) {
  const float* grad = s.work.dense_grad;
  const float step_size = adam_step_size(s.config.adam, s.step_number);
  const AdamCoefficients coef = adam_coefficients(s.config.adam);
  for (int i = 0; i < 2; ++i)
    adam_update(s.state.dense[i], s.state.dense_m[i], s.state.dense_v[i], grad[i], grad[i] * grad[i], step_size, coef);
  s.state.step = s.step_number;
}

// ---- A step's two halves, the row width and --normalize as compile-time constants ----

// Before the barrier: member t's share of the pairs forward and backward; member 0 (`metrics`
// not null) also adds its share's sums, and with one member its lookups.
template <int Dims, bool Normalize>
void first_half(const StepView& s, int t, EpochMetrics* metrics) {
  const Share share = share_of(s.count, t, s.work.members);
  constexpr bool vectorised = Dims > 0 && !Normalize;
  if constexpr (vectorised)
    forward_backward_rows_known<Dims, Normalize>(s, share.first, share.last);
  else
    forward_backward_in_place<Dims, Normalize>(s, share.first, share.last);
  if (s.work.members > 1) sort_into_buckets(s, t, share.first, share.last);
  // With one member, the vectorised path adds its lookups here (in place, the backward did).
  if (metrics) add_member0<Dims>(s, share.first, share.last, s.work.members == 1 && vectorised, *metrics);
}

// After it: member t's rows get their lookups (several members) and Adam; member 0 the other
// members' sums and the Dense layer's Adam.
template <int Dims>
void second_half(const StepView& s, int t, EpochMetrics* metrics) {
  DenseWorkspace& w = s.work;
  const int dims = Dims ? Dims : s.state.dims;
  if (w.members > 1) add_owned_lookups<Dims>(s, t);
  adam_range(static_cast<std::size_t>(w.first_row[t]) * dims, static_cast<std::size_t>(w.first_row[t + 1]) * dims,
             adam_step_size(s.config.adam, s.step_number), adam_coefficients(s.config.adam), s.state.table.data(),
             s.state.table_m.data(), s.state.table_v.data(), w.grad.data(), w.squares());
  if (!metrics) return;
  add_member0<Dims>(s, share_of(s.count, 0, w.members).last, s.count, false, *metrics);
  metrics->samples += static_cast<int64_t>(s.count);
  update_dense(s);
}

void run_first_half(const StepView& s, int t, EpochMetrics* metrics) {
  const int dims = s.state.dims;
  if (s.config.normalize) {
    if (dims == 2) return first_half<2, true>(s, t, metrics);
    if (dims == 3) return first_half<3, true>(s, t, metrics);
    return first_half<0, true>(s, t, metrics);
  }
  if (dims == 2) return first_half<2, false>(s, t, metrics);
  if (dims == 3) return first_half<3, false>(s, t, metrics);
  return first_half<0, false>(s, t, metrics);
}

void run_second_half(const StepView& s, int t, EpochMetrics* metrics) {
  if (s.state.dims == 2) return second_half<2>(s, t, metrics);
  if (s.state.dims == 3) return second_half<3>(s, t, metrics);
  return second_half<0>(s, t, metrics);
}

}  // namespace

void dense_epoch(ThreadTeam& team, DenseWorkspace& work, const EpochPairs& order, ModelState& state,
                 const TrainConfig& config, const std::atomic<bool>* stop, EpochMetrics& metrics) {
  const std::size_t n = order.a.size();
  const int64_t spe = steps_per_epoch(n, config.batch);
  const int64_t first_step = state.step % spe, step_before = state.step;
  work.stop_now = false;
  team.run([&](int t) {
    EpochMetrics* member0 = t == 0 ? &metrics : nullptr;  // member 0 alone touches the metrics
    for (int64_t k = first_step; k < spe; ++k) {
      const auto start = static_cast<std::size_t>(k * config.batch);
      const StepView s{state,           config,           work, std::min<std::size_t>(config.batch, n - start),
                       &order.a[start], &order.b[start], &order.label[start], step_before + (k - first_step) + 1};
      const double loss_before = member0 ? metrics.loss_sum : 0.0;
      if (member0) work.dense_grad[0] = work.dense_grad[1] = 0.0f;
      run_first_half(s, t, member0);
      team.barrier();  // every lookup's gradient is made
      run_second_half(s, t, member0);
      if (member0) {
        if (metrics.first_nonfinite_step < 0 && !std::isfinite(metrics.loss_sum - loss_before))
          metrics.first_nonfinite_step = k;
        work.stop_now = stop && stop->load() && k + 1 < spe;
      }
      team.barrier();  // the parameters are updated, and stop_now is every member's
      if (work.stop_now) break;
    }
  });
  if (work.stop_now) metrics.complete = false;
}

}  // namespace cudaembed
