// The library API: what `cudaembed train`, `bench` and the Python module call.
//
//   cudaembed::TrainingRequest request;                      // what to train on, and how
//   request.data = cudaembed::PairsFileSource{"pairs.csv"};  // or ColoursSource{}, or PairArrays{...}
//   request.train.dims = 8;
//   cudaembed::TrainedModel model = cudaembed::fit(request, {.on_epoch = [](const cudaembed::EpochView& v) {
//     return v.record.metrics.loss() > 0.1;  // false: stop after this epoch
//   }});
//   cudaembed::write_run_dir(model, {.path = "runs/mine"});  // the files `cudaembed train` writes
//
// Training reads its input and writes nothing; a run directory is written separately, from the
// trained model. The CLI maps its flags to a request and its run directory to RunDirOptions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cudaembed/backend.hpp"
#include "cudaembed/checkpoint.hpp"
#include "cudaembed/config.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/trainer.hpp"

namespace cudaembed {

// The tutorial: a colour CSV, with `pairs.count` random pairs drawn over its colours from the
// request's seed (pairs.seed is ignored) and labelled by RGB distance.
struct ColoursSource {
  std::string csv;  // empty: the bundled colours (default_colours_csv())
  PairSpec pairs;
};

// A pairs file: CSV or CEPAIRS1 (docs/pairs-format.md).
struct PairsFileSource {
  std::string path;
  PairsFileOptions options;
};

// Pairs already in memory. Ids are rows of the table: below `rows`, or rows = 0 for the largest
// id + 1. `names`: one per row, or empty (the rows are then named by their ids).
struct PairArrays {
  PairSet pairs;
  int64_t rows = 0;
  std::vector<std::string> names;
};

using DataSource = std::variant<ColoursSource, PairsFileSource, PairArrays>;

struct TrainingRequest {
  DataSource data = ColoursSource{};
  TrainConfig train;             // model, optimizer, epochs, batch, seed, kernel
  InitSpec init;                 // its seed and head are the request's (train.seed, train.head)
  std::string device = "auto";   // "auto", "cpu" or "cuda"
  double validation = 0;         // pairs files and arrays: the fraction of positives held out
  int64_t eval_candidates = -1;  // held-out ranking: sampled candidates, 0 all rows, -1 by table size
  // Start from this state instead of drawing one (rows and dims must fit the data): `bench` draws
  // a 10M x 128 table with Adam's moments, 15 GB, once per shape, not once per repeat.
  std::shared_ptr<const ModelState> initial_state;
  // Training across the communicator's ranks (distributed.hpp); null: one process.
  std::shared_ptr<Communicator> communicator;
  // With K > 1 ranks: data (each rank holds the table) or rows (each rank holds its rows; the
  // session's state is then this rank's shard, and gather_shards() assembles the table). Rows
  // trains on the sorted path, and has no validation and no initial_state.
  Parallel parallel = Parallel::data;
};

// Which settings a user left unset, so that apply_defaults may choose them.
struct UnsetSettings {
  bool optimizer = true, init_range = true, burn_in = true, lr = true, batch = true, epochs = true;
};

// The defaults that depend on other settings: with the Poincaré head, PoincareDefaults (radam, an
// init range of 1e-3, 10 burn-in epochs, batches of 10 for 100 epochs); the optimizer's own
// learning rate (default_learning_rate). Then throws where the head and the optimizer do not go
// together (check_head_optimizer).
void apply_defaults(TrainConfig& config, InitSpec& init, const UnsetSettings& unset = {});

// The path of the bundled colour CSV: beside an installed binary, else in the source tree.
std::string default_colours_csv();

// What a request trains on, once read.
struct TrainingData {
  PairSet pairs;  // the pairs that train (with validation, the held-out ones are not here)
  int64_t rows = 0;
  std::vector<std::string> names;  // (N,): colour names, the file's names, or the ids as text
  std::vector<float> rgb;          // (N, 3) in [0, 1] for the colours, else empty
  std::vector<std::string> vocab;  // a names-mode pairs file or named arrays: vocab.tsv; else empty
  std::string metadata;            // metadata.tsv: name (and hex for the colours) per row
  std::string source;              // the file read, or "arrays"
  double parse_s = 0, pairs_s = 0;
  nlohmann::json summary;  // run.json's "data"
};

// What an epoch callback sees. `state` holds this epoch's parameters when Callbacks::weights_wanted
// says so (always, when it is empty); the optimizer state is not in it (TrainingSession::full_state).
struct EpochView {
  const EpochRecord& record;
  const ModelState& state;
  std::optional<double> val_loss;             // with validation: the held-out loss after this epoch
  const std::vector<EpochRecord>& history;    // every whole epoch so far, this one last
};

struct Callbacks {
  // After each whole epoch; returning false ends training there, cleanly (a shorter history).
  std::function<bool(const EpochView&)> on_epoch;
  // Whether on_epoch reads the parameters after `epoch` (1-based); empty: every epoch. Copying the
  // table back costs 5 GB an epoch at 10M x 128.
  WeightsWanted weights_wanted;
  // Set from elsewhere (a signal handler): training ends after the current step (CPU) or epoch (CUDA).
  const std::atomic<bool>* stop = nullptr;
};

class HeldOutPairs;

struct TrainedModel {
  TrainConfig config;
  InitSpec init;
  std::string device;  // as requested
  TrainingData data;
  BackendInfo backend;
  ModelState state;                   // the final state, optimizer state included
  std::vector<EpochRecord> history;   // one record per whole epoch, resumed ones included
  std::vector<double> val_loss;       // with validation: one per epoch of history
  EpochMetrics in_progress;           // sums of an epoch a stop cut short (samples == 0: none)
  float initial_dense[2] = {0, 0};    // the Dense layer as drawn, for run.json
  std::shared_ptr<const HeldOutPairs> held_out;  // with validation
  double validation = 0;
  int64_t eval_candidates = -1;
  double train_s = 0;
  int ranks = 1;  // the processes that trained it
  Parallel parallel = Parallel::data;
  bool sharded() const { return parallel == Parallel::rows && ranks > 1; }  // state: this rank's rows only

  // Whether every planned epoch was trained (false after a stop).
  bool finished() const { return static_cast<int64_t>(history.size()) >= config.epochs; }
  // The table as the model compares its rows: L2-normalised under config.normalize.
  std::vector<float> rows() const;
};

// The rows of `table` (N, D) as the model compares them: L2-normalised under config.normalize.
// Every table a run directory holds is in this form.
std::vector<float> compared_rows(const std::vector<float>& table, const TrainConfig& config);

// One training run, in stages: the constructor reads the data, starts the backend, splits off the
// held-out pairs and draws the initial state (nothing is written); resume() may replace that state
// with a checkpoint's; run() trains.
class TrainingSession {
 public:
  explicit TrainingSession(TrainingRequest request);
  ~TrainingSession();
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;

  // Continues from a checkpoint (its state, history and unfinished epoch) and the val_loss it
  // recorded; throws Error when its table's shape or pair count does not fit the data.
  void resume(const Checkpoint& checkpoint, std::vector<double> val_loss);

  const TrainingData& data() const { return model_.data; }
  const TrainConfig& config() const { return model_.config; }
  const BackendInfo& backend_info() const { return model_.backend; }
  const ModelState& state() const { return model_.state; }
  const std::vector<EpochRecord>& history() const { return model_.history; }
  const std::vector<double>& val_loss() const { return model_.val_loss; }
  int64_t epochs_done() const { return static_cast<int64_t>(model_.history.size()); }
  int64_t steps_per_epoch() const;
  bool has_validation() const { return model_.held_out != nullptr; }
  int data_ranks() const { return model_.ranks; }  // processes training it (1: one)
  bool sharded() const { return model_.sharded(); }  // state(): this rank's rows only
  // The whole state now, optimizer included, from the backend: for checkpoints written in on_epoch.
  ModelState full_state();
  // With TrainConfig::phase_profile, the backend's cycles per phase (Backend::phase_report); also after run().
  std::string phase_report() const { return backend_->phase_report(); }
  // Trains the epochs left up to config().epochs and hands the model over: the session is spent
  // after it (its accessors are for the stages before, and for callbacks during). A Divergence or
  // a device error propagates.
  TrainedModel run(const Callbacks& callbacks = {});

 private:
  RowPlacement placement() const { return {comm_ ? comm_->rank() : 0, model_.ranks}; }
  // The state training starts from: `given` (checked against the data), or drawn (this rank's
  // rows when sharded).
  ModelState first_state(const ModelState* given) const;

  TrainedModel model_;
  bool spent_ = false;  // run() has handed model_ over
  std::unique_ptr<Backend> backend_;
  std::shared_ptr<HeldOutPairs> held_out_;
  std::shared_ptr<Communicator> comm_;
};

// A row-sharded model (sharded()): rank 0's state.table becomes the whole table (rows x D) and
// its optimizer state is dropped; the other ranks send their rows and keep nothing. Every rank
// calls it. A model that is not sharded is left as it is.
void gather_shards(TrainedModel& model, Communicator& comm);

// TrainingSession(request).run(callbacks).
TrainedModel fit(TrainingRequest request, const Callbacks& callbacks = {});

// Where and what write_run_dir writes.
struct RunDirOptions {
  std::string path;
  bool plot = true;         // plot.png and plot.svg (up to 100,000 rows)
  bool save_pairs = false;  // pair_ids.npy and pair_labels.npy
  // What the caller wrote there already, for the last log line and run.json.
  bool snapshots_written = false, checkpoint_written = false;
  // run.json's "config"; null: run_config_json(model).
  nlohmann::json config;
  // When the run began, for run.json's timings_s.total; empty: parse, pairs and training summed.
  std::optional<std::chrono::steady_clock::time_point> start;
};

// run.json's "config" as far as the request fixes it: data, shape, head, optimizer,
// hyperparameters, device and kernel as asked. `cudaembed train --resume` compares it with run.json.
nlohmann::json run_config_json(const std::string& data, const TrainConfig& config, const InitSpec& init,
                               const std::string& device);
// ... and what the data decided: the pairs, steps per epoch, the kernel in use, the validation.
nlohmann::json run_config_json(const TrainedModel& model);

// Writes embedding.npy, metadata.tsv, metrics.csv, run.json, vocab.tsv (named rows), vectors.tsv
// and word2vec.txt (when small enough), validation_pairs.csv (with validation) and the plot, each
// atomically, into an existing directory (prepare_run_dir makes one). Logs the results and
// returns the names written.
std::vector<std::string> write_run_dir(const TrainedModel& model, const RunDirOptions& options);

// The model as read_run_dir reads back the run directory write_run_dir writes of it, without
// writing one: the table as compared, names, colours (kItemRgb without), head. For neighbours and
// plots of a model in memory (the Python module's).
RunDir as_run_dir(const TrainedModel& model);

}  // namespace cudaembed
