// TrainingSession: a request's data read, its backend started, its state drawn, then trained.
// Nothing here writes a file: the run directory is host/outputs/run_writer.cpp's.
#include "cudaembed/api.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cudaembed/colours.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/version.hpp"
#include "data/held_out.hpp"

namespace cudaembed {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// TensorBoard projector metadata: a header row, then each row's name and, for the colours, its hex
// colour (pairs have names only). Tabs and newlines in names would break the columns, so they
// become spaces.
std::string metadata_tsv(const std::vector<std::string>& names, const ColourTable* colours) {
  std::string out = colours ? "name\thex\n" : "name\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string name = names[i];
    std::replace_if(
        name.begin(), name.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
    out += name;
    if (colours) {
      out += '\t';
      out += colours->hex(i);
    }
    out += '\n';
  }
  return out;
}

std::vector<std::string> id_names(uint64_t rows) {
  std::vector<std::string> names;
  names.reserve(rows);
  for (uint64_t i = 0; i < rows; ++i) names.push_back(std::to_string(i));
  return names;
}

TrainingData load_colours(const ColoursSource& source, const ColourTable& colours, double parse_s, Backend& backend,
                          uint64_t seed) {
  TrainingData d;
  d.parse_s = parse_s;
  d.source = source.csv;
  const auto pairs_start = Clock::now();
  PairSpec spec = source.pairs;
  spec.seed = seed;
  d.pairs = backend.generate_pairs(colours.rgb, spec);
  d.pairs_s = seconds_since(pairs_start);
  spdlog::info("{} pairs (seed {}), {:.1f}% positive", d.pairs.size(), seed, 100.0 * d.pairs.positive_fraction());
  d.rows = static_cast<int64_t>(colours.size());
  d.names = colours.names;
  d.rgb = colours.rgb;
  d.metadata = metadata_tsv(colours.names, &colours);
  d.summary = {{"colours", colours.size()},
               {"pairs", d.pairs.size()},
               {"positive_fraction", d.pairs.positive_fraction()},
               {"label_threshold", json_number(spec.threshold)}};
  return d;
}

void warn_without_negatives(bool labelled, const TrainConfig& config, const std::string& what) {
  if (!labelled && config.negatives == 0)
    spdlog::warn("{} has no labels, so every pair is a positive: add --negatives K to draw K negatives each", what);
}

TrainingData load_pairs_file(const PairsFileSource& source, const TrainConfig& config) {
  const auto start = Clock::now();
  PairsData file = read_pairs_file(source.path, source.options);
  TrainingData d;
  d.parse_s = seconds_since(start);
  d.source = source.path;
  d.rows = static_cast<int64_t>(file.rows);
  d.pairs = std::move(file.pairs);
  spdlog::info("{}: {} pairs over {} rows ({} ids{}{}), {:.1f}% positive, read in {:.2f} s", source.path,
               d.pairs.size(), d.rows, to_string(file.ids), file.labelled ? "" : ", positives only",
               d.pairs.weight.empty() ? "" : ", weighted", 100.0 * d.pairs.positive_fraction(), d.parse_s);
  warn_without_negatives(file.labelled, config, source.path);
  if (file.ids == IdKind::names) {
    d.names = file.names;
    d.vocab = std::move(file.names);
  } else {
    d.names = id_names(file.rows);
  }
  d.metadata = metadata_tsv(d.names, nullptr);
  d.summary = {{"pairs_file", source.path},
               {"rows", d.rows},
               {"ids", to_string(file.ids)},
               {"pairs", d.pairs.size()},
               {"labelled", file.labelled},
               {"weighted", !d.pairs.weight.empty()},
               {"positive_fraction", d.pairs.positive_fraction()}};
  return d;
}

// In-memory pairs, checked as a pairs file's are: equal lengths, ids below the rows, labels 0 or 1,
// weights finite and non-negative.
void check_pair_arrays(const PairArrays& arrays, uint64_t rows) {
  const PairSet& p = arrays.pairs;
  if (p.a.size() != p.b.size())
    throw Error(fmt::format("pairs: a has {} ids but b has {}", p.a.size(), p.b.size()));
  if (p.a.empty()) throw Error("pairs: no pairs to train on");
  if (!p.label.empty() && p.label.size() != p.a.size())
    throw Error(fmt::format("pairs: {} labels for {} pairs", p.label.size(), p.a.size()));
  if (!p.weight.empty() && p.weight.size() != p.a.size())
    throw Error(fmt::format("pairs: {} weights for {} pairs", p.weight.size(), p.a.size()));
  if (!arrays.names.empty() && arrays.names.size() != rows)
    throw Error(fmt::format("pairs: {} names for {} rows", arrays.names.size(), rows));
  for (std::size_t i = 0; i < p.a.size(); ++i) {
    if (p.a[i] >= rows || p.b[i] >= rows)
      throw Error(fmt::format("pairs: pair {} has id {}, but there are {} rows (ids 0 to {})", i,
                              std::max(p.a[i], p.b[i]), rows, rows - 1));
    if (!p.label.empty() && p.label[i] != 0.0f && p.label[i] != 1.0f)
      throw Error(fmt::format("pairs: pair {} has label {}; labels are 0 or 1", i, p.label[i]));
    if (!p.weight.empty() && !(p.weight[i] >= 0.0f && std::isfinite(p.weight[i])))
      throw Error(fmt::format("pairs: pair {} has weight {}; weights are finite and >= 0", i, p.weight[i]));
  }
}

TrainingData load_arrays(const PairArrays& arrays, const TrainConfig& config) {
  const PairSet& p = arrays.pairs;
  uint64_t rows = static_cast<uint64_t>(arrays.rows);
  if (arrays.rows < 0) throw Error(fmt::format("pairs: rows is {}; give 0 for the largest id + 1", arrays.rows));
  if (rows == 0 && !p.a.empty())
    rows = uint64_t{std::max(*std::max_element(p.a.begin(), p.a.end()), *std::max_element(p.b.begin(), p.b.end()))} + 1;
  check_pair_arrays(arrays, rows);
  TrainingData d;
  d.source = "arrays";
  d.rows = static_cast<int64_t>(rows);
  d.pairs = p;
  const bool labelled = !p.label.empty();
  if (!labelled) d.pairs.label.assign(p.a.size(), 1.0f);
  warn_without_negatives(labelled, config, "the pairs");
  d.names = arrays.names.empty() ? id_names(rows) : arrays.names;
  if (!arrays.names.empty()) d.vocab = arrays.names;
  d.metadata = metadata_tsv(d.names, nullptr);
  d.summary = {{"arrays", true},
               {"rows", d.rows},
               {"ids", arrays.names.empty() ? "ints" : "names"},
               {"pairs", d.pairs.size()},
               {"labelled", labelled},
               {"weighted", !d.pairs.weight.empty()},
               {"positive_fraction", d.pairs.positive_fraction()}};
  return d;
}

// Fewer optimizer steps than this, in the whole run, rarely learn anything (a small pairs file with
// the batch of a large one).
constexpr int64_t kFewSteps = 200;

// Warns, before training, about a batch larger than the data and a run too short to learn, saying
// what to change.
void warn_if_too_few_steps(uint64_t pairs, const TrainConfig& cfg) {
  if (static_cast<uint64_t>(cfg.batch) > pairs)
    spdlog::warn(
        "--batch {} is larger than the {} pairs, so every epoch is a single step: use a --batch below {} "
        "(say {})",
        cfg.batch, pairs, pairs, std::bit_floor(std::max<uint64_t>(pairs / 8, 1)));
  const int64_t spe = steps_per_epoch(pairs, cfg.batch);
  const int64_t steps = cfg.epochs * spe;
  if (steps >= kFewSteps) return;
  const uint64_t batch_for_enough = pairs * static_cast<uint64_t>(cfg.epochs) / kFewSteps;
  const int64_t epochs_for_enough = (kFewSteps + spe - 1) / spe;
  spdlog::warn(
      "the whole run is only {} optimizer steps ({} epochs x {} per epoch), too few to learn much: aim for "
      "{} or more with {}--epochs {}",
      steps, cfg.epochs, spe, kFewSteps,
      batch_for_enough >= 1 ? fmt::format("--batch {} or ", std::bit_floor(batch_for_enough)) : std::string(),
      epochs_for_enough);
}

// What row sharding does not cover yet, refused before anything is read into a shard.
void check_row_sharding(const TrainingRequest& request, int ranks, int64_t rows) {
  if (request.validation > 0)
    throw Error("--validation: the held-out loss reads the whole table, which row-sharded ranks do not hold; "
                "train with --parallel data, or evaluate the run afterwards");
  if (request.initial_state) throw Error("initial_state: row-sharded ranks draw their own rows");
  if (rows < ranks)
    throw Error(fmt::format("--parallel rows: {} ranks for a table of {} rows; run at most {} ranks", ranks, rows,
                            rows));
}

// Before training, what a row-sharded rank holds against one process: the single-device check's numbers.
void log_shard_memory(const ModelState& shard, const RowPlacement& place, int64_t rows) {
  const auto bytes = static_cast<double>(state_bytes(shard));
  const double per_row = shard.rows ? bytes / static_cast<double>(shard.rows) : 0.0;
  spdlog::info("row sharded on {} ranks ({}): rank {} holds {} of {} rows, {:.3g} MB of table and optimizer "
               "state ({:.3g} MB in one process)",
               place.ranks, RowPlacement::kRule, place.rank, shard.rows, rows, bytes / 1e6,
               per_row * static_cast<double>(rows) / 1e6);
}

}  // namespace

void gather_shards(TrainedModel& model, Communicator& comm) {
  if (!model.sharded()) return;
  ModelState& s = model.state;
  s.table = gather_table(s, model.data.rows, comm);
  s.rows = comm.is_root() ? model.data.rows : 0;
  s.table_m.clear();
  s.table_v.clear();
  s.row_acc.clear();
  s.row_step.clear();
}

std::string default_colours_csv() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return kDefaultData;
  const fs::path installed = (exe.parent_path() / kInstalledDataFromBin).lexically_normal();
  return fs::is_regular_file(installed, ec) ? installed.string() : kDefaultData;
}

void apply_defaults(TrainConfig& config, InitSpec& init, const UnsetSettings& unset) {
  if (config.head == Head::poincare) {
    const PoincareDefaults d;
    if (unset.optimizer) config.optimizer = d.optimizer;
    if (unset.init_range) init.embedding_range = d.init_range;
    if (unset.burn_in) config.burn_in = d.burn_in;
    if (unset.batch) config.batch = d.batch;
    if (unset.epochs) config.epochs = d.epochs;
  }
  check_head_optimizer(config);
  if (unset.lr) config.adam.lr = default_learning_rate(config.optimizer);
}

std::vector<float> compared_rows(const std::vector<float>& table, const TrainConfig& config) {
  return config.normalize ? l2_normalized_rows(table, config.dims) : table;
}

std::vector<float> TrainedModel::rows() const { return compared_rows(state.table, config); }

TrainingSession::TrainingSession(TrainingRequest request) {
  const auto start = Clock::now();
  TrainedModel& m = model_;
  m.config = request.train;
  m.device = request.device;
  m.validation = request.validation;
  m.eval_candidates = request.eval_candidates;
  auto* colours_source = std::get_if<ColoursSource>(&request.data);
  if (request.validation > 0 && colours_source)
    throw Error(
        "--validation: holds out pairs of a --pairs-file; the colour run draws new random pairs every run "
        "(`cudaembed evaluate RUN` measures how well it orders the colours like RGB)");
  std::optional<ColourTable> colours;
  if (colours_source) {
    if (colours_source->csv.empty()) colours_source->csv = default_colours_csv();
    colours = read_colours_csv(colours_source->csv);
    spdlog::info("{}: {} colours{}", colours_source->csv, colours->size(),
                 colours->nameless_dropped
                     ? fmt::format(" ({} rows without a Color Name dropped)", colours->nameless_dropped)
                     : std::string());
  } else if (const auto* file = std::get_if<PairsFileSource>(&request.data)) {
    m.data = load_pairs_file(*file, m.config);
  } else {
    m.data = load_arrays(std::get<PairArrays>(request.data), m.config);
  }
  // Pair weights need the sorted path; --kernel auto picks it.
  if (!m.data.pairs.weight.empty() && m.config.kernel == "auto") m.config.kernel = "sorted";
  const double parse_s = seconds_since(start);
  comm_ = request.communicator;
  if (comm_) m.ranks = comm_->size();
  m.parallel = request.parallel;
  const int64_t table_rows = colours ? static_cast<int64_t>(colours->size()) : m.data.rows;
  if (m.parallel == Parallel::rows && m.config.kernel == "auto") m.config.kernel = "sorted";  // what shards train
  if (m.sharded()) check_row_sharding(request, m.ranks, table_rows);
  backend_ = make_backend(parse_device_choice(request.device), m.config, comm_, m.sharded() ? table_rows : 0);
  m.backend = backend_->info();
  spdlog::info("backend {} on {} (kernel {})", m.backend.name, m.backend.device, m.backend.kernel);
  // The CPU backend has its dense path and the sorted one (and is always deterministic): CUDA's
  // other variants mean nothing to it.
  const std::string& asked = request.train.kernel;
  if (m.backend.name == "cpu" && asked != "auto" && asked != "sorted" && asked != "deterministic")
    spdlog::warn("--kernel {}: ignored, the CPU backend has no kernel variants (it runs its {} path)", asked,
                 m.backend.kernel);
  if (colours) m.data = load_colours(*colours_source, *colours, parse_s, *backend_, m.config.seed);
  if (request.validation > 0) {
    held_out_ = std::make_shared<HeldOutPairs>(m.data.pairs, request.validation, m.config, m.data.rows);
    m.held_out = held_out_;
  }
  m.init = request.init;
  m.init.seed = m.config.seed;
  m.init.head = m.config.head;
  m.state = first_state(request.initial_state.get());
  std::copy(m.state.dense, m.state.dense + 2, m.initial_dense);
}

ModelState TrainingSession::first_state(const ModelState* given) const {
  const TrainedModel& m = model_;
  if (given) {
    if (given->rows != m.data.rows || given->dims != m.config.dims)
      throw Error(fmt::format("initial_state: a {} x {} table, but the data has {} rows and dims is {}", given->rows,
                              given->dims, m.data.rows, m.config.dims));
    return *given;
  }
  if (!m.sharded()) return init_model(m.data.rows, m.config.dims, m.init, m.config.optimizer);
  ModelState shard = init_model_shard(m.data.rows, m.config.dims, m.init, m.config.optimizer, placement());
  log_shard_memory(shard, placement(), m.data.rows);
  return shard;
}

TrainingSession::~TrainingSession() = default;

void TrainingSession::resume(const Checkpoint& checkpoint, std::vector<double> val_loss) {
  const ModelState& s = checkpoint.state;
  if (model_.sharded()) {
    const int64_t expected = placement().local_rows(model_.data.rows);
    if (s.rows != expected || s.dims != model_.config.dims)
      throw Error(fmt::format("--resume: rank {}'s shard holds {} x {}, but its rows of {} are {} x {} (was the "
                              "data file changed?)",
                              comm_->rank(), s.rows, s.dims, model_.data.source, expected, model_.config.dims));
  } else if (s.rows != model_.data.rows || s.dims != model_.config.dims)
    throw Error(fmt::format("--resume: the checkpoint holds a {} x {} table, but {} has {} rows (was the data file "
                            "changed?)",
                            s.rows, s.dims, model_.data.source, model_.data.rows));
  model_.state = s;
  model_.history = checkpoint.history;
  model_.in_progress = checkpoint.in_progress;
  model_.val_loss = std::move(val_loss);
}

int64_t TrainingSession::steps_per_epoch() const {
  return cudaembed::steps_per_epoch(model_.data.pairs.size(), model_.config.batch);
}

ModelState TrainingSession::full_state() {
  ModelState full;
  backend_->fetch(full, true);
  return full;
}

TrainedModel TrainingSession::run(const Callbacks& callbacks) {
  // The model left with the first run: a second would train a moved-from table.
  if (spent_) throw Error("TrainingSession::run: this session has trained already; make a new one (or call fit)");
  spent_ = true;
  TrainedModel& m = model_;
  const TrainConfig& cfg = m.config;
  const int64_t done = epochs_done();
  spdlog::info("training {} epochs x {} steps (batch {}{}), {} x {}, head {}{}, {}, init {}{}", cfg.epochs,
               steps_per_epoch(), cfg.batch,
               cfg.negatives ? fmt::format(" + {} negatives each", cfg.negatives) : std::string(), m.data.rows,
               cfg.dims, head_name(cfg), cfg.normalize && cfg.head == Head::euclidean ? " normalised" : "",
               to_string(cfg.optimizer), to_string(m.init.scheme),
               done ? fmt::format(", resuming after epoch {}", done) : std::string());
  warn_if_too_few_steps(m.data.pairs.size(), cfg);
  // Ranks stop together: each one's stop flag (Ctrl-C reaches each rank on its own time) is shared
  // at every epoch's end, and the backend never stops inside an epoch.
  const bool distributed = comm_ && comm_->size() > 1;
  std::atomic<bool> agreed_stop{false};
  auto on_epoch = [&](const EpochRecord& r, const ModelState& s) {
    m.history.push_back(r);
    std::optional<double> val_loss;
    if (held_out_) m.val_loss.push_back(*(val_loss = held_out_->loss(s)));
    const bool go_on = !callbacks.on_epoch || callbacks.on_epoch(EpochView{r, s, val_loss, m.history});
    if (!distributed) return go_on;
    std::vector<double> stops{!go_on || (callbacks.stop && callbacks.stop->load()) ? 1.0 : 0.0}, scratch;
    sum_in_rank_order(*comm_, std::span<double>(stops), scratch);
    agreed_stop.store(stops[0] > 0);  // the trainer looks at it before the next epoch
    return true;
  };
  // The parameters leave the backend only for a callback that reads them, or for val_loss.
  auto weights_wanted = [&](int64_t epoch) {
    return held_out_ || (callbacks.on_epoch && (!callbacks.weights_wanted || callbacks.weights_wanted(epoch)));
  };
  const auto start = Clock::now();
  train(*backend_, m.data.pairs, m.state, cfg.epochs - done, on_epoch, done,
        distributed ? &agreed_stop : callbacks.stop, &m.in_progress, weights_wanted);
  m.train_s = seconds_since(start);
  return std::move(m);
}

TrainedModel fit(TrainingRequest request, const Callbacks& callbacks) {
  return TrainingSession(std::move(request)).run(callbacks);
}

}  // namespace cudaembed
