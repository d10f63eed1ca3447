// `cudaembed train`: colours -> pairs -> training -> outputs in the run directory.
#include "cli/train_command.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cudaembed/checkpoint.hpp"
#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/trainer.hpp"
#include "cudaembed/version.hpp"
#include "data/held_out.hpp"
#include "data/philox_host.hpp"
#include "outputs/run_progress.hpp"

namespace cudaembed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One line per row of `rows` (N, D), values tab-separated.
std::string vectors_tsv(const std::vector<float>& rows, int dims) {
  std::string out;
  for (std::size_t r = 0; r * dims < rows.size(); ++r) {
    for (int k = 0; k < dims; ++k) out += fmt::format("{}{:.9g}", k ? "\t" : "", rows[r * dims + k]);
    out += '\n';
  }
  return out;
}

// word2vec's text format: "N D", then one row per line, name first. Names may hold spaces
// ("gray50, grey50"), which the format uses as separators: they become underscores.
std::string word2vec_text(const std::vector<float>& rows, int dims, const std::vector<std::string>& names) {
  std::string out = fmt::format("{} {}\n", names.size(), dims);
  for (std::size_t r = 0; r < names.size(); ++r) {
    std::string name = names[r];
    std::replace_if(
        name.begin(), name.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }, '_');
    out += name;
    for (int k = 0; k < dims; ++k) out += fmt::format(" {:.9g}", rows[r * dims + k]);
    out += '\n';
  }
  return out;
}

// TensorBoard projector metadata: a header row, then each row's name and, for the colours, its hex
// colour (a run on a pairs file has names only). Tabs and newlines in names would break the
// columns, so they become spaces.
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

// With --validation, a val_loss column: the loss on the held-out pairs after each epoch.
std::string metrics_csv(const std::vector<EpochRecord>& history, const std::vector<double>& val_loss) {
  std::string out =
      val_loss.empty() ? "epoch,loss,mse,accuracy,seconds\n" : "epoch,loss,mse,accuracy,seconds,val_loss\n";
  for (std::size_t i = 0; i < history.size(); ++i) {
    const EpochRecord& r = history[i];
    out += fmt::format("{},{:.9g},{:.9g},{:.9g},{:.6f}", r.epoch, r.metrics.loss(), r.metrics.mse(),
                       r.metrics.accuracy(), r.seconds);
    out += val_loss.empty() ? "\n" : fmt::format(",{:.9g}\n", val_loss[i]);
  }
  return out;
}

// A float as the shortest decimal that reads back as it: 0.9, not 0.8999999761581421.
double json_number(float x) { return std::stod(fmt::format("{}", x)); }

// A time left, as precise as it is worth: "0.4 s", "12 s", "3 min 20 s", "2 h 5 min".
std::string duration_text(double seconds) {
  if (seconds < 10) return fmt::format("{:.1f} s", seconds);
  if (seconds < 60) return fmt::format("{:.0f} s", seconds);
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{} min {} s", s / 60, s % 60);
  return fmt::format("{} h {} min", s / 3600, s % 3600 / 60);
}

// A directory that holds files, none of them a run's: --out most likely names the wrong place.
void refuse_foreign_dir(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return;
  std::vector<std::string> held;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    std::string name = entry.path().filename().string();
    if (is_run_file_name(name)) return;
    held.push_back(std::move(name));
  }
  if (held.empty()) return;
  std::sort(held.begin(), held.end());
  const std::size_t shown = std::min<std::size_t>(held.size(), 3);
  std::string list =
      fmt::format("{}", fmt::join(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(shown), ", "));
  if (held.size() > shown) list += fmt::format(" and {} more", held.size() - shown);
  throw Error(fmt::format(
      "--out {}: not empty (it holds {}) and not a cudaembed run; choose another --out or remove it", path, list));
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

int64_t log_interval(const TrainOptions& o) {
  if (o.log_every > 0) return o.log_every;
  return std::max<int64_t>(1, o.train.epochs / 25);  // about 25 progress lines
}

// The options as the checkpoint stores them: --resume needs nothing else.
// run.json's "config" as far as the options fix it (device and kernel as asked). run_training adds
// what the data decides; --resume compares a checkpoint's options with it.
nlohmann::json run_config_json(const TrainOptions& o) {
  const TrainConfig& t = o.train;
  return {{"data", o.pairs_file.empty() ? o.data : o.pairs_file},
          {"dims", t.dims},
          {"normalize", t.normalize},
          {"head", head_name(t)},
          {"optimizer", to_string(t.optimizer)},
          {"negatives", t.negatives},
          {"burn_in", t.burn_in},
          {"epochs", t.epochs},
          {"batch", t.batch},
          {"lr", json_number(t.adam.lr)},
          {"beta1", json_number(t.adam.beta1)},
          {"beta2", json_number(t.adam.beta2)},
          {"epsilon", json_number(t.adam.epsilon)},
          {"adam_v", to_string(t.second_moment)},
          {"init", to_string(o.init.scheme)},
          {"embedding_init_range", json_number(o.init.embedding_range)},
          {"device", o.device},
          {"kernel", t.kernel}};
}

nlohmann::json options_json(const TrainOptions& o) {
  const TrainConfig& t = o.train;
  return {{"data", o.data},
          {"pairs_file", o.pairs_file},
          {"id_kind", to_string(o.pairs_file_options.ids)},
          {"rows", o.pairs_file_options.rows},
          {"snapshots", o.snapshots},
          {"head", head_name(t)},
          {"optimizer", to_string(t.optimizer)},
          {"negatives", t.negatives},
          {"burn_in", t.burn_in},
          {"pairs", o.pairs.count},
          {"label_threshold", o.pairs.threshold},
          {"init", to_string(o.init.scheme)},
          {"init_range", o.init.embedding_range},
          {"dims", t.dims},
          {"normalize", t.normalize},
          {"epochs", t.epochs},
          {"batch", t.batch},
          {"lr", t.adam.lr},
          {"beta1", t.adam.beta1},
          {"beta2", t.adam.beta2},
          {"epsilon", t.adam.epsilon},
          {"adam_v", to_string(t.second_moment)},
          {"seed", t.seed},
          {"device", o.device},
          {"kernel", t.kernel},
          {"log_every", o.log_every},
          {"checkpoint_every", o.checkpoint_every},
          {"save_pairs", o.save_pairs},
          {"no_plot", o.no_plot}};
}

TrainOptions options_from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.data = j.at("data").get<std::string>();
  // Absent from checkpoints written before these options existed: their defaults.
  o.pairs_file = j.value("pairs_file", std::string());
  o.pairs_file_options.ids = parse_id_kind(j.value("id_kind", std::string("auto")));
  o.pairs_file_options.rows = j.value("rows", uint64_t{0});
  o.snapshots = j.value("snapshots", std::string("all"));
  o.pairs.count = j.at("pairs").get<uint64_t>();
  o.pairs.threshold = j.at("label_threshold").get<float>();
  o.init.scheme = parse_init_scheme(j.at("init").get<std::string>());
  o.init.embedding_range = j.at("init_range").get<float>();
  TrainConfig& t = o.train;
  t.dims = j.at("dims").get<int>();
  parse_head(j.value("head", std::string("euclidean")), t);
  t.normalize = j.at("normalize").get<bool>();
  t.optimizer = parse_optimizer(j.value("optimizer", std::string("adam")));
  t.negatives = j.value("negatives", 0);
  t.burn_in = j.value("burn_in", int64_t{0});
  t.epochs = j.at("epochs").get<int64_t>();
  t.batch = j.at("batch").get<int64_t>();
  t.adam = {j.at("lr").get<float>(), j.at("beta1").get<float>(), j.at("beta2").get<float>(),
            j.at("epsilon").get<float>()};
  t.second_moment = parse_second_moment(j.at("adam_v").get<std::string>());
  t.seed = j.at("seed").get<uint64_t>();
  o.device = j.at("device").get<std::string>();
  t.kernel = j.at("kernel").get<std::string>();
  o.log_every = j.at("log_every").get<int64_t>();
  o.checkpoint_every = j.at("checkpoint_every").get<int64_t>();
  o.save_pairs = j.at("save_pairs").get<bool>();
  o.no_plot = j.at("no_plot").get<bool>();
  o.validation = j.value("validation", 0.0);
  o.eval_candidates = j.value("eval_candidates", int64_t{-1});
  return o;
}

// What a run trains on: the colours with the pairs drawn over them, or the user's own pairs.
struct TrainingData {
  PairSet pairs;
  int64_t rows = 0;
  std::vector<std::string> names;  // (N,): colour names, the file's names, or the integer ids
  std::vector<float> rgb;          // (N, 3) colours only: what the embedding is evaluated against
  std::string metadata;            // metadata.tsv
  std::vector<std::string> vocab;  // names mode of a pairs file: vocab.tsv
  double parse_s = 0, pairs_s = 0;
  nlohmann::json summary;  // run.json's "data"
};

TrainingData load_colours(const TrainOptions& o, const ColourTable& colours, double parse_s, Backend& backend,
                          const TrainConfig& cfg) {
  TrainingData d;
  d.parse_s = parse_s;
  const auto pairs_start = Clock::now();
  PairSpec spec = o.pairs;
  spec.seed = cfg.seed;
  d.pairs = backend.generate_pairs(colours.rgb, spec);
  d.pairs_s = seconds_since(pairs_start);
  spdlog::info("{} pairs (seed {}), {:.1f}% positive", d.pairs.size(), cfg.seed, 100.0 * d.pairs.positive_fraction());
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

TrainingData load_pairs_file(const TrainOptions& o) {
  const auto start = Clock::now();
  PairsData file = read_pairs_file(o.pairs_file, o.pairs_file_options);
  TrainingData d;
  d.parse_s = seconds_since(start);
  d.rows = static_cast<int64_t>(file.rows);
  d.pairs = std::move(file.pairs);
  spdlog::info("{}: {} pairs over {} rows ({} ids{}{}), {:.1f}% positive, read in {:.2f} s", o.pairs_file,
               d.pairs.size(), d.rows, to_string(file.ids), file.labelled ? "" : ", positives only",
               d.pairs.weight.empty() ? "" : ", weighted", 100.0 * d.pairs.positive_fraction(), d.parse_s);
  if (!file.labelled && o.train.negatives == 0)
    spdlog::warn("{} has no label column, so every pair is a positive: add --negatives K to draw K negatives each",
                 o.pairs_file);
  if (file.ids == IdKind::names) {
    d.names = file.names;
    d.vocab = std::move(file.names);
  } else {
    d.names.reserve(file.rows);
    for (uint64_t i = 0; i < file.rows; ++i) d.names.push_back(std::to_string(i));
  }
  d.metadata = metadata_tsv(d.names, nullptr);
  d.summary = {{"pairs_file", o.pairs_file},
               {"rows", d.rows},
               {"ids", to_string(file.ids)},
               {"pairs", d.pairs.size()},
               {"labelled", file.labelled},
               {"weighted", !d.pairs.weight.empty()},
               {"positive_fraction", d.pairs.positive_fraction()}};
  return d;
}

// Text outputs and the plot are for tables a person can look at; past these sizes they are skipped
// (embedding.npy holds the table, and `cudaembed plot` still draws it on request).
constexpr uint64_t kMaxTextValues = 10'000'000;
constexpr int64_t kMaxPlotRows = 100'000;
constexpr uint64_t kMaxAutoSnapshotBytes = uint64_t{1} << 30;

// Bytes of the whole training state, as checkpoint.bin holds it.
uint64_t state_bytes(const ModelState& s) {
  return (s.table.size() + s.table_m.size() + s.table_v.size() + s.row_acc.size()) * sizeof(float) +
         s.row_step.size() * sizeof(int64_t);
}

// --resume --epochs N: nothing in a step depends on the planned length (each epoch's shuffle is a
// function of the seed and the epoch; no schedule looks at the end), so a deterministic backend
// reaches the same table as a run planned for N epochs from the start.
void say_whether_bit_identical(int64_t epochs, int64_t planned, const BackendInfo& info) {
  const std::string what = fmt::format("training to {} epochs, not the {} planned", epochs, planned);
  if (info.name == "cpu" || info.kernel == "deterministic" || info.kernel == "sorted")
    spdlog::info("{}: the table will be bit-identical to a run planned for {} epochs from the start (only the "
                 "seconds in metrics.csv and run.json differ)",
                 what, epochs);
  else
    spdlog::warn("{}: kernel {} adds with float atomics, so its tables are not bit-identical to any other run's, a "
                 "run planned for {} epochs included (--kernel deterministic is)",
                 what, info.kernel, epochs);
}

// One run, fresh or continued from `resume`.
// Everything one `cudaembed train` carries from stage to stage, in the order the stages fill it.
struct TrainRun {
  const TrainOptions& o;
  const Checkpoint* resume;  // null for a new run
  Clock::time_point start = Clock::now();
  TrainConfig cfg;
  // load_input
  std::optional<TrainingData> data;
  std::unique_ptr<Backend> backend;
  BackendInfo info;
  std::optional<HeldOutPairs> held_out;  // --validation: data->pairs keeps the pairs that train
  // start_state
  ModelState state;
  std::vector<EpochRecord> history;
  nlohmann::json config;  // what the checkpoint records of the run
  int64_t planned = 0;    // the epochs the checkpoint was written for (--resume --epochs changes them)
  int64_t done = 0;       // whole epochs trained before this call
  // open_snapshots, train_epochs
  std::optional<NpyStreamWriter> snapshots;
  bool checkpointed = false;  // a checkpoint exists that the partial snapshots belong to
  EpochMetrics in_progress;
  double train_s = 0;

  TrainRun(const TrainOptions& options, const Checkpoint* from) : o(options), resume(from), cfg(options.train) {}
  std::string path(const char* name) const { return (std::filesystem::path(o.out) / name).string(); }
  uint64_t table_size() const { return static_cast<uint64_t>(state.rows) * static_cast<uint64_t>(state.dims); }
  int64_t steps() const { return steps_per_epoch(data->pairs.size(), cfg.batch); }
};

// The input (colour CSV or pairs file), the backend, and the held-out split; nothing is written.
void load_input(TrainRun& run) {
  const TrainOptions& o = run.o;
  const bool from_file = !o.pairs_file.empty();
  if (o.validation > 0 && !from_file)
    throw Error(
        "--validation: holds out pairs of a --pairs-file; the colour run draws new random pairs every run "
        "(`cudaembed evaluate RUN` measures how well it orders the colours like RGB)");
  std::optional<ColourTable> colours;
  if (!from_file) {
    colours = read_colours_csv(o.data);
    spdlog::info("{}: {} colours{}", o.data, colours->size(),
                 colours->nameless_dropped
                     ? fmt::format(" ({} rows without a Color Name dropped)", colours->nameless_dropped)
                     : std::string());
  }
  const double parse_s = seconds_since(run.start);
  if (from_file) {
    run.data = load_pairs_file(o);
    // Pair weights need the sorted path; --kernel auto picks it.
    if (!run.data->pairs.weight.empty() && run.cfg.kernel == "auto") run.cfg.kernel = "sorted";
  }
  run.backend = make_backend(parse_device_choice(o.device), run.cfg);
  run.info = run.backend->info();
  spdlog::info("backend {} on {} (kernel {})", run.info.name, run.info.device, run.info.kernel);
  // The CPU backend has its dense path and the sorted one (and is always deterministic): CUDA's
  // other variants mean nothing to it.
  if (run.info.name == "cpu" && o.train.kernel != "auto" && o.train.kernel != "sorted" &&
      o.train.kernel != "deterministic")
    spdlog::warn("--kernel {}: ignored, the CPU backend has no kernel variants (it runs its {} path)", o.train.kernel,
                 run.info.kernel);
  if (!from_file) run.data = load_colours(o, *colours, parse_s, *run.backend, run.cfg);
  if (o.validation > 0) run.held_out.emplace(run.data->pairs, o.validation, run.cfg, run.data->rows);
}

// Only once the input is read and the backend is up does the run directory get made: a run that
// fails on bad input leaves nothing behind.
void prepare_directory(const TrainRun& run) {
  if (run.resume) return;
  prepare_run_dir(run.o.out, run.o.force);
  if (run.o.force) {
    // The replaced run's files would otherwise sit beside the new ones and pass for them (its
    // checkpoint would even let --resume bring it back).
    if (const std::size_t removed = remove_run_outputs(run.o.out))
      spdlog::info("--force: removed {} files of the previous run in {}", removed, run.o.out);
  }
}

// The starting state: drawn for a new run, the checkpoint's for --resume (checked against the data).
void start_state(TrainRun& run) {
  const TrainOptions& o = run.o;
  const TrainConfig& cfg = run.cfg;
  const TrainingData& data = *run.data;
  InitSpec init = o.init;
  init.seed = cfg.seed;
  init.head = cfg.head;
  run.config = {{"options", options_json(o)}};
  run.planned = cfg.epochs;
  // Only runs with --validation carry its options, so that every other checkpoint stays as it was.
  if (o.validation > 0)
    run.config["options"].update({{"validation", o.validation}, {"eval_candidates", o.eval_candidates}});
  if (run.resume) {
    run.state = run.resume->state;
    run.history = run.resume->history;
    run.in_progress = run.resume->in_progress;
    run.checkpointed = true;
    run.config = nlohmann::json::parse(run.resume->config_json);
    run.planned = run.config.at("options").at("epochs").get<int64_t>();
    run.config["options"]["epochs"] = cfg.epochs;
    if (run.state.rows != data.rows || run.state.dims != cfg.dims)
      throw Error(
          fmt::format("--resume: the checkpoint holds a {} x {} table, but {} has {} rows (was the data file "
                      "changed?)",
                      run.state.rows, run.state.dims, o.pairs_file.empty() ? o.data : o.pairs_file, data.rows));
    if (run.config.contains("pair_count") && run.config.at("pair_count").get<uint64_t>() != data.pairs.size())
      throw Error(fmt::format("--resume: the run trained on {} pairs, but {} now has {} (was the file changed?)",
                              run.config.at("pair_count").get<uint64_t>(), o.pairs_file, data.pairs.size()));
  } else {
    run.state = init_model(data.rows, cfg.dims, init, cfg.optimizer);
    run.config["initial_dense"] = {run.state.dense[0], run.state.dense[1]};
    run.config["pair_count"] = data.pairs.size();
  }
  run.done = static_cast<int64_t>(run.history.size());
  spdlog::info("training {} epochs x {} steps (batch {}{}), {} x {}, head {}{}, {}, init {}{}", cfg.epochs,
               run.steps(), cfg.batch,
               cfg.negatives ? fmt::format(" + {} negatives each", cfg.negatives) : std::string(), data.rows,
               cfg.dims, head_name(cfg), cfg.normalize && cfg.head == Head::euclidean ? " normalised" : "",
               to_string(cfg.optimizer), to_string(init.scheme),
               run.done ? fmt::format(", resuming after epoch {}", run.done) : std::string());
  warn_if_too_few_steps(data.pairs.size(), cfg);
  if (cfg.epochs != run.planned) say_whether_bit_identical(cfg.epochs, run.planned, run.info);
}

// Every table the outputs hold is the rows as the model compares them: L2-normalised under
// --normalize, as plot, animate and neighbours use them. checkpoint.bin keeps the raw table.
std::vector<float> output_rows(const std::vector<float>& table, const TrainConfig& cfg) {
  return cfg.normalize ? l2_normalized_rows(table, cfg.dims) : table;
}

// snapshots.npy, streamed epoch by epoch when it is kept; a resumed run appends to the snapshots
// its first epochs wrote, if they kept any.
void open_snapshots(TrainRun& run) {
  const TrainOptions& o = run.o;
  const int64_t epochs = run.cfg.epochs;
  const std::vector<uint64_t> shape{static_cast<uint64_t>(epochs) + 1, static_cast<uint64_t>(run.state.rows),
                                    static_cast<uint64_t>(run.state.dims)};
  auto keeps_snapshots = [&](int64_t e) {
    return o.snapshots == "all" ||
           (o.snapshots == "auto" && static_cast<uint64_t>(e + 1) * run.table_size() * sizeof(float) <=
                                         kMaxAutoSnapshotBytes);
  };
  const bool keep = keeps_snapshots(epochs) && keeps_snapshots(run.planned);
  if (run.resume && keeps_snapshots(run.planned) && !keep) {
    std::error_code ec;
    std::filesystem::remove(run.path("snapshots.npy"), ec);
    std::filesystem::remove(run.path("snapshots.npy.tmp"), ec);
    spdlog::info("not keeping snapshots.npy: {} epochs of tables would pass 1 GiB (--snapshots all keeps them); "
                 "removed the {} epochs' file",
                 epochs, run.planned);
  }
  if (!keep && o.snapshots == "auto" && !run.resume)
    spdlog::info("not writing snapshots.npy: {} tables of {} x {} would take {:.1f} GiB (--snapshots all keeps them)",
                 shape[0], shape[1], shape[2],
                 static_cast<double>(shape[0] * run.table_size() * sizeof(float)) / (1u << 30));
  if (keep && run.resume) {
    run.snapshots.emplace(run.path("snapshots.npy"), shape, static_cast<uint64_t>(run.done + 1) * run.table_size());
  } else if (keep) {
    run.snapshots.emplace(run.path("snapshots.npy"), shape);
    run.snapshots->append(output_rows(run.state.table, run.cfg));
  }
}

void write_state(TrainRun& run, int64_t epoch, const ModelState& full) {
  if (run.snapshots) run.snapshots->sync();
  write_checkpoint(run.path("checkpoint.bin"), {run.config.dump(), epoch, full, run.history, run.in_progress});
  run.checkpointed = true;
}

// The progress line: every log_interval epochs, the first and the last, with an ETA.
class ProgressLog {
 public:
  explicit ProgressLog(const TrainRun& run) : run_(run), every_(log_interval(run.o)) {}
  void epoch(const EpochRecord& r) {
    const int64_t epochs = run_.cfg.epochs;
    interval_s_ += r.seconds;
    ++interval_epochs_;
    if (r.epoch % every_ != 0 && r.epoch != epochs && r.epoch != run_.done + 1) return;
    const double steps = static_cast<double>(interval_epochs_ * run_.steps());
    const double samples = static_cast<double>(interval_epochs_) * r.metrics.samples;
    const double epoch_s = seconds_since(start_) / static_cast<double>(r.epoch - run_.done);
    const std::string eta =
        r.epoch < epochs ? "  eta " + duration_text(epoch_s * static_cast<double>(epochs - r.epoch)) : std::string();
    spdlog::info("epoch {:>{}}/{}  loss {:.4f}{}  mse {:.4f}  accuracy {:.4f}  {:.0f} steps/s  {:.3g} samples/s{}",
                 r.epoch, fmt::formatted_size("{}", epochs), epochs, r.metrics.loss(),
                 run_.held_out ? fmt::format("  val_loss {:.4f}", run_.config["val_loss"].back().get<double>())
                               : std::string(),
                 r.metrics.mse(), r.metrics.accuracy(), steps / std::max(interval_s_, 1e-9),
                 samples / std::max(interval_s_, 1e-9), eta);
    interval_s_ = 0;
    interval_epochs_ = 0;
  }

 private:
  const TrainRun& run_;
  const int64_t every_;
  const Clock::time_point start_ = Clock::now();
  double interval_s_ = 0;
  int64_t interval_epochs_ = 0;
};

// Trains the epochs left. Returns false when Ctrl-C stopped it (a checkpoint is then written).
bool train_epochs(TrainRun& run) {
  const TrainOptions& o = run.o;
  ProgressLog progress(run);
  const auto train_start = Clock::now();
  auto on_epoch = [&](const EpochRecord& r, const ModelState& s) {
    if (run.snapshots) run.snapshots->append(output_rows(s.table, run.cfg));
    run.history.push_back(r);
    if (run.held_out) run.config["val_loss"].push_back(run.held_out->loss(s));  // in the checkpoint: --resume keeps it
    progress.epoch(r);
    if (o.checkpoint_every > 0 && r.epoch % o.checkpoint_every == 0 && r.epoch < run.cfg.epochs) {
      ModelState full;
      run.backend->fetch(full, true);
      write_state(run, r.epoch, full);
    }
  };
  // The callback reads the weights only for snapshots and val_loss: the progress line needs the
  // metrics, a checkpoint fetches its own full state. Past 1 GiB, with snapshots off, no epoch's
  // table leaves the device until the end.
  auto wants_weights = [&](int64_t) { return run.snapshots.has_value() || run.held_out.has_value(); };
  try {
    train(*run.backend, run.data->pairs, run.state, run.cfg.epochs - run.done, on_epoch, run.done, o.stop,
          &run.in_progress, wants_weights);
  } catch (...) {
    // A failed run (divergence, a device error) keeps its last good checkpoint resumable.
    if (run.checkpointed && run.snapshots) run.snapshots->keep_partial();
    throw;
  }
  run.train_s = seconds_since(train_start);
  const int64_t spe = run.steps();
  if (static_cast<int64_t>(run.history.size()) < run.cfg.epochs) {  // stopped by SIGINT
    write_state(run, static_cast<int64_t>(run.history.size()), run.state);
    if (run.snapshots) run.snapshots->keep_partial();
    spdlog::warn("interrupted at step {} (epoch {} of {}, step {} of {}): checkpoint written; continue with: {}",
                 run.state.step, run.history.size() + (run.in_progress.samples > 0 ? 1 : 0), run.cfg.epochs,
                 run.state.step % spe, spe, resume_command(o.program, o.out));
    return false;
  }
  // The final state is a checkpoint too: a run killed while writing its outputs resumes by writing
  // them again, and `--resume RUN --epochs N` trains it further. Past 1 GiB only when asked for.
  if (o.checkpoint_every > 0 || run.resume || state_bytes(run.state) <= kMaxAutoSnapshotBytes)
    write_state(run, run.cfg.epochs, run.state);
  if (run.snapshots) run.snapshots->finish();
  return true;
}

// The table and the files other tools read; returns the names written, for the last log line.
std::vector<std::string> write_tables(const TrainRun& run, const std::vector<float>& rows) {
  const TrainingData& data = *run.data;
  const PairSet& pairs = data.pairs;
  std::vector<std::string> written{"embedding.npy", "metadata.tsv", "metrics.csv", "run.json"};
  write_npy(run.path("embedding.npy"), rows,
            {static_cast<uint64_t>(run.state.rows), static_cast<uint64_t>(run.state.dims)});
  if (run.o.save_pairs) {
    std::vector<uint32_t> ids(2 * pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      ids[2 * i] = pairs.a[i];
      ids[2 * i + 1] = pairs.b[i];
    }
    write_npy(run.path("pair_ids.npy"), ids, {pairs.size(), 2});
    write_npy(run.path("pair_labels.npy"), pairs.label, {pairs.size()});
    written.insert(written.end(), {"pair_ids.npy", "pair_labels.npy"});
  }
  if (run.snapshots) written.emplace_back("snapshots.npy");
  if (run.checkpointed) written.emplace_back("checkpoint.bin");
  write_text_file(run.path("metadata.tsv"), data.metadata);
  write_text_file(run.path("metrics.csv"),
                  metrics_csv(run.history, run.held_out ? run.config.at("val_loss").get<std::vector<double>>()
                                                        : std::vector<double>{}));
  if (!data.vocab.empty()) {
    write_vocab_tsv(run.path("vocab.tsv"), data.vocab);
    written.emplace_back("vocab.tsv");
  }
  if (run.table_size() <= kMaxTextValues) {
    write_text_file(run.path("vectors.tsv"), vectors_tsv(rows, run.cfg.dims));
    write_text_file(run.path("word2vec.txt"), word2vec_text(rows, run.cfg.dims, data.names));
    written.insert(written.end(), {"vectors.tsv", "word2vec.txt"});
  } else {
    spdlog::info("not writing vectors.tsv and word2vec.txt: {} values is more text than anyone reads",
                 run.table_size());
  }
  return written;
}

// run.json's "final": the last epoch's metrics, the Dense layer and, for colours, the quality
// against RGB; logs the run's last line of results.
nlohmann::json final_metrics(const TrainRun& run, const std::vector<float>& rows) {
  const EpochMetrics& last = run.history.back().metrics;
  nlohmann::json final_json = {{"loss", last.loss()},
                               {"mse", last.mse()},
                               {"accuracy", last.accuracy()},
                               {"dense_weight", json_number(run.state.dense[0])},
                               {"dense_bias", json_number(run.state.dense[1])}};
  std::string quality_text;
  if (!run.data->rgb.empty()) {
    const EmbeddingQuality quality =
        evaluate_embedding(rows, run.cfg.dims, run.data->rgb, 3, 10, run.info.name == "cuda");
    final_json["spearman_rgb"] = quality.spearman;
    final_json["knn10_overlap_rgb"] = quality.knn_overlap;
    quality_text =
        fmt::format("; against RGB: Spearman {:.3f}, 10-NN overlap {:.3f}", quality.spearman, quality.knn_overlap);
  }
  spdlog::info("done in {:.2f} s (training {:.2f} s): loss {:.4f}, accuracy {:.4f}{}", seconds_since(run.start),
               run.train_s, last.loss(), last.accuracy(), quality_text);
  if (run.held_out) final_json["val_loss"] = run.config.at("val_loss").back();
  return final_json;
}

nlohmann::json run_json(const TrainRun& run, const nlohmann::json& final_json) {
  const TrainingData& data = *run.data;
  nlohmann::json run_config = run_config_json(run.o);
  if (run.held_out) run_config["validation"] = run.o.validation;
  run_config["pairs"] = data.pairs.size();
  run_config["steps_per_epoch"] = run.steps();
  run_config["kernel"] = run.cfg.kernel;  // sorted where the pairs carry weights
  const nlohmann::json& dense = run.config.at("initial_dense");
  return {
      {"cudaembed_version", kVersion},
      {"command", "train"},
      {"config", run_config},
      {"initial_dense", {json_number(dense.at(0).get<float>()), json_number(dense.at(1).get<float>())}},
      {"rows_l2_normalized", run.cfg.normalize},  // embedding.npy, snapshots.npy, vectors.tsv, word2vec.txt
      {"seed", run.cfg.seed},
      {"pair_rng", kPairRng},  // the same bits on every backend and build
      {"backend", {{"name", run.info.name}, {"device", run.info.device}, {"kernel", run.info.kernel}}},
      {"versions", {{"cuda", cuda_versions()}, {"compiler", kCompiler}, {"build_type", kBuildType}}},
      {"data", data.summary},
      {"timings_s",
       {{"parse", data.parse_s}, {"pairs", data.pairs_s}, {"train", run.train_s}, {"total", seconds_since(run.start)}}},
      {"final", final_json},
  };
}

// Everything a finished run writes, run.json and the plot last.
void write_outputs(const TrainRun& run) {
  const std::vector<float> rows = output_rows(run.state.table, run.cfg);  // (N, D), as the snapshots
  std::vector<std::string> written = write_tables(run, rows);
  const nlohmann::json final_json = final_metrics(run, rows);
  std::optional<LinkPrediction> lp;
  if (run.held_out) {
    lp = run.held_out->rank(rows, run.state.dense[0], run.o.eval_candidates, run.info.name == "cuda");
    spdlog::info("held-out link prediction: {}", summary(*lp));
    run.held_out->write_csv(run.path("validation_pairs.csv"), run.data->names);
    written.emplace_back("validation_pairs.csv");
  }
  nlohmann::json run_doc = run_json(run, final_json);  // after the ranking: its timings hold it
  if (lp) {
    run_doc["data"]["validation"] = run.held_out->summary();
    run_doc["link_prediction"] = to_json(*lp);
  }
  write_text_file(run.path("run.json"), run_doc.dump(2) + "\n");
  if (!run.o.no_plot && run.state.rows <= kMaxPlotRows) {
    write_plot(run.o.out);  // last: it reads the run directory back
    written.insert(written.end(), {"plot.png", "plot.svg"});
  } else if (!run.o.no_plot) {
    spdlog::info("not drawing plot.png: {} rows are too many points to see (cudaembed plot {} draws it anyway)",
                 run.state.rows, run.o.out);
  }
  spdlog::info("wrote {}/{{{}}}", run.o.out, fmt::join(written, ", "));
}

int run_training(const TrainOptions& o, const Checkpoint* resume) {
  TrainRun run(o, resume);
  if (!resume && !o.force) {
    refuse_resumable_run(o.out, o.program);
    refuse_foreign_dir(o.out);
  }
  if (!resume) check_run_dir(o.out, o.force);
  load_input(run);
  prepare_directory(run);
  start_state(run);
  open_snapshots(run);
  if (!train_epochs(run)) return kInterruptedExit;
  write_outputs(run);
  return 0;
}

// Refuses a checkpoint that is not the run run.json describes (one copied in, or left behind by
// another run in the same directory): resuming it would overwrite this run's outputs with another
// run's. A run interrupted before its end has no run.json yet, and nothing to compare.
void check_checkpoint_is_the_run(const std::string& run_dir, const TrainOptions& o, int64_t epochs_done) {
  const std::string json_path = (std::filesystem::path(run_dir) / "run.json").string();
  if (!std::filesystem::exists(json_path)) return;
  nlohmann::json recorded;
  try {
    std::ifstream in(json_path, std::ios::binary);
    const nlohmann::json run = nlohmann::json::parse(in);
    recorded = run.at("config");
    recorded["seed"] = run.at("seed");
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("--resume {}: cannot check the checkpoint against {}: {}", run_dir, json_path, e.what()));
  }
  nlohmann::json expected = run_config_json(o);
  expected.erase("device");  // --resume may change these two
  expected.erase("kernel");
  expected.erase("epochs");  // --resume --epochs changes the plan: the checkpoint must have trained as far as run.json
  expected["seed"] = o.train.seed;
  std::vector<std::string> mismatches;
  if (recorded.contains("epochs") && recorded.at("epochs").get<int64_t>() > epochs_done)
    mismatches.push_back(fmt::format("epochs {} in checkpoint.bin, {} in run.json", epochs_done,
                                     recorded.at("epochs").get<int64_t>()));
  for (const auto& [key, value] : expected.items())
    if (recorded.contains(key) && recorded.at(key) != value)  // older run.json files lack some keys
      mismatches.push_back(
          fmt::format("{} {} in checkpoint.bin, {} in run.json", key, value.dump(), recorded.at(key).dump()));
  if (!mismatches.empty())
    throw Error(
        fmt::format("--resume {}: checkpoint.bin is not from the run that run.json describes ({}); "
                    "start a new run with --force, or resume the directory the checkpoint came from",
                    run_dir, fmt::join(mismatches, "; ")));
}

}  // namespace

int run_train(const TrainOptions& options) { return run_training(options, nullptr); }

int resume_train(const ResumeOptions& r) {
  const std::string path = (std::filesystem::path(r.run_dir) / "checkpoint.bin").string();
  const Checkpoint checkpoint = read_checkpoint(path);
  TrainOptions o;
  try {
    o = options_from_json(nlohmann::json::parse(checkpoint.config_json).at("options"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: the checkpoint's options are unreadable: {}", path, e.what()));
  }
  check_checkpoint_is_the_run(r.run_dir, o, checkpoint.epoch);
  if (r.epochs) {
    // The epoch the checkpoint is in, when it stopped inside one, must be finished.
    const int64_t least = checkpoint.epoch + (checkpoint.in_progress.samples > 0 ? 1 : 0);
    if (*r.epochs < least)
      throw Error(fmt::format("--epochs {}: {} has trained {} epochs already{}; give --epochs {} or more{}", *r.epochs,
                              r.run_dir, checkpoint.epoch, least > checkpoint.epoch ? " and part of the next" : "",
                              least,
                              o.snapshots != "none" ? " (snapshots.npy holds the table after every epoch)" : ""));
    o.train.epochs = *r.epochs;
  }
  if (checkpoint.epoch >= o.train.epochs)
    spdlog::info("{}: training finished all {} epochs; writing the outputs again", r.run_dir, o.train.epochs);
  o.out = r.run_dir;
  if (r.device) o.device = *r.device;
  if (r.kernel) o.train.kernel = *r.kernel;
  if (r.log_every) o.log_every = *r.log_every;
  if (r.no_plot) o.no_plot = true;
  o.stop = r.stop;
  o.program = r.program;
  return run_training(o, &checkpoint);
}

}  // namespace cudaembed
