// cudaembed: train embedding tables from labelled pairs on the GPU (or the CPU when there is none).
//   cudaembed train [options]      see `cudaembed train --help`
//   cudaembed plot RUN_DIR         plot.png + plot.svg of the embedding
//   cudaembed animate RUN_DIR      animation.mp4 (or .gif) of the training, from snapshots.npy
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "bench_command.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/version.hpp"
#include "text/input_text.hpp"
#include "cli/query_commands.hpp"
#include "outputs/run_progress.hpp"
#include "cli/synth_command.hpp"
#include "cli/train_command.hpp"

namespace {

using namespace cudaembed;

constexpr int kMaxDims = 4096;

// The bundled colours: beside an installed binary (PREFIX/bin/cudaembed reads
// PREFIX/share/cudaembed/data/colours.csv), else in the source tree the binary was built from.
std::string default_data() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return kDefaultData;
  const fs::path installed = (exe.parent_path() / kInstalledDataFromBin).lexically_normal();
  return fs::is_regular_file(installed, ec) ? installed.string() : kDefaultData;
}

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

// --eval-candidates, for train and evaluate.
void add_eval_candidates_option(CLI::App& cmd, int64_t& value) {
  cmd.add_option("--eval-candidates", value,
                 "Rank each held-out target against N rows drawn uniformly (seeded) instead of every row; 0: every "
                 "row. Default: every row up to 100000 rows, 10000 drawn above")
      ->check(CLI::Range(int64_t{0}, int64_t{0xFFFFFFFF}))
      ->group("Evaluation");
}

// Flags whose values name enum choices, converted after parsing.
struct ChoiceNames {
  std::string init = "robust";
  std::string adam_v = "lookups";
  std::string head = "euclidean";
  std::string optimizer = "adam";
  std::string id_kind = "auto";
  std::string resume;  // run directory
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
  const std::vector<std::string> may_change{"--resume", "--epochs", "--device", "--kernel", "--log-every", "--no-plot"};
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
  if (cmd.count("--epochs")) r.epochs = o.train.epochs;
  r.no_plot = o.no_plot;
  r.stop = &g_stop;
  r.program = o.program;
  return r;
}

void add_train_options(CLI::App& cmd, TrainOptions& o, ChoiceNames& names) {
  auto& t = o.train;
  cmd.add_option("--data", o.data, "Colour CSV in the Kaggle format (Color Name,...,R;G;B Dec,...)")
      ->capture_default_str();
  cmd.add_option("--out", o.out, "Run directory for the outputs (default: runs/<timestamp>)");
  cmd.add_flag("--force", o.force, "Write into --out even if a run is already there");
  cmd.add_option("--device", o.device, "Where to train: auto (CUDA if a device exists, else CPU), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
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
                 "--epochs N, train it (finished or not) to N epochs. Only --epochs, --device, --kernel, --log-every "
                 "and --no-plot may be given with it")
      ->type_name("RUN_DIR");
  cmd.add_flag("--save-pairs", o.save_pairs,
               "Also write pair_ids.npy (P, 2) uint32 and pair_labels.npy (P,) float32: the exact training data");
  cmd.add_flag("--deterministic", names.deterministic,
               "Bit-identical runs on CUDA too: the 'deterministic' kernel (no float atomics; tables that fit one "
               "block's shared memory). The CPU backend is always deterministic");
  cmd.add_option("--seed", t.seed, "Seed of the pairs, the initial weights and every epoch's shuffle")
      ->capture_default_str();

  auto* g = "Data";
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

  g = "Model";
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

  g = "Training";
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

// The candidate `typed` most likely misspells: within a third of its length in edits, or a prefix
// either way of at least three letters (--batch for --batch-size). Empty when nothing is that close.
std::string closest_name(const std::string& typed, const std::vector<std::string>& candidates) {
  auto bare = [](const std::string& s) { return s.substr(std::min(s.find_first_not_of('-'), s.size())); };
  const std::string t = bare(typed);
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(1, t.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const std::string b = bare(c);
    std::size_t distance = edit_distance(t, b);
    const std::size_t shorter = std::min(t.size(), b.size());
    if (shorter >= 3 && t.compare(0, shorter, b, 0, shorter) == 0) distance = std::min(distance, std::size_t{1});
    if (distance < best_distance) {
      best = c;
      best_distance = distance;
    }
  }
  return best;
}

// After a failed parse: a misspelt command or option, named with its likely correction, instead of
// CLI11's "A subcommand is required" or "arguments were not expected". Empty for any other error.
std::string typo_message(CLI::App& app, int argc, char** argv) {
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty()) {
    // The first word that is not an option names the command (the top level takes no values).
    for (int i = 1; i < argc; ++i) {
      const std::string word = argv[i];
      if (word.empty() || word[0] == '-') continue;
      std::vector<std::string> commands, names;  // names: the commands and their aliases
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        commands.push_back(sub->get_name());
        names.push_back(sub->get_name());
        for (const std::string& alias : sub->get_aliases()) names.push_back(alias);
      }
      if (std::find(names.begin(), names.end(), word) != names.end()) return {};
      const std::string guess = closest_name(word, names);
      if (!guess.empty()) return fmt::format("unknown command '{}'; did you mean '{}'?", word, guess);
      return fmt::format("unknown command '{}'; the commands are {}", word, fmt::join(commands, ", "));
    }
  }
  const CLI::App& where = parsed.empty() ? app : *parsed.back();
  const std::vector<std::string> extras = app.remaining(true);
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.size() < 2 || word[0] != '-' || std::find(extras.begin(), extras.end(), word) == extras.end()) continue;
    if (std::isdigit(static_cast<unsigned char>(word[1])) || word[1] == '.') continue;  // a negative number
    const std::string flag = word.substr(0, word.find('='));
    std::vector<std::string> options;
    for (const CLI::Option* opt : where.get_options()) {
      for (const std::string& name : opt->get_lnames()) options.push_back("--" + name);
      for (const std::string& name : opt->get_snames()) options.push_back("-" + name);
    }
    const std::string guess = closest_name(flag, options);
    if (!guess.empty()) return fmt::format("unknown option '{}'; did you mean '{}'?", flag, guess);
    return fmt::format("unknown option '{}'", flag);
  }
  return {};
}

void add_plot_options(CLI::App& cmd, std::string& run_dir, PlotOptions& o) {
  cmd.add_option("run_dir", run_dir, "Run directory written by `cudaembed train`")->required();
  cmd.add_option("--out", o.out_prefix, "Writes PREFIX.png and PREFIX.svg (default: RUN_DIR/plot)");
  cmd.add_option("--label", o.labels,
                 "A name to write next to its point; repeat it for more (--label SkyBlue --label 'gray, grey'). A "
                 "value that is no row's name is a comma-separated list (SkyBlue,gold)");
  cmd.add_option("--colour-by,--color-by", o.colour_by,
                 "Colour the points by a column of --vocab (a cluster, a label): one colour per value, with a legend")
      ->type_name("COLUMN");
  cmd.add_option("--vocab", o.vocab,
                 "Table for --colour-by: tab-separated, a header line, then one line per row: its name (as in the "
                 "run's vocab.tsv) and its columns (default: RUN_DIR/metadata.tsv)")
      ->type_name("TSV");
  cmd.add_option("--size", o.size, "Width and height in pixels")->check(CLI::Range(64, 8192))->capture_default_str();
  cmd.add_option("--azimuth", o.azimuth_deg,
                 "D = 3: camera angle around the x2 axis, in degrees from x0 (default: facing the cloud)");
  cmd.add_option("--elevation", o.elevation_deg,
                 "D = 3: camera angle above the x0-x1 plane, in degrees (default: facing the cloud)")
      ->check(CLI::Range(-90.0, 90.0));
  cmd.add_option("--title", o.title, "Title (default: \"<run dir name>: N colours, D = d\", or N items)");
}

void add_animate_options(CLI::App& cmd, std::string& run_dir, AnimateOptions& o) {
  cmd.add_option("run_dir", run_dir, "Run directory written by `cudaembed train`")->required();
  cmd.add_option("--out", o.out, "Output file (default: RUN_DIR/animation.mp4, or .gif)");
  cmd.add_option("--fps", o.fps, "Frames per second")->check(CLI::Range(1, 120))->capture_default_str();
  cmd.add_option("--seconds", o.seconds, "Length of the clip; frames = fps * seconds")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  cmd.add_option("--format", o.format, "auto (mp4 when ffmpeg is on PATH, else gif), mp4 (H.264) or gif")
      ->check(CLI::IsMember({"auto", "mp4", "gif"}))
      ->capture_default_str();
  cmd.add_option("--size", o.size, "Width and height in pixels (mp4: rounded up to even)")
      ->check(CLI::Range(64, 4096))
      ->capture_default_str();
  cmd.add_option("--azimuth", o.azimuth_deg,
                 "D = 3: camera angle of the last frame, in degrees: plot's view (default: facing the final cloud)");
  cmd.add_option("--turn", o.turn_deg, "D = 3: degrees the camera turns over the clip, ending on --azimuth")->capture_default_str();
  cmd.add_option("--elevation", o.elevation_deg,
                 "D = 3: camera angle above the x0-x1 plane, in degrees (default: facing the final cloud)")
      ->check(CLI::Range(-90.0, 90.0));
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("cudaembed"));
  spdlog::set_pattern("[%H:%M:%S.%e] %^%l%$ %v");

  CLI::App app{fmt::format(
      "cudaembed {}: trains embedding tables from labelled pairs with fused CUDA kernels, or on the CPU when there\n"
      "is no GPU. The bundled job learns 2-D embeddings of 646 named colours from 100,000 random pairs labelled\n"
      "similar / not similar by RGB distance (Embedding -> squared distance -> Dense(1) + sigmoid -> BCE, Adam).",
      kVersion)};
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);

  TrainOptions train_opts;
  const std::string bundled_data = default_data();
  train_opts.data = bundled_data;
  ChoiceNames names;
  auto* train_cmd = app.add_subcommand(
      "train",
      "Train an embedding of the colours and write embedding.npy, snapshots.npy (one table per epoch),\n"
      "vectors.tsv + metadata.tsv (TensorBoard projector), word2vec.txt, metrics.csv, run.json and plot.png/.svg\n"
      "to --out.");
  add_train_options(*train_cmd, train_opts, names);

  BenchOptions bench_opts;
  bench_opts.data = bundled_data;
  auto* bench_cmd = app.add_subcommand(
      "bench",
      "Time training: every CUDA kernel variant (or the CPU backend without a device) on the default run and\n"
      "larger shapes; CUDA events after warm-up, repeated; writes bench.json and bench.md to --out.");
  bench_cmd->add_option("--data", bench_opts.data, "Colour CSV for the colour shapes")->capture_default_str();
  bench_cmd->add_option("--out", bench_opts.out,
                        "Directory for bench.json and bench.md (default: runs/bench-<timestamp>)");
  bench_cmd->add_flag("--force", bench_opts.force, "Write into --out even if results are already there");
  bench_cmd->add_option("--device", bench_opts.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  bench_cmd
      ->add_option("--shapes", bench_opts.shapes,
                   "default (the colours, 2-D and 3-D), large (up to 100k rows, D 256, batch 65536), sparse (1M and "
                   "10M rows, D 64 and 128, batch 65536, power-law rows, lazy-adam/sgd/adagrad; GB/s against the "
                   "measured copy bandwidth), all, tiny")
      ->check(CLI::IsMember({"default", "large", "sparse", "all", "tiny"}))
      ->capture_default_str();
  auto kernel_choices = cuda_kernel_names();
  kernel_choices.push_back("all");
  bench_cmd->add_option("--kernel", bench_opts.kernel, "Variant to time, or all")
      ->check(CLI::IsMember(kernel_choices))
      ->capture_default_str();
  bench_cmd->add_option("--repeats", bench_opts.repeats, "Timed repeats; the median is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench_cmd->add_option("--warmup", bench_opts.warmup, "Untimed epochs before each repeat")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  bench_cmd->add_option("--epochs", bench_opts.epochs, "Timed epochs per repeat (0: each shape's own)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}))
      ->capture_default_str();
  bench_cmd->add_flag("--phase-profile", bench_opts.phase_profile,
                      "CUDA: stamp clock64() per phase in the persistent kernels and report cycles per step "
                      "(forward+backward, optimizer, barriers); the stamps cost a little time themselves");

  std::string plot_run_dir;
  PlotOptions plot_opts;
  auto* plot_cmd = app.add_subcommand(
      "plot",
      "Draw a run's embedding to PREFIX.png and PREFIX.svg: each colour a dot of its own RGB (a pairs file's\n"
      "items in one colour, or one per value of --colour-by). D = 2 as is, D = 3 an orthographic view (on the\n"
      "unit sphere when the run normalised), D > 3 its top two principal components, D = 1 against a fixed\n"
      "jitter.");
  add_plot_options(*plot_cmd, plot_run_dir, plot_opts);

  std::string animate_run_dir;
  AnimateOptions animate_opts;
  auto* animate_cmd = app.add_subcommand(
      "animate",
      "Render snapshots.npy as a clip (MP4 through ffmpeg, or a looping GIF): frame f of F shows epoch\n"
      "round((f / (F - 1))^2 * epochs), on the axes of the final snapshot.");
  add_animate_options(*animate_cmd, animate_run_dir, animate_opts);

  NeighboursOptions neighbours_opts;
  auto* neighbours_cmd = app.add_subcommand(
      "neighbours",
      "The k colours (or a pairs file's items) nearest to NAME in a run's embedding, with their embedding and\n"
      "RGB distances (a dot or cosine head's run: the k most similar by its dot product or cosine similarity).");
  neighbours_cmd->alias("neighbors");
  neighbours_cmd->add_option("RUN_DIR", neighbours_opts.run_dir, "A directory written by cudaembed train")->required();
  neighbours_cmd
      ->add_option("NAME", neighbours_opts.name,
                   "Name of a colour or item: exactly, any one name of a merged row ('grey' for 'gray, grey'), or "
                   "ignoring case, spaces and hyphens when that finds only one")
      ->required();
  neighbours_cmd->add_option("-k", neighbours_opts.k, "How many neighbours")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  neighbours_cmd
      ->add_option("--device", neighbours_opts.device,
                   "Where the query's distances run: auto, cpu or cuda (same result)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();

  EvaluateOptions evaluate_opts;
  auto* evaluate_cmd = app.add_subcommand(
      "evaluate",
      "How well a run's embedding orders colours like RGB does: the Spearman rank correlation of all pairwise\n"
      "distances, and the mean overlap of k-nearest-neighbour sets (ties counted fairly). With --pairs FILE, any\n"
      "run: link prediction and graph reconstruction on that file (docs/evaluation.md).");
  evaluate_cmd->add_option("RUN_DIR", evaluate_opts.run_dir, "A directory written by cudaembed train")->required();
  evaluate_cmd->add_option("-k", evaluate_opts.k, "Neighbourhood size")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  evaluate_cmd
      ->add_option("--device", evaluate_opts.device,
                   "Where the all-pairs distances run: auto, cpu or cuda (same result)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  evaluate_cmd->add_flag("--json", evaluate_opts.json, "Print one JSON line instead of a sentence");
  evaluate_cmd
      ->add_option("--pairs", evaluate_opts.pairs,
                   "Link prediction on a pairs file (names or ids of the run's rows): filtered MRR, Hits@1/10/50, "
                   "AUC of its positives, and reconstruction MAP and mean rank (Nickel & Kiela 2017); any run")
      ->check(CLI::ExistingFile)
      ->group("Evaluation");
  evaluate_cmd
      ->add_option("--filter", evaluate_opts.filters,
                   "With --pairs: more pairs files whose positives are known too, filtered out of the candidates "
                   "(the training file, as PyTorch-BigGraph filters); repeatable")
      ->check(CLI::ExistingFile)
      ->needs("--pairs")
      ->group("Evaluation");
  add_eval_candidates_option(*evaluate_cmd, evaluate_opts.eval_candidates);
  evaluate_cmd->get_option("--eval-candidates")->needs("--pairs");
  evaluate_cmd->add_option("--seed", evaluate_opts.seed, "Seed of the drawn candidates (default: the run's seed)")
      ->needs("--pairs")
      ->group("Evaluation");

  std::string convert_in, convert_out, convert_ids = "auto";
  uint64_t convert_rows = 0;
  auto* convert_cmd = app.add_subcommand(
      "convert-pairs",
      "Convert a pairs CSV (a,b[,label[,weight]]) to the binary CEPAIRS1 format, streaming: memory grows with\n"
      "the vocabulary, not the file. Names are stored in the file; train reads it with --pairs-file.");
  convert_cmd->add_option("CSV", convert_in, "Pairs CSV")->required()->check(CLI::ExistingFile);
  convert_cmd->add_option("OUT", convert_out, "Output file (written to OUT.tmp, renamed into place when done)")
      ->required();
  convert_cmd->add_option("--id-kind", convert_ids, "names, ints, or auto (from the first line)")
      ->check(CLI::IsMember({"auto", "names", "ints"}))
      ->capture_default_str();
  convert_cmd->add_option("--rows", convert_rows, "With integer ids: the vocabulary size (default: largest id + 1)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{0xfffffffe}));

  SynthOptions synth_opts;
  auto* synth_cmd = app.add_subcommand(
      "synth",
      "Write a synthetic pairs file: 'powerlaw' (CEPAIRS1, integer ids with catalogue-like popularity and a few\n"
      "very hot rows; coin-flip labels, for benchmarks) or 'latent' (points with known positions in the unit\n"
      "cube labelled by the tutorial's rule, names item0..; CSV or CEPAIRS1 by OUT's extension, and the\n"
      "true positions in OUT.positions.npy, for checking what training recovers) or 'tree' (the transitive\n"
      "closure of a random tree: (descendant, ancestor) positives named by path, r.0.2; for --head poincare).");
  synth_cmd->add_option("--kind", synth_opts.kind, "powerlaw, latent or tree")
      ->check(CLI::IsMember({"powerlaw", "latent", "tree"}))
      ->required();
  synth_cmd->add_option("--rows", synth_opts.rows, "Rows (distinct ids)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{0xfffffffe}))
      ->capture_default_str();
  synth_cmd->add_option("--pairs", synth_opts.pairs, "Pairs")
      ->check(CLI::Range(uint64_t{1}, uint64_t{4000000000}))
      ->capture_default_str();
  synth_cmd->add_option("--hot-rows", synth_opts.hot_rows, "powerlaw: very hot rows")->capture_default_str();
  synth_cmd->add_option("--hot-fraction", synth_opts.hot_fraction, "powerlaw: share of draws going to the hot rows")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  synth_cmd->add_option("--depth", synth_opts.depth, "tree: levels below the root")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  synth_cmd
      ->add_option("--branching", synth_opts.branching, "tree: mean children per inner node (uniform in [1, 2B - 1])")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  synth_cmd->add_option("--seed", synth_opts.seed, "Seed")->capture_default_str();
  synth_cmd->add_option("--out", synth_opts.out, "Output file: .csv, or anything else for CEPAIRS1")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    if (const std::string typo = typo_message(app, argc, argv); !typo.empty()) {
      fmt::print(stderr, "{}\nRun with --help for more information.\n", typo);
      return e.get_exit_code();
    }
    return app.exit(e);
  }

  try {
    if (*train_cmd) {
      std::signal(SIGINT, on_sigint);
      train_opts.program = argv[0];
      if (!names.resume.empty()) return resume_train(resume_options(*train_cmd, train_opts, names.resume));
      train_opts.stop = &g_stop;
      parse_head(names.head, train_opts.train);
      train_opts.train.optimizer = parse_optimizer(names.optimizer);
      if (train_opts.train.head == Head::poincare) {  // PoincareDefaults where not given
        const PoincareDefaults d;
        if (!train_cmd->count("--optimizer")) train_opts.train.optimizer = d.optimizer;
        if (!train_cmd->count("--init-range")) train_opts.init.embedding_range = d.init_range;
        if (!train_cmd->count("--burn-in")) train_opts.train.burn_in = d.burn_in;
        if (!train_cmd->count("--batch")) train_opts.train.batch = d.batch;
        if (!train_cmd->count("--epochs")) train_opts.train.epochs = d.epochs;
      }
      check_head_optimizer(train_opts.train);
      if (!train_cmd->count("--lr")) train_opts.train.adam.lr = default_learning_rate(train_opts.train.optimizer);
      if (names.deterministic) {
        if (train_opts.train.kernel != "auto" && train_opts.train.kernel != "deterministic")
          throw Error(fmt::format("--deterministic: conflicts with --kernel {} (it selects --kernel deterministic)",
                                  train_opts.train.kernel));
        // The sorted path is deterministic as it is (a fixed summation order everywhere).
        train_opts.train.kernel = needs_sorted_path(train_opts.train, false) ? "sorted" : "deterministic";
      }
      train_opts.init.scheme = parse_init_scheme(names.init);
      train_opts.train.second_moment = parse_second_moment(names.adam_v);
      train_opts.pairs_file_options.ids = parse_id_kind(names.id_kind);
      if (train_opts.out.empty()) train_opts.out = default_run_dir();
      return run_train(train_opts);
    }
    if (*bench_cmd) {
      if (bench_opts.out.empty()) bench_opts.out = default_run_dir("bench-");
      std::string command = "cudaembed";
      for (int i = 1; i < argc; ++i) command += fmt::format(" {}", argv[i]);
      return run_bench(bench_opts, command);
    }
    if (*plot_cmd) {
      check_run_outputs_current(plot_run_dir, argv[0]);
      write_plot(plot_run_dir, plot_opts);
      return 0;
    }
    if (*animate_cmd) {
      check_run_outputs_current(animate_run_dir, argv[0]);
      write_animation(animate_run_dir, animate_opts);
      return 0;
    }
    if (*convert_cmd) {
      const ConvertStats stats =
          convert_pairs_file(convert_in, convert_out, {parse_id_kind(convert_ids), convert_rows});
      spdlog::info("{} -> {}: {} pairs over {} rows, {:.1f} MB in {:.2f} s ({:.0f} MB/s)", convert_in, convert_out,
                   stats.pairs, stats.rows, stats.input_bytes / 1e6, stats.seconds,
                   stats.input_bytes / 1e6 / std::max(stats.seconds, 1e-9));
      return 0;
    }
    if (*synth_cmd) return run_synth(synth_opts);
    if (*neighbours_cmd) {
      check_run_outputs_current(neighbours_opts.run_dir, argv[0]);
      return run_neighbours(neighbours_opts);
    }
    if (*evaluate_cmd) {
      check_run_outputs_current(evaluate_opts.run_dir, argv[0]);
      return run_evaluate(evaluate_opts);
    }
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return 3;
  }
  return 0;
}
