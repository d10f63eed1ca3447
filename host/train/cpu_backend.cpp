// The CPU backend: the tutorial's dense step (dense_step.cpp, the bits of the reference
// cpu_train_step) or the sorted path, an epoch at a time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nvtx3/nvtx3.hpp>

#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "train/dense_step.hpp"
#include "train/sorted_phases.hpp"

namespace cudaembed {

void shuffled_epoch(const PairSet& pairs, uint64_t seed, int64_t epoch, std::vector<LabelledPair>& out) {
  gather_in_epoch_order(static_cast<uint32_t>(pairs.size()), seed, epoch, out, [&](uint32_t id) {
    return LabelledPair{pairs.a[id], pairs.b[id], pairs.label[id]};
  });
}

void cpu_train_step(ModelState& state, std::span<const LabelledPair> batch, const TrainConfig& config,
                    CpuWorkspace& work, EpochMetrics& metrics) {
  const int dims = state.dims;
  const bool per_lookup = config.second_moment == SecondMoment::lookups;
  std::vector<float>& grad = work.grad;
  std::vector<float>& grad_sq = work.grad_sq;
  const float grad_scale = 1.0f / static_cast<float>(batch.size());
  float* table = state.table.data();
  float dense_grad[2] = {0.0f, 0.0f};  // dL/dw, dL/db

  // Three passes, so that the middle one (exp, log and divisions, no gathers or scatters)
  // vectorises; the arithmetic is pair_forward_backward's, split at its seams.
  const std::size_t count = batch.size();
  work.forward.resize(count);
  work.logit.resize(count);
  work.prob.resize(count);
  work.loss.resize(count);
  for (std::size_t i = 0; i < count; ++i) {  // 1: gather both rows, distance
    const std::size_t row_a = static_cast<std::size_t>(batch[i].a) * dims;
    const std::size_t row_b = static_cast<std::size_t>(batch[i].b) * dims;
    work.forward[i] = pair_forward(&table[row_a], &table[row_b], dims, config.normalize);
    work.logit[i] = state.dense[0] * work.forward[i].score + state.dense[1];
  }
  for (std::size_t i = 0; i < count; ++i) {  // 2: sigmoid and BCE; logit becomes dL/dlogit
    const LogitLoss<float> out = bce_from_logit(work.logit[i], batch[i].label);
    work.prob[i] = out.prob;
    work.loss[i] = out.loss;
    work.logit[i] = out.dlogit;
  }
  for (std::size_t i = 0; i < count; ++i) {  // 3: backward into the gradient table, metrics
    const std::size_t row_a = static_cast<std::size_t>(batch[i].a) * dims;
    const std::size_t row_b = static_cast<std::size_t>(batch[i].b) * dims;
    auto accumulate = [&](std::size_t row) {
      return [&, row](int k, float g) {
        grad[row + k] += g;
        if (per_lookup) grad_sq[row + k] += g * g;
      };
    };
    const float label = batch[i].label;
    const float prob = work.prob[i];
    const float dlogit = work.logit[i] * grad_scale;
    const PairForward<float>& f = work.forward[i];
    pair_backward(&table[row_a], &table[row_b], dims, f, dlogit * state.dense[0], accumulate(row_a), accumulate(row_b));
    dense_grad[0] += dlogit * f.score;
    dense_grad[1] += dlogit;
    metrics.loss_sum += work.loss[i];
    metrics.squared_error_sum += static_cast<double>(label - prob) * (label - prob);
    metrics.correct += (prob > 0.5f) == (label > 0.5f);
  }
  metrics.samples += static_cast<int64_t>(batch.size());

  // Dense Adam, as Keras: every parameter, touched by the batch or not.
  state.step += 1;
  const float step_size = adam_step_size(config.adam, state.step);
  const AdamCoefficients coef = adam_coefficients(config.adam);
  const std::size_t n = state.table.size();
  float* m = state.table_m.data();
  float* v = state.table_v.data();
  float* g = grad.data();
  // Two branch-free loops so that each vectorises.
  if (per_lookup) {
    float* g2 = grad_sq.data();
    for (std::size_t i = 0; i < n; ++i) {
      adam_update(table[i], m[i], v[i], g[i], g2[i], step_size, coef);
      g[i] = 0.0f;
      g2[i] = 0.0f;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      adam_update(table[i], m[i], v[i], g[i], g[i] * g[i], step_size, coef);
      g[i] = 0.0f;
    }
  }
  // The Dense layer's gradient is an ordinary dense tensor: v sees its square in both modes.
  for (int i = 0; i < 2; ++i)
    adam_update(state.dense[i], state.dense_m[i], state.dense_v[i], dense_grad[i], dense_grad[i] * dense_grad[i],
                step_size, coef);
}

namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "CPU";
}

// "1 training thread", "2 training threads", or for 0 (--threads 0, before load) how they are picked.
std::string threads_phrase(int threads) {
  if (threads == 0) return "training threads picked by the step's size";
  return fmt::format("{} training thread{}", threads, threads == 1 ? "" : "s");
}

class CpuBackend final : public Backend {
 public:
  // K > 1 ranks always take the sorted path: its ranks exchange each lookup's gradient row (the
  // touched rows, never the table) and sum them as one process does, and for the tutorial's model
  // it trains the same bits as the dense step, so K ranks equal one process's default run.
  CpuBackend(const TrainConfig& config, std::shared_ptr<Communicator> comm, int64_t sharded_rows)
      : config_(config),
        comm_(std::move(comm)),
        sorted_(needs_sorted_path(config, false) || (comm_ && comm_->size() > 1)),
        sharded_rows_(comm_ && comm_->size() > 1 ? sharded_rows : 0),
        threads_(comm_ && comm_->size() > 1 ? 1 : config.threads) {}
  ~CpuBackend() override {
    if (next_.valid()) next_.wait();
  }

  BackendInfo info() const override {
    return {"cpu",
            fmt::format("{} ({} hardware threads; {})", cpu_model_name(), std::thread::hardware_concurrency(),
                        threads_phrase(team_ ? team_->size() : threads_)),
            sharded_rows_ ? "sorted, row sharded" : sorted_ ? "sorted" : "reference"};
  }

  PairSet generate_pairs(std::span<const float> rgb, const PairSpec& spec) override {
    return generate_pairs_host(rgb, spec);
  }

  void load(const PairSet& pairs, const ModelState& state) override {
    if (pairs.size() == 0) throw Error("no pairs to train on");
    if (!pairs.weight.empty() && !sorted_) throw Error("weighted pairs need the sorted path (--kernel sorted)");
    if (next_.valid()) next_.wait();
    prefetched_epoch_ = -1;
    pairs_ = pairs;
    state_ = state;
    int threads = 1;
    if (sorted_) {
      const int64_t samples = config_.batch * (1 + config_.negatives);
      threads = threads_ > 0 ? threads_ : auto_sorted_threads(samples, state_.dims, available_cores());
      threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(state_.rows, 1)));
    } else {
      threads = threads_ > 0 ? threads_ : auto_dense_threads(state_, config_.batch, available_cores());
      work_ = std::make_unique<DenseWorkspace>(state_, config_.second_moment, config_.batch, threads);
      threads = work_->members;
    }
    if (!team_ || team_->size() != threads) team_ = std::make_unique<ThreadTeam>(threads);
    if (threads_ == 0)
      spdlog::info("{} for steps of this size (--threads sets it; any number trains the same bits)",
                   threads_phrase(threads));
  }

  EpochMetrics train_epoch(const std::atomic<bool>* stop, const EpochMetrics& so_far) override {
    const auto start_time = std::chrono::steady_clock::now();
    const int64_t spe = steps_per_epoch(pairs_.size(), config_.batch);
    const int64_t epoch = state_.step / spe;
    EpochMetrics metrics = so_far;
    metrics.complete = true;
    if (sorted_) {
      shuffled_epoch_records(pairs_, config_.seed, epoch, records_);
      const float lr_scale = is_riemannian(config_.optimizer) ? burn_in_scale(epoch, config_.burn_in) : 1.0f;
      train_steps(std::span<const PairRecord>(records_), stop, metrics,
                  [&](auto batch) { sorted_step(batch, metrics, lr_scale); });
    } else {
      dense_epoch(*team_, *work_, shuffled_pairs(epoch), state_, config_, stop, metrics);
    }
    metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    metrics.parameters_finite = parameters_finite(state_);  // a scan in place: no copy to check
    return metrics;
  }

  void fetch(ModelState& state, bool with_optimizer) override {
    if (with_optimizer) {
      state = state_;
      return;
    }
    state.rows = state_.rows;
    state.dims = state_.dims;
    state.table = state_.table;
    std::copy(state_.dense, state_.dense + 2, state.dense);
    state.step = state_.step;
  }

 private:
  // The rest of the epoch's steps over its shuffled examples `all`, one `step(batch)` each.
  template <class Example, class Step>
  void train_steps(std::span<const Example> all, const std::atomic<bool>* stop, EpochMetrics& metrics, Step&& step) {
    const int64_t spe = steps_per_epoch(pairs_.size(), config_.batch);
    for (int64_t k = state_.step % spe; k < spe; ++k) {
      nvtx3::scoped_range range{"step"};
      const double loss_before = metrics.loss_sum;
      step(step_batch(all, k, config_.batch));
      if (metrics.first_nonfinite_step < 0 && !std::isfinite(metrics.loss_sum - loss_before))
        metrics.first_nonfinite_step = k;
      if (stop && stop->load() && k + 1 < spe) {
        metrics.complete = false;
        break;
      }
    }
  }

  // The epoch's pairs in shuffled order. The gather is memory-bound (random reads of the pairs), so
  // the next epoch's runs on another core while this one trains.
  const EpochPairs& shuffled_pairs(int64_t epoch) {
    if (prefetched_epoch_ == epoch) {
      next_.get();
      std::swap(shuffled_, next_shuffled_);
    } else {
      shuffled_epoch_columns(pairs_, config_.seed, epoch, shuffled_);
    }
    prefetched_epoch_ = epoch + 1;
    next_ = std::async(std::launch::async,
                       [this, epoch] { shuffled_epoch_columns(pairs_, config_.seed, epoch + 1, next_shuffled_); });
    return shuffled_;
  }

  void sorted_step(std::span<const PairRecord> batch, EpochMetrics& metrics, float lr_scale) {
    if (sharded_rows_)
      cpu_sharded_step(state_, sharded_rows_, batch, config_, shard_work_, metrics, lr_scale, *comm_);
    else if (team_->size() > 1)
      cpu_sorted_step_team(*team_, state_, batch, config_, sorted_work_, metrics, lr_scale);
    else
      cpu_sorted_step(state_, batch, config_, sorted_work_, metrics, lr_scale, comm_.get());
  }

  TrainConfig config_;
  std::shared_ptr<Communicator> comm_;  // the ranks of a distributed run; null: one process
  bool sorted_;  // the sorted-segment path (host/train/sorted_step.cpp) rather than the tutorial's dense step
  PairSet pairs_;
  ModelState state_;
  std::unique_ptr<DenseWorkspace> work_;
  EpochPairs shuffled_, next_shuffled_;
  std::future<void> next_;  // fills next_shuffled_ for prefetched_epoch_
  int64_t prefetched_epoch_ = -1;
  std::vector<PairRecord> records_;  // the sorted path's shuffled epoch
  SortedWorkspace sorted_work_;
  int64_t sharded_rows_;                // row sharded: the whole table's rows (state_ holds this rank's); 0: not
  ShardWorkspace shard_work_;
  int threads_;                       // --threads (0: auto_dense_threads or auto_sorted_threads; 1 across MPI ranks)
  std::unique_ptr<ThreadTeam> team_;  // made by load: no more members than the table has rows
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const TrainConfig& config, std::shared_ptr<Communicator> comm,
                                          int64_t sharded_rows) {
  return std::make_unique<CpuBackend>(config, std::move(comm), sharded_rows);
}

}  // namespace cudaembed
