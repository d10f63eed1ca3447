// `cudaembed train`'s flags, and how they become TrainOptions (or, with --resume, ResumeOptions).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/train_command.hpp"
#include "cudaembed/api.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/config.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"

namespace cudaembed {
namespace {

constexpr int kMaxDims = 4096;

// "> 0" with a readable message (CLI::PositiveNumber prints a 300-digit upper bound).
const CLI::Validator kPositive(
    [](std::string& value) {
      double x = 0;
      try {
        x = std::stod(value);
      } catch (const std::exception&) {
        return std::string("must be a number greater than 0, got ") + value;
      }
      return x > 0 && std::isfinite(x) ? std::string() : "must be greater than 0, got " + value;
    },
    "> 0");

// A fraction strictly between 0 and 1 (--validation).
const CLI::Validator kOpenFraction(
    [](std::string& value) {
      double x = 0;
      try {
        x = std::stod(value);
      } catch (const std::exception&) {
        return "must be a fraction between 0 and 1, got " + value;
      }
      return x > 0 && x < 1 ? std::string() : "must be between 0 and 1 (exclusive), got " + value;
    },
    "in (0, 1)");

// Flags whose values name enum choices, converted after parsing.
struct ChoiceNames {
  std::string init = "robust";
  std::string adam_v = "lookups";
  std::string head = "euclidean";
  std::string optimizer = "adam";
  std::string id_kind = "auto";
  std::string resume;  // run directory
  std::string parallel = "data";
  bool deterministic = false;
};

// Ctrl-C during training: the first asks the trainer to stop after the current epoch and write a
// checkpoint; a second one quits at once.
std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

// --resume takes every setting from the checkpoint; these are the ones it lets you change.
ResumeOptions resume_options(const CLI::App& cmd, const TrainOptions& o, const std::string& run_dir) {
  const std::vector<std::string> may_change{"--resume",    "--epochs",  "--device", "--kernel",
                                            "--log-every", "--no-plot", "--threads"};
  for (const CLI::Option* opt : cmd.get_options()) {
    const std::string name = opt->get_name();
    if (opt->count() > 0 && std::find(may_change.begin(), may_change.end(), name) == may_change.end())
      throw Error(fmt::format("{}: cannot be changed when resuming; --resume takes it from the checkpoint", name));
  }
  ResumeOptions r;
  r.run_dir = run_dir;
  if (cmd.count("--device")) r.device = o.device;
  if (cmd.count("--kernel")) r.kernel = o.train.kernel;
  if (cmd.count("--log-every")) r.log_every = o.log_every;
  if (cmd.count("--threads")) r.threads = o.train.threads;
  if (cmd.count("--epochs")) r.epochs = o.train.epochs;
  r.no_plot = o.no_plot;
  r.stop = &g_stop;
  r.program = o.program;
  return r;
}

// Where and how the run goes: the run directory, the device, checkpoints.
void add_run_flags(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  auto& t = o.train;
  cmd.add_option("--data", o.data, "Colour CSV in the Kaggle format (Color Name,...,R;G;B Dec,...)")
      ->capture_default_str();
  cmd.add_option("--out", o.out, "Run directory for the outputs (default: runs/<timestamp>)");
  cmd.add_flag("--force", o.force, "Write into --out even if a run is already there");
  cmd.add_option("--device", o.device, "Where to train: auto (CUDA if a device exists, else CPU), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("--threads", t.threads,
                 "CPU backend: threads sharing each training step. 0: one per 2^20 values a step moves (parameters "
                 "and lookups; lookups alone on the sorted path), up to the cores this process may use: one for the "
                 "colours. Any number trains the same bits")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd.add_option("--kernel", t.kernel,
                 "CUDA kernel variant: " + fmt::format("{}", fmt::join(cuda_kernel_names(), ", ")))
      ->check(CLI::IsMember(cuda_kernel_names()))
      ->capture_default_str();
  cmd.add_flag("--no-plot", o.no_plot, "Do not draw plot.png and plot.svg at the end");
  cmd.add_option("--checkpoint-every", o.checkpoint_every,
                 "Write checkpoint.bin (the full training state) every K epochs; Ctrl-C always writes one")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--resume", names.resume,
                 "Continue the interrupted run in RUN_DIR from its checkpoint, appending to its outputs; with "
                 "--epochs N, train it (finished or not) to N epochs. Only --epochs, --device, --kernel, --log-every, "
                 "--threads and --no-plot may be given with it")
      ->type_name("RUN_DIR");
  cmd.add_flag("--save-pairs", o.save_pairs,
               "Also write pair_ids.npy (P, 2) uint32 and pair_labels.npy (P,) float32: the exact training data");
  cmd.add_flag("--deterministic", names.deterministic,
               "Bit-identical runs on CUDA too: the 'deterministic' kernel (no float atomics; tables that fit one "
               "block's shared memory). The CPU backend is always deterministic");
  cmd.add_option("--seed", t.seed, "Seed of the pairs, the initial weights and every epoch's shuffle")
      ->capture_default_str();
}

// Training on several processes under mpirun (docs/scaling.md).
void add_distributed_flags(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  const char* g = "Distributed (mpirun -np K cudaembed train ...)";
  cmd.add_flag("--distributed", o.distributed,
               "Join an MPI job even where no launcher's environment says so (mpirun and srun are noticed "
               "without it)")
      ->group(g);
  cmd.add_option("--parallel", names.parallel,
                 "data: every rank holds the whole table and trains its slice of each batch, gradients summed "
                 "across ranks; rows: each rank holds the rows r with r mod K = its rank and their optimizer state "
                 "(about 1/K of the memory), rows and gradients exchanged each step (the sorted path; no "
                 "--validation or snapshots). On the CPU over MPI; on GPUs over NCCL, one GPU a rank (not yet run "
                 "on a GPU)")
      ->check(CLI::IsMember({"data", "rows"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--collective-timeout", o.collective_timeout,
                 "Seconds a rank waits in an exchange for the others before it ends itself, and mpirun the job")
      ->check(kPositive)
      ->capture_default_str()
      ->group(g);
}

// What trains: the colours' random pairs, or a pairs file.
void add_data_flags(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  auto& t = o.train;
  const char* g = "Data";
  auto* pairs = cmd.add_option("--pairs", o.pairs.count, "Number of random pairs (a, b), drawn with replacement")
                    ->check(CLI::Range(uint64_t{1}, uint64_t{4000000000}))
                    ->capture_default_str()
                    ->group(g);
  auto* threshold = cmd.add_option("--label-threshold", o.pairs.threshold,
                                   "Label 1 when |rgb_a - rgb_b|^2 / 3 < threshold * U^2, U ~ U[0,1)")
                        ->check(CLI::Range(0.0f, 3.0f))
                        ->capture_default_str()
                        ->group(g);
  auto* pairs_file =
      cmd.add_option("--pairs-file", o.pairs_file,
                     "Train on your own pairs instead of the colours: a CSV of a,b[,label[,weight]] (names or integer "
                     "ids; a header line is optional) or a CEPAIRS1 file from `cudaembed convert-pairs`. Names become "
                     "rows in order of first appearance, written to vocab.tsv. See docs/pairs-format.md")
          ->check(CLI::ExistingFile)
          ->excludes(pairs)
          ->excludes(threshold)
          ->group(g);
  cmd.get_option("--data")->excludes(pairs_file);
  cmd.add_option("--id-kind", names.id_kind,
                 "How --pairs-file names rows: names, ints (0-based ids), or auto (ints when the first line's a and b "
                 "are integers)")
      ->check(CLI::IsMember({"auto", "names", "ints"}))
      ->capture_default_str()
      ->needs(pairs_file)
      ->group(g);
  cmd.add_option("--rows", o.pairs_file_options.rows,
                 "With integer ids: the table's rows (ids must be below it); default: the largest id + 1")
      ->check(CLI::Range(uint64_t{1}, uint64_t{0xfffffffe}))
      ->needs(pairs_file)
      ->group(g);
  cmd.add_option("--negatives", t.negatives,
                 "Draw K random negatives (a, random row, label 0) per pair each step, word2vec-style: for files of "
                 "positives only")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str()
      ->group(g);
}

// The model: width, head, initialisation.
void add_model_flags(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  auto& t = o.train;
  const char* g = "Model";
  cmd.add_option("--dims", t.dims, "Embedding width D")
      ->check(CLI::Range(1, kMaxDims))
      ->capture_default_str()
      ->group(g);
  cmd.add_flag("--normalize,--normalise", t.normalize, "L2-normalise each row before the head")->group(g);
  cmd.add_option("--head", names.head,
                 "How two rows are compared before Dense(1) + sigmoid: euclidean (squared distance, the tutorial's), "
                 "dot (dot product), cosine (dot product of L2-normalised rows) or poincare (Poincaré distance in "
                 "the unit ball, for hierarchies; trains with --optimizer radam or rsgd, radam by default)")
      ->check(CLI::IsMember({"euclidean", "dot", "cosine", "poincare"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--init", names.init,
                 "Initialisation: robust (Keras's, Dense weight <= 0 for euclidean, >= 0 for dot and cosine: "
                 "trains into the right basin) or keras (exact)")
      ->check(CLI::IsMember({"robust", "keras"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--init-range", o.init.embedding_range, "Embedding initialised U(-r, r) (--head poincare: 0.001)")
      ->check(CLI::Range(0.0f, 1e6f))
      ->capture_default_str()
      ->group(g);
}

// The optimizer, its schedule, what each epoch writes, and the held-out split.
void add_training_flags(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  auto& t = o.train;
  const char* g = "Training";
  cmd.add_option("--epochs", t.epochs, "Epochs (full passes over the pairs; --head poincare: 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--batch", t.batch, "Batch size; the last partial batch of each epoch is kept (--head poincare: 10)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--optimizer", names.optimizer,
                 "adam (Keras's dense Adam: every row moves every step), lazy-adam (only the rows a step touches, "
                 "each with its own step count), sgd, adagrad (row-wise, FBGEMM's: one accumulator per row), or for "
                 "--head poincare rsgd or radam (Riemannian SGD and Adam: the gradient rescaled by the ball's "
                 "metric, each row retracted into the ball)")
      ->check(CLI::IsMember({"adam", "lazy-adam", "sgd", "adagrad", "rsgd", "radam"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--lr", t.adam.lr, "Learning rate (default: Keras's, 0.001; 0.01 for sgd; 0.01 radam, 1 rsgd)")
      ->check(kPositive)
      ->group(g);
  cmd.add_option("--burn-in", t.burn_in,
                 "radam, rsgd: the first N epochs at a tenth of the learning rate (Nickel & Kiela; default 10)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}))
      ->group(g);
  cmd.add_option("--beta1", t.adam.beta1, "Adam beta1")
      ->check(CLI::Range(0.0f, 0.999999f))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--beta2", t.adam.beta2, "Adam beta2")
      ->check(CLI::Range(0.0f, 0.999999f))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--epsilon", t.adam.epsilon, "Adam's and Adagrad's epsilon, added to the square root as Keras does")
      ->check(kPositive)
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--adam-v", names.adam_v,
                 "Adam's second moment for embedding rows: lookups (Keras: sum of each lookup's squared gradient) "
                 "or rows (textbook/PyTorch: square of the row's summed gradient)")
      ->check(CLI::IsMember({"lookups", "rows"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--snapshots", o.snapshots,
                 "snapshots.npy, the table after every epoch (for `animate`): all, none, or auto (all while the file "
                 "stays under 1 GiB)")
      ->check(CLI::IsMember({"auto", "all", "none"}))
      ->capture_default_str()
      ->group(g);
  cmd.add_option("--log-every", o.log_every, "Epochs between progress lines (0: about 25 lines per run)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->group(g);

  cmd.add_option("--validation", o.validation,
                 "Hold out this fraction of a --pairs-file's positive pairs (and of its other pairs), seeded by "
                 "--seed: metrics.csv gets val_loss per epoch, run.json link_prediction (filtered MRR, Hits@1/10/50, "
                 "AUC) at the end, and validation_pairs.csv the held-out pairs")
      ->check(kOpenFraction)
      ->group("Evaluation");
  add_eval_candidates_option(cmd, o.eval_candidates);
}

void add_train_options(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  add_run_flags(cmd, o, names);
  add_data_flags(cmd, o, names);
  add_model_flags(cmd, o, names);
  add_training_flags(cmd, o, names);
  add_distributed_flags(cmd, o, names);
}

// What the parsed flags leave to do: names to enums, and the defaults that depend on other flags.
int run_train_command(const CLI::App& cmd, TrainOptions& o, const ChoiceNames& names) {
  std::signal(SIGINT, on_sigint);
  if (!names.resume.empty()) return resume_train(resume_options(cmd, o, names.resume));
  o.stop = &g_stop;
  parse_head(names.head, o.train);
  o.train.optimizer = parse_optimizer(names.optimizer);
  o.init.scheme = parse_init_scheme(names.init);
  o.train.second_moment = parse_second_moment(names.adam_v);
  o.pairs_file_options.ids = parse_id_kind(names.id_kind);
  o.parallel = parse_parallel(names.parallel);
  UnsetSettings unset;
  unset.optimizer = !cmd.count("--optimizer");
  unset.init_range = !cmd.count("--init-range");
  unset.burn_in = !cmd.count("--burn-in");
  unset.lr = !cmd.count("--lr");
  unset.batch = !cmd.count("--batch");
  unset.epochs = !cmd.count("--epochs");
  apply_defaults(o.train, o.init, unset);
  if (names.deterministic) {
    if (o.train.kernel != "auto" && o.train.kernel != "deterministic")
      throw Error(fmt::format("--deterministic: conflicts with --kernel {} (it selects --kernel deterministic)",
                              o.train.kernel));
    // The sorted path is deterministic as it is (a fixed summation order everywhere).
    o.train.kernel = needs_sorted_path(o.train, false) ? "sorted" : "deterministic";
  }
  if (o.out.empty()) o.out = default_run_dir();
  return run_train(o);
}

}  // namespace

// --eval-candidates, for train and evaluate.
void add_eval_candidates_option(CLI::App& cmd, int64_t& value) {
  cmd.add_option("--eval-candidates", value,
                 "Rank each held-out target against N rows drawn uniformly (seeded) instead of every row; 0: every "
                 "row. Default: every row up to 100000 rows, 10000 drawn above")
      ->check(CLI::Range(int64_t{0}, int64_t{0xFFFFFFFF}))
      ->group("Evaluation");
}

Command add_train_command(CLI::App& app, const std::string& bundled_data, const std::string& program) {
  auto o = std::make_shared<TrainOptions>();
  auto names = std::make_shared<ChoiceNames>();
  o->data = bundled_data;
  o->program = program;
  auto* cmd = app.add_subcommand(
      "train",
      "Train an embedding of the colours and write embedding.npy, snapshots.npy (one table per epoch),\n"
      "vectors.tsv + metadata.tsv (TensorBoard projector), word2vec.txt, metrics.csv, run.json and plot.png/.svg\n"
      "to --out.");
  add_train_options(*cmd, *o, *names);
  return {cmd, [cmd, o, names] { return run_train_command(*cmd, *o, *names); }};
}

}  // namespace cudaembed
