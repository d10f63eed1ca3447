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

#include "cudaembed/api.hpp"
#include "cudaembed/checkpoint.hpp"
#include "cudaembed/distributed.hpp"
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

int64_t log_interval(const TrainOptions& o) {
  if (o.log_every > 0) return o.log_every;
  return std::max<int64_t>(1, o.train.epochs / 25);  // about 25 progress lines
}

// The options as the checkpoint stores them: --resume needs nothing else.
// run.json's "config" as far as the options fix it (device and kernel as asked). run_training adds
// what the data decides; --resume compares a checkpoint's options with it.
nlohmann::json run_config_json(const TrainOptions& o) {
  return run_config_json(o.pairs_file.empty() ? o.data : o.pairs_file, o.train, o.init, o.device);
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
          {"no_plot", o.no_plot},
          {"parallel", to_string(o.parallel)}};
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
  o.parallel = parse_parallel(j.value("parallel", std::string("data")));
  return o;
}

// The request a `train` command line makes: what the library trains.
TrainingRequest training_request(const TrainOptions& o, std::shared_ptr<Communicator> comm) {
  TrainingRequest request;
  if (comm->size() > 1) request.communicator = std::move(comm);
  if (o.pairs_file.empty())
    request.data = ColoursSource{o.data, o.pairs};
  else
    request.data = PairsFileSource{o.pairs_file, o.pairs_file_options};
  request.train = o.train;
  request.init = o.init;
  request.device = o.device;
  request.validation = o.validation;
  request.eval_candidates = o.eval_candidates;
  request.parallel = o.parallel;
  return request;
}

constexpr uint64_t kMaxAutoSnapshotBytes = uint64_t{1} << 30;

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

// What one `cudaembed train` keeps beside the training session: the run directory's state.
struct TrainRun {
  const TrainOptions& o;
  const Checkpoint* resume;  // null for a new run
  TrainingSession& session;
  Clock::time_point start;
  nlohmann::json config;  // what the checkpoint records of the run (val_loss included)
  int64_t planned = 0;    // the epochs the checkpoint was written for (--resume --epochs changes them)
  int64_t done = 0;       // whole epochs trained before this call
  std::optional<NpyStreamWriter> snapshots;
  bool checkpointed = false;  // a checkpoint exists that the partial snapshots belong to
  Communicator* comm = nullptr;  // the ranks of a data-parallel run (one process: size 1)
  bool root = true;              // rank 0 (or the one process): the only one that writes the run directory
  int rank = 0;                  // data parallel: each rank writes its own checkpoint shard
  int64_t committed_step = -1;   // the step the manifest commits (K > 1); -1: none yet

  TrainRun(const TrainOptions& options, const Checkpoint* from, TrainingSession& s, Clock::time_point begun)
      : o(options), resume(from), session(s), start(begun) {}
  std::string path(const char* name) const { return (std::filesystem::path(o.out) / name).string(); }
  const TrainConfig& cfg() const { return session.config(); }
  uint64_t table_size() const { return static_cast<uint64_t>(session.state().table.size()); }
};

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

// What the checkpoint records; for --resume, the checkpoint's state in the session (checked
// against the data).
void start_state(TrainRun& run) {
  const TrainOptions& o = run.o;
  run.config = {{"options", options_json(o)}};
  run.planned = run.cfg().epochs;
  // Only runs with --validation carry its options, so that every other checkpoint stays as it was.
  if (o.validation > 0)
    run.config["options"].update({{"validation", o.validation}, {"eval_candidates", o.eval_candidates}});
  const uint64_t pairs = run.session.data().pairs.size();
  if (run.resume) {
    run.checkpointed = true;
    run.config = nlohmann::json::parse(run.resume->config_json);
    run.planned = run.config.at("options").at("epochs").get<int64_t>();
    run.config["options"]["epochs"] = run.cfg().epochs;
    const int ranks = run.config.value("ranks", 1);
    if (ranks != run.session.data_ranks())
      throw Error(fmt::format("--resume: the checkpoint was written by a run on {} rank{}, and this one has {}; "
                              "resume it with mpirun -np {} (resharding is not supported)",
                              ranks, ranks == 1 ? "" : "s", run.session.data_ranks(), ranks));
    run.session.resume(*run.resume, run.config.value("val_loss", std::vector<double>{}));
    if (run.config.contains("pair_count") && run.config.at("pair_count").get<uint64_t>() != pairs)
      throw Error(fmt::format("--resume: the run trained on {} pairs, but {} now has {} (was the file changed?)",
                              run.config.at("pair_count").get<uint64_t>(), o.pairs_file, pairs));
  } else {
    const ModelState& s = run.session.state();
    run.config["initial_dense"] = {s.dense[0], s.dense[1]};
    run.config["pair_count"] = pairs;
    if (run.session.data_ranks() > 1) run.config["ranks"] = run.session.data_ranks();
  }
  run.done = run.session.epochs_done();
  if (run.cfg().epochs != run.planned) say_whether_bit_identical(run.cfg().epochs, run.planned, run.session.backend_info());
}

// snapshots.npy, streamed epoch by epoch when it is kept; a resumed run appends to the snapshots
// its first epochs wrote, if they kept any.
void open_snapshots(TrainRun& run) {
  const TrainOptions& o = run.o;
  if (run.session.sharded()) {  // no rank holds the table until the end
    if (o.snapshots != "none") spdlog::info("not writing snapshots.npy: the ranks hold the table's rows apart");
    return;
  }
  const ModelState& state = run.session.state();
  const int64_t epochs = run.cfg().epochs;
  const std::vector<uint64_t> shape{static_cast<uint64_t>(epochs) + 1, static_cast<uint64_t>(state.rows),
                                    static_cast<uint64_t>(state.dims)};
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
    run.snapshots->append(compared_rows(state.table, run.cfg()));
  }
}

// K > 1: this rank's shard, then, once every rank has written its own, the manifest that commits
// the step (checkpoint.hpp). A rank killed anywhere in here leaves the last committed step on disk.
void write_shard(TrainRun& run, const Checkpoint& shard) {
  keep_previous_checkpoint(run.o.out, run.rank, run.committed_step);
  write_checkpoint(checkpoint_path(run.o.out, run.rank), shard);
  run.comm->barrier();
  if (run.root) {
    ShardManifest manifest;
    manifest.ranks = run.comm->size();
    manifest.parallel = to_string(run.o.parallel);
    if (run.o.parallel == Parallel::rows) manifest.rows_rule = RowPlacement::kRule;
    manifest.epoch = shard.epoch;
    manifest.step = shard.state.step;
    write_shard_manifest(run.o.out, manifest);
  }
  run.committed_step = shard.state.step;
}

void write_state(TrainRun& run, const ModelState& full, const std::vector<EpochRecord>& history,
                 const EpochMetrics& in_progress = {}) {
  if (run.snapshots) run.snapshots->sync();
  const Checkpoint checkpoint{run.config.dump(), static_cast<int64_t>(history.size()), full, history, in_progress};
  if (run.comm->size() > 1)
    write_shard(run, checkpoint);
  else
    write_checkpoint(checkpoint_path(run.o.out), checkpoint);
  run.checkpointed = true;
}

// The progress line: every log_interval epochs, the first and the last, with an ETA.
class ProgressLog {
 public:
  explicit ProgressLog(const TrainRun& run) : run_(run), every_(log_interval(run.o)) {}
  void epoch(const EpochView& v) {
    const EpochRecord& r = v.record;
    const int64_t epochs = run_.cfg().epochs;
    interval_s_ += r.seconds;
    ++interval_epochs_;
    if (r.epoch % every_ != 0 && r.epoch != epochs && r.epoch != run_.done + 1) return;
    const double steps = static_cast<double>(interval_epochs_ * run_.session.steps_per_epoch());
    const double samples = static_cast<double>(interval_epochs_) * r.metrics.samples;
    const double epoch_s = seconds_since(start_) / static_cast<double>(r.epoch - run_.done);
    const std::string eta =
        r.epoch < epochs ? "  eta " + duration_text(epoch_s * static_cast<double>(epochs - r.epoch)) : std::string();
    spdlog::info("epoch {:>{}}/{}  loss {:.4f}{}  mse {:.4f}  accuracy {:.4f}  {:.0f} steps/s  {:.3g} samples/s{}",
                 r.epoch, fmt::formatted_size("{}", epochs), epochs, r.metrics.loss(),
                 v.val_loss ? fmt::format("  val_loss {:.4f}", *v.val_loss) : std::string(), r.metrics.mse(),
                 r.metrics.accuracy(), steps / std::max(interval_s_, 1e-9), samples / std::max(interval_s_, 1e-9),
                 eta);
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

// What the run directory gets after each epoch: a snapshot, the progress line, a checkpoint.
Callbacks run_callbacks(TrainRun& run, ProgressLog& progress) {
  Callbacks callbacks;
  callbacks.on_epoch = [&run, &progress](const EpochView& v) {
    if (run.snapshots) run.snapshots->append(compared_rows(v.state.table, run.cfg()));
    if (v.val_loss) run.config["val_loss"].push_back(*v.val_loss);  // in the checkpoint: --resume keeps it
    progress.epoch(v);
    const int64_t every = run.o.checkpoint_every;
    if (every > 0 && v.record.epoch % every == 0 && v.record.epoch < run.cfg().epochs)
      write_state(run, run.session.full_state(), v.history);
    return true;
  };
  // Only the snapshots read the weights (and val_loss, which the session asks for itself): the
  // progress line needs the metrics, a checkpoint fetches its own full state. Past 1 GiB, with
  // snapshots off, no epoch's table leaves the device until the end.
  callbacks.weights_wanted = [&run](int64_t) { return run.snapshots.has_value(); };
  callbacks.stop = run.o.stop;
  return callbacks;
}

// Trains the epochs left. Returns nothing when Ctrl-C stopped it (a checkpoint is then written).
std::optional<TrainedModel> train_epochs(TrainRun& run) {
  const TrainOptions& o = run.o;
  ProgressLog progress(run);
  std::optional<TrainedModel> model;
  try {
    model = run.session.run(run_callbacks(run, progress));
  } catch (...) {
    // A failed run (divergence, a device error) keeps its last good checkpoint resumable.
    if (run.checkpointed && run.snapshots) run.snapshots->keep_partial();
    throw;
  }
  if (!model->finished()) {  // stopped by SIGINT
    const int64_t spe = steps_per_epoch(model->data.pairs.size(), model->config.batch);
    write_state(run, model->state, model->history, model->in_progress);
    if (run.snapshots) run.snapshots->keep_partial();
    if (run.root)
      spdlog::warn("interrupted at step {} (epoch {} of {}, step {} of {}): checkpoint written; continue with: {}",
                 model->state.step, model->history.size() + (model->in_progress.samples > 0 ? 1 : 0),
                 run.cfg().epochs, model->state.step % spe, spe, resume_command(o.program, o.out));
    return std::nullopt;
  }
  // The final state is a checkpoint too: a run killed while writing its outputs resumes by writing
  // them again, and `--resume RUN --epochs N` trains it further. Past 1 GiB only when asked for.
  // Row-sharded ranks decide on the whole table's bytes, which they all agree on: each rank's
  // shard differs by a row, and a rank that skipped the write would leave the others in its barrier.
  const ModelState& s = model->state;
  const uint64_t whole_bytes =
      model->sharded() ? state_bytes(s) / static_cast<uint64_t>(s.rows) * model->data.rows : state_bytes(s);
  if (o.checkpoint_every > 0 || run.resume || whole_bytes <= kMaxAutoSnapshotBytes)
    write_state(run, model->state, model->history);
  if (run.snapshots) run.snapshots->finish();
  return model;
}

// Rank r's own shard on --resume, at the step the manifest commits, as rank 0's is.
Checkpoint read_rank_shard(const std::string& run_dir, int rank, const Checkpoint& root) {
  Checkpoint shard = read_committed_checkpoint(run_dir, rank);
  if (shard.epoch != root.epoch || shard.state.step != root.state.step)
    throw Error(fmt::format("--resume {}: rank {}'s checkpoint is at step {}, rank 0's at step {}; resume from an "
                            "earlier copy of the run directory",
                            run_dir, rank, shard.state.step, root.state.step));
  return shard;
}

// Ranks other than 0 log only warnings and errors, each line saying which rank it is.
void log_as_rank(const Communicator& comm) {
  if (comm.is_root()) return;
  spdlog::set_level(std::max(spdlog::get_level(), spdlog::level::warn));
  spdlog::set_pattern(fmt::format("[%H:%M:%S.%e] %^%l%$ rank {}: %v", comm.rank()));
}

int train_and_write(const TrainOptions& o, const Checkpoint* resume, std::shared_ptr<Communicator> comm,
                    Clock::time_point start) {
  const bool root = comm->is_root();
  if (root && !resume && !o.force) {
    refuse_resumable_run(o.out, o.program);
    refuse_foreign_dir(o.out);
  }
  if (root && !resume) check_run_dir(o.out, o.force);
  if (comm->size() > 1) spdlog::info("data parallel on {}: each rank trains its slice of every batch", comm->describe());
  TrainingSession session(training_request(o, comm));
  TrainRun run(o, resume, session, start);
  run.comm = comm.get();
  run.root = root;
  run.rank = comm->rank();
  if (resume) run.committed_step = resume->state.step;
  // Data parallel: every rank resumes from its own shard, written at the same epoch as rank 0's.
  std::optional<Checkpoint> shard;
  if (resume && !root) run.resume = &shard.emplace(read_rank_shard(o.out, comm->rank(), *resume));
  if (root) prepare_directory(run);
  start_state(run);
  if (root) open_snapshots(run);
  const int64_t first_step = run.session.state().step;
  std::optional<TrainedModel> model = train_epochs(run);
  if (!model) return kInterruptedExit;
  if (comm->size() > 1 && model->state.step > first_step)  // the exchange's volume, for bench/scaling
    spdlog::info("exchange: rank 0 sent {} bytes to the other ranks in {} steps, {:.4g} MB a step",
                 comm->bytes_sent(), model->state.step - first_step,
                 static_cast<double>(comm->bytes_sent()) / static_cast<double>(model->state.step - first_step) / 1e6);
  gather_shards(*model, *comm);
  if (!root) return 0;
  RunDirOptions outputs;
  outputs.path = o.out;
  outputs.plot = !o.no_plot;
  outputs.save_pairs = o.save_pairs;
  outputs.snapshots_written = run.snapshots.has_value();
  outputs.checkpoint_written = run.checkpointed;
  outputs.start = start;
  write_run_dir(*model, outputs);
  return 0;
}

int run_training(const TrainOptions& o, const Checkpoint* resume) {
  const auto start = Clock::now();
  std::shared_ptr<Communicator> comm = make_communicator(o.distributed, o.collective_timeout);
  if (comm->size() == 1) return train_and_write(o, resume, comm, start);
  log_as_rank(*comm);
  try {
    return train_and_write(o, resume, comm, start);
  } catch (const std::exception& e) {
    // The other ranks would wait for this one in their next collective: end them all, now.
    spdlog::error("rank {}: {}", comm->rank(), e.what());
    spdlog::default_logger()->flush();
    comm->abort(1);
  }
  return 1;  // not reached: abort ends every rank
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
  const std::string path = checkpoint_path(r.run_dir);
  const Checkpoint checkpoint = read_committed_checkpoint(r.run_dir);
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
  if (r.threads) o.train.threads = *r.threads;
  if (r.no_plot) o.no_plot = true;
  o.stop = r.stop;
  o.program = r.program;
  return run_training(o, &checkpoint);
}

}  // namespace cudaembed
