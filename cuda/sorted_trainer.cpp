// The sorted-segment path's device memory and epoch loop (kernels in sorted_kernels.cu).
#include "sorted_trainer.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>

#include <fmt/format.h>
#include <nvtx3/nvtx3.hpp>

#include "cuda_check.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "device_buffer.hpp"
#include "device_checks.hpp"
#include "finite_check.hpp"
#include "graph_capture.hpp"
#include "sorted_kernels.hpp"

namespace cudaembed {

std::string unsupported_dims_message(int dims) {
  return fmt::format(
      "--dims {}: the GPU's sorted-segment kernels are built for D = 1, 2, 3, 4, 8, 10, 16, 32, 64, 128 and 256; "
      "choose one of those (or --device cpu, which takes any D)",
      dims);
}

std::vector<float> adam_step_size_table(const AdamHyper& hyper) {
  const double b1 = std::fabs(static_cast<double>(hyper.beta1)), b2 = std::fabs(static_cast<double>(hyper.beta2));
  if (!(b1 < 1.0 && b2 < 1.0)) return {};
  std::vector<float> sizes;
  for (std::size_t t = 1; t <= kMaxStepSizes; ++t) {
    sizes.push_back(adam_step_size(hyper, static_cast<int64_t>(t)));
    // step(t) = lr sqrt(1 - b2^t) / (1 - b1^t) = lr (1 + d), |d| <= max(b2^t, 2 b1^t) once b1^t <= 1/2,
    // and d only shrinks with t. Below 2^-27, a quarter of the smallest half-ulp of a float
    // relative to it, every later step rounds to float(lr): the last entry serves them all.
    const double x = std::pow(b2, static_cast<double>(t)), y = std::pow(b1, static_cast<double>(t));
    if (y <= 0.5 && std::max(x, 2 * y) < 0x1p-27 && sizes.back() == hyper.lr) return sizes;
  }
  return {};
}

// Row sharded: each step's plan, made on the host from its own copy of the pairs (every rank
// draws the same samples), and the device buffers the plan's exchanges use. Capacities are fixed
// at the most a step can need, so no buffer moves while training.
struct ShardedSteps {
  RowShard shard;
  TrainConfig config;
  long long steps_per_epoch = 0;
  long long next_step = 0;  // the step the next epoch starts at
  uint32_t local_rows = 0, max_samples = 0;
  int dims = 0;
  PairSet pairs;                    // the host's copy, for the epoch's shuffle and the samples
  std::vector<PairRecord> records;  // this epoch's pairs, shuffled
  long long records_epoch = -1;
  std::vector<PairRecord> samples;  // this step's
  ShardPlan plan;
  std::vector<uint32_t> lookup_rows;  // (2 max_samples,) owned local rows; the sentinel elsewhere
  std::vector<std::size_t> serve_values, read_values, send_values, recv_values;  // counts of floats
  DeviceBuffer<PairRecord> planned;                                              // (max_samples,) plan.local_samples
  DeviceBuffer<uint32_t> serve_rows, send_lookups, recv_lookups;
  DeviceBuffer<float> rows_out, rows_in, grads_out, grads_in;

  // Draws step `step`'s samples, plans them, and copies the plan in on `stream` (from pageable
  // memory the copies return once the host's vectors are staged, so the next step may refill them).
  void plan_step(long long step, DeviceBuffer<uint32_t>& lookup_row, cudaStream_t stream);
};

namespace {

// Copies `from` into the first from.size() elements of `to`, which was sized for the most a step needs.
template <class T>
void copy_in(DeviceBuffer<T>& to, const std::vector<T>& from, cudaStream_t stream) {
  if (from.size() > to.size())
    throw Error(fmt::format("row sharded step: {} values for a buffer of {}", from.size(), to.size()));
  if (!from.empty())
    CE_CUDA_CHECK(cudaMemcpyAsync(to.data(), from.data(), from.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
}

}  // namespace

void ShardedSteps::plan_step(long long step, DeviceBuffer<uint32_t>& lookup_row, cudaStream_t stream) {
  const long long epoch = step / steps_per_epoch;
  if (records_epoch != epoch) {
    shuffled_epoch_records(pairs, config.seed, epoch, records);
    records_epoch = epoch;
  }
  const std::span<const PairRecord> batch =
      step_batch(std::span<const PairRecord>(records), step % steps_per_epoch, config.batch);
  step_samples(batch, config, step, static_cast<uint32_t>(shard.rows), samples);
  plan_shard_step(samples, shard.place, plan);
  lookup_rows.assign(2 * static_cast<std::size_t>(max_samples), local_rows);  // the sentinel sorts last
  for (std::size_t l = 0; l < plan.owned_row.size(); ++l)
    if (plan.owned_row[l] != ShardPlan::kNotOwned) lookup_rows[l] = plan.owned_row[l];
  const auto d = static_cast<std::size_t>(dims);
  values_of_rows(plan.serve_counts, d, serve_values);
  values_of_rows(plan.read_counts, d, read_values);
  values_of_rows(plan.send_lookup_counts, d, send_values);
  values_of_rows(plan.recv_lookup_counts, d, recv_values);
  copy_in(planned, plan.local_samples, stream);
  copy_in(lookup_row, lookup_rows, stream);
  copy_in(serve_rows, plan.serve_rows, stream);
  copy_in(send_lookups, plan.send_lookups, stream);
  copy_in(recv_lookups, plan.recv_lookups, stream);
}

struct SortedTrainer::Buffers {
  TrainConfig config;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, end = nullptr;
  int sm_count = 0;
  long long steps_per_epoch = 0;
  uint32_t pair_count = 0, rows = 0, max_samples = 0;
  int dims = 0, key_bits = 0;
  DeviceBuffer<PairRecord> pairs;
  DeviceBuffer<float> table, table_m, table_v, row_acc, lookup_grad, sample_partials, step_sizes;
  DeviceBuffer<FinishPartial> finish_partials;
  DeviceBuffer<long long> row_step;
  DeviceBuffer<uint32_t> touched, lookup_row, lookup_id, sorted_row, sorted_id, unique_row, run_length, run_offset,
      hot_runs;
  DeviceBuffer<unsigned char> cub_temp;
  DeviceBuffer<SortedScalars> scalars;
  DeviceBuffer<unsigned int> nonfinite;  // (1,): set by the divergence guard when the table is not finite
  DeviceRanks* ranks = nullptr;          // K ranks: the exchange between the step's halves; null: one GPU
  DeviceBuffer<float> chunk, gathered;   // (exchange_chunk,) this rank's samples; (K * exchange_chunk,) everyone's
  cudaEvent_t step_done[2] = {nullptr, nullptr};  // with ranks: the last two steps' ends
  std::unique_ptr<ShardedSteps> sharded;          // row sharded: the host's plans and their device copies
  // Made once, when every buffer above has its final size, and the same for the trainer's life:
  // the step graph bakes these pointers and sizes in. What changes from step to step (the step
  // counter, and from it the batch, the negatives and Adam's step size; the runs; the hot-run
  // count) the kernels read from `scalars` in device memory, so one captured step is right for
  // every step. Another shape, batch or optimizer is another SortedTrainer (CudaBackend::load
  // makes one per run), and so another capture.
  SortedArgs args{};
  cudaGraphExec_t step_graph = nullptr;  // null: SortedLaunch::direct

  SortedArgs make_args() {
    SortedArgs a{};
    a.pairs = pairs.data();
    a.pair_count = pair_count;
    a.batch = static_cast<int>(config.batch);
    a.steps_per_epoch = steps_per_epoch;
    a.seed = config.seed;
    a.negatives = config.negatives;
    a.max_samples = max_samples;
    a.table = table.data();
    a.table_m = table_m.data();
    a.table_v = table_v.data();
    a.row_acc = row_acc.data();
    a.row_step = row_step.data();
    a.touched = touched.data();
    a.rows = rows;
    a.dims = dims;
    a.normalize = config.normalize;
    a.head = config.head;
    a.optimizer = config.optimizer;
    a.second_moment = config.second_moment;
    a.adam = config.adam;
    a.coef = adam_coefficients(config.adam);
    a.burn_in = config.burn_in;
    a.step_sizes = step_sizes.data();
    a.step_size_count = static_cast<uint32_t>(step_sizes.size());
    a.lookup_row = lookup_row.data();
    a.lookup_id = lookup_id.data();
    a.sorted_row = sorted_row.data();
    a.sorted_id = sorted_id.data();
    a.unique_row = unique_row.data();
    a.run_length = run_length.data();
    a.run_offset = run_offset.data();
    a.hot_runs = hot_runs.data();
    a.lookup_grad = lookup_grad.data();
    a.sample_partials = sample_partials.data();
    a.finish_partials = finish_partials.data();
    a.scalars = scalars.data();
    a.key_bits = key_bits;
    a.cub_temp = cub_temp.data();
    a.cub_temp_bytes = cub_temp.size();
    a.sm_count = sm_count;
    a.rank = ranks ? ranks->rank() : 0;
    a.ranks = ranks ? ranks->size() : 1;
    a.read_table = sharded ? sharded->rows_in.data() : table.data();
    a.planned_samples = sharded ? sharded->planned.data() : nullptr;
    return a;
  }

  // One step: the captured graph, or its kernels; with K ranks, the exchange between its halves.
  void step() {
    if (step_graph) {
      CE_CUDA_CHECK(cudaGraphLaunch(step_graph, stream));
    } else if (!ranks) {
      launch_sorted_step(args, stream);
    } else if (!sharded) {
      launch_sorted_forward(args, stream);
      exchange_partials();
      launch_sorted_update(args, stream);
    } else {
      sharded_step(*sharded);
    }
  }

  // The row-sharded steps' host copy of the pairs and device buffers, each sized for the most a
  // step can need: S = max_samples samples, 2S lookups, a slice of at most `longest` samples.
  void make_sharded(const RowShard& shard, const PairSet& all_pairs, long long first_step, int rank_count) {
    sharded = std::make_unique<ShardedSteps>();
    ShardedSteps& x = *sharded;
    x.shard = shard;
    x.config = config;
    x.steps_per_epoch = steps_per_epoch;
    x.next_step = first_step;
    x.local_rows = rows;
    x.max_samples = max_samples;
    x.dims = dims;
    x.pairs = all_pairs;
    const std::size_t lookups = 2 * static_cast<std::size_t>(max_samples);
    const std::size_t slice_lookups = 2 * static_cast<std::size_t>(exchange_longest(max_samples, rank_count));
    const auto d = static_cast<std::size_t>(dims);
    x.planned.resize(max_samples);
    x.serve_rows.resize(lookups);  // each reader's distinct rows: at most its slice's lookups, 2S in all
    x.rows_out.resize(lookups * d);
    x.rows_in.resize(slice_lookups * d);  // the distinct rows this rank's slice reads
    x.send_lookups.resize(slice_lookups);
    x.grads_out.resize(slice_lookups * d);
    x.recv_lookups.resize(lookups);  // every lookup of this rank's rows: at most all of them
    x.grads_in.resize(lookups * d);
    // The lookups' ids are 0, 1, 2, ... every step: the forward does not write them when planned.
    std::vector<uint32_t> ids(lookups);
    for (std::size_t l = 0; l < lookups; ++l) ids[l] = static_cast<uint32_t>(l);
    lookup_id.upload(ids, stream);
  }

  // K ranks: the all-gather of the samples' slices (their gradients too in data parallel).
  void exchange_partials() {
    launch_pack_slice(args, chunk.data(), stream);
    ranks->all_gather(chunk.data(), gathered.data(), chunk.size(), stream);
    launch_unpack_slices(args, gathered.data(), stream);
  }

  // Row sharded, after plan_step: the rows each slice reads from their owners; forward and backward
  // of this rank's slice; each lookup's gradient to its row's owner; the partials to every rank;
  // this rank's rows updated.
  void sharded_step(ShardedSteps& x) {
    const ShardPlan& plan = x.plan;
    launch_gather_rows(x.rows_out.data(), table.data(), x.serve_rows.data(),
                       static_cast<uint32_t>(plan.serve_rows.size()), dims, sm_count, stream);
    ranks->all_to_all(x.rows_out.data(), x.serve_values, x.rows_in.data(), x.read_values, stream);
    launch_sorted_forward(args, stream);
    launch_gather_rows(x.grads_out.data(), lookup_grad.data(), x.send_lookups.data(),
                       static_cast<uint32_t>(plan.send_lookups.size()), dims, sm_count, stream);
    ranks->all_to_all(x.grads_out.data(), x.send_values, x.grads_in.data(), x.recv_values, stream);
    launch_scatter_rows(lookup_grad.data(), x.grads_in.data(), x.recv_lookups.data(),
                        static_cast<uint32_t>(plan.recv_lookups.size()), dims, sm_count, stream);
    exchange_partials();
    launch_sorted_update(args, stream);
  }
};

SortedTrainer::SortedTrainer(const TrainConfig& config, const PairSet& pairs, const ModelState& state,
                             const cudaDeviceProp& props, cudaStream_t stream, SortedLaunch launch, DeviceRanks* ranks,
                             const RowShard* shard)
    : buffers_(std::make_unique<Buffers>()) {
  Buffers& b = *buffers_;
  if (!sorted_dims_supported(state.dims)) throw Error(unsupported_dims_message(state.dims));
  if (state.rows < 1 || static_cast<uint64_t>(state.rows) >= 0xffffffffull)
    throw Error(fmt::format("{} rows: the GPU path takes 1 to 2^32 - 2 rows", state.rows));
  const uint64_t samples = static_cast<uint64_t>(config.batch) * (static_cast<uint64_t>(config.negatives) + 1);
  if (2 * samples >= (1ull << 31))
    throw Error(fmt::format("--batch {} with --negatives {}: {} lookups per step, at most 2^31 - 1", config.batch,
                            config.negatives, 2 * samples));
  size_t free = 0, total = 0;
  CE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const int rank_count = ranks ? ranks->size() : 1;
  if (shard && !ranks) throw Error("a row-sharded SortedTrainer needs the ranks to exchange with");
  const SortedMemory need = sorted_device_bytes(pairs.size(), state.rows, state.dims, config.batch, config.negatives,
                                                config.optimizer, ranks ? rank_count : 0, shard != nullptr);
  if (const auto problem = sorted_memory_problem(need, free, total, props.name); !problem.empty()) throw Error(problem);

  b.config = config;
  b.stream = stream;
  b.sm_count = props.multiProcessorCount;
  b.steps_per_epoch = steps_per_epoch(pairs.size(), config.batch);
  if (state.step % b.steps_per_epoch != 0)
    throw Error(
        fmt::format("the run stopped at step {}, inside an epoch of {} steps (it was interrupted on the CPU); "
                    "resume it with --device cpu",
                    state.step, b.steps_per_epoch));
  b.pair_count = static_cast<uint32_t>(pairs.size());
  b.rows = static_cast<uint32_t>(state.rows);
  b.dims = state.dims;
  b.max_samples = static_cast<uint32_t>(samples);
  b.key_bits = std::bit_width(b.rows);  // room for the sentinel `rows`

  std::vector<PairRecord> records(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i)
    records[i] = {pairs.a[i], pairs.b[i], pairs.label[i], pairs.weight.empty() ? 1.0f : pairs.weight[i]};
  b.pairs.upload(records, stream);
  b.table.upload(state.table, stream);
  b.table_m.upload(state.table_m, stream);
  b.table_v.upload(state.table_v, stream);
  b.row_acc.upload(state.row_acc, stream);
  std::vector<long long> row_step(state.row_step.begin(), state.row_step.end());
  b.row_step.upload(row_step, stream);
  if (config.optimizer == Optimizer::adam) {
    b.touched.resize(touched_bitmap_words(b.rows));
    b.touched.zero(stream);
  }
  const std::size_t lookups = 2 * samples;
  for (auto* buffer :
       {&b.lookup_row, &b.lookup_id, &b.sorted_row, &b.sorted_id, &b.unique_row, &b.run_length, &b.run_offset})
    buffer->resize(lookups);
  // The scan reads every run length, also past this step's runs: zeroed once, so it never reads
  // uninitialised memory (compute-sanitizer's initcheck).
  b.run_length.zero(stream);
  b.hot_runs.resize(lookups / kHotRunLength + 1);
  b.lookup_grad.resize(lookups * static_cast<std::size_t>(b.dims));
  b.sample_partials.resize(5 * samples);
  b.finish_partials.resize(finish_blocks(b.max_samples));
  if (config.optimizer == Optimizer::adam || config.optimizer == Optimizer::lazy_adam ||
      config.optimizer == Optimizer::radam)
    b.step_sizes.upload(adam_step_size_table(config.adam), stream);
  b.cub_temp.resize(sorted_cub_temp_bytes(b.max_samples, b.key_bits));

  SortedScalars host{};
  host.step = state.step;
  for (int i = 0; i < 2; ++i) {
    host.dense[i] = state.dense[i];
    host.dense_m[i] = state.dense_m[i];
    host.dense_v[i] = state.dense_v[i];
  }
  b.scalars.upload(&host, 1, stream);
  b.nonfinite.resize(1);
  b.ranks = ranks;
  if (ranks) {
    const uint64_t chunk = exchange_chunk(b.max_samples, shard ? 0 : b.dims, rank_count);
    b.chunk.resize(chunk);
    b.gathered.resize(chunk * static_cast<uint64_t>(rank_count));
    for (cudaEvent_t& done : b.step_done) CE_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  }
  if (shard) b.make_sharded(*shard, pairs, state.step, rank_count);
  CE_CUDA_CHECK(cudaEventCreate(&b.start));
  CE_CUDA_CHECK(cudaEventCreate(&b.end));
  b.args = b.make_args();
  if (launch == SortedLaunch::graph && !ranks)
    b.step_graph = capture_graph(stream, [&] { launch_sorted_step(b.args, stream); });
}

SortedTrainer::~SortedTrainer() {
  if (buffers_->step_graph) cudaGraphExecDestroy(buffers_->step_graph);
  for (cudaEvent_t done : buffers_->step_done)
    if (done) cudaEventDestroy(done);
  cudaEventDestroy(buffers_->start);
  cudaEventDestroy(buffers_->end);
}

EpochMetrics SortedTrainer::train_epoch() {
  nvtx3::scoped_range range{"sorted"};
  Buffers& b = *buffers_;
  constexpr size_t kSums = offsetof(SortedScalars, loss_sum);
  CE_CUDA_CHECK(
      cudaMemsetAsync(reinterpret_cast<char*>(b.scalars.data()) + kSums, 0, sizeof(SortedScalars) - kSums, b.stream));
  CE_CUDA_CHECK(cudaEventRecord(b.start, b.stream));
  for (long long k = 0; k < b.steps_per_epoch; ++k) {
    nvtx3::scoped_range step{"step"};
    if (b.sharded) b.sharded->plan_step(b.sharded->next_step + k, b.lookup_row, b.stream);
    b.step();
    if (b.ranks) {
      // At most two steps in flight: the wait on step k - 2 is where a stuck exchange is noticed,
      // within the ranks' timeout, rather than in a download that would wait for ever.
      cudaEvent_t& done = b.step_done[k % 2];
      if (k >= 2) b.ranks->wait(done);
      CE_CUDA_CHECK(cudaEventRecord(done, b.stream));
    }
  }
  if (b.ranks && b.steps_per_epoch > 0) b.ranks->wait(b.step_done[(b.steps_per_epoch - 1) % 2]);
  if (b.sharded) b.sharded->next_step += b.steps_per_epoch;
  CE_CUDA_CHECK(cudaEventRecord(b.end, b.stream));
  // The divergence guard, after the compute events: train's time counts it, the kernel's does not.
  b.nonfinite.zero(b.stream);
  launch_nonfinite_check(b.table.data(), b.table.size(), b.nonfinite.data(), b.sm_count, b.stream);
  SortedScalars host{};
  b.scalars.download(&host, 1, b.stream);
  unsigned int nonfinite = 0;
  b.nonfinite.download(&nonfinite, 1, b.stream);
  float ms = 0;
  CE_CUDA_CHECK(cudaEventElapsedTime(&ms, b.start, b.end));
  const auto samples = static_cast<int64_t>(b.pair_count) * (b.config.negatives + 1);
  EpochMetrics metrics{host.loss_sum, host.squared_error_sum, host.correct, samples, ms / 1e3};
  metrics.parameters_finite = nonfinite == 0 && std::isfinite(host.dense[0]) && std::isfinite(host.dense[1]);
  return metrics;
}

void SortedTrainer::fetch(ModelState& state, bool with_optimizer) {
  Buffers& b = *buffers_;
  SortedScalars host{};
  b.scalars.download(&host, 1, b.stream);
  state.rows = b.rows;
  state.dims = b.dims;
  b.table.download(state.table, b.stream);
  state.step = host.step;
  for (int i = 0; i < 2; ++i) state.dense[i] = host.dense[i];
  if (!with_optimizer) return;
  b.table_m.download(state.table_m, b.stream);
  b.table_v.download(state.table_v, b.stream);
  b.row_acc.download(state.row_acc, b.stream);
  std::vector<long long> row_step;
  b.row_step.download(row_step, b.stream);
  state.row_step.assign(row_step.begin(), row_step.end());
  for (int i = 0; i < 2; ++i) {
    state.dense_m[i] = host.dense_m[i];
    state.dense_v[i] = host.dense_v[i];
  }
}

}  // namespace cudaembed
