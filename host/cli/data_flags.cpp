// The flags of the commands that make data or time training: convert-pairs, synth, bench.
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

#include "bench_command.hpp"
#include "cli/command.hpp"
#include "cli/synth_command.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"

namespace cudaembed {
namespace {

struct ConvertOptions {
  std::string in, out, ids = "auto";
  uint64_t rows = 0;
};

int run_convert(const ConvertOptions& o) {
  const ConvertStats stats = convert_pairs_file(o.in, o.out, {parse_id_kind(o.ids), o.rows});
  spdlog::info("{} -> {}: {} pairs over {} rows, {:.1f} MB in {:.2f} s ({:.0f} MB/s)", o.in, o.out, stats.pairs,
               stats.rows, stats.input_bytes / 1e6, stats.seconds,
               stats.input_bytes / 1e6 / std::max(stats.seconds, 1e-9));
  return 0;
}

}  // namespace

Command add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand(
      "convert-pairs",
      "Convert a pairs CSV (a,b[,label[,weight]]) to the binary CEPAIRS1 format, streaming: memory grows with\n"
      "the vocabulary, not the file. Names are stored in the file; train reads it with --pairs-file.");
  cmd->add_option("CSV", o->in, "Pairs CSV")->required()->check(CLI::ExistingFile);
  cmd->add_option("OUT", o->out, "Output file (written to OUT.tmp, renamed into place when done)")
      ->required();
  cmd->add_option("--id-kind", o->ids, "names, ints, or auto (from the first line)")
      ->check(CLI::IsMember({"auto", "names", "ints"}))
      ->capture_default_str();
  cmd->add_option("--rows", o->rows, "With integer ids: the vocabulary size (default: largest id + 1)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{0xfffffffe}));
  return {cmd, [o] { return run_convert(*o); }};
}

Command add_synth_command(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  auto* cmd = app.add_subcommand(
      "synth",
      "Write a synthetic pairs file: 'powerlaw' (CEPAIRS1, integer ids with catalogue-like popularity and a few\n"
      "very hot rows; coin-flip labels, for benchmarks) or 'latent' (points with known positions in the unit\n"
      "cube labelled by the tutorial's rule, names item0..; CSV or CEPAIRS1 by OUT's extension, and the\n"
      "true positions in OUT.positions.npy, for checking what training recovers) or 'tree' (the transitive\n"
      "closure of a random tree: (descendant, ancestor) positives named by path, r.0.2; for --head poincare).");
  cmd->add_option("--kind", o->kind, "powerlaw, latent or tree")
      ->check(CLI::IsMember({"powerlaw", "latent", "tree"}))
      ->required();
  cmd->add_option("--rows", o->rows, "Rows (distinct ids)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{0xfffffffe}))
      ->capture_default_str();
  cmd->add_option("--pairs", o->pairs, "Pairs")
      ->check(CLI::Range(uint64_t{1}, uint64_t{4000000000}))
      ->capture_default_str();
  cmd->add_option("--hot-rows", o->hot_rows, "powerlaw: very hot rows")->capture_default_str();
  cmd->add_option("--hot-fraction", o->hot_fraction, "powerlaw: share of draws going to the hot rows")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--depth", o->depth, "tree: levels below the root")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  cmd
      ->add_option("--branching", o->branching, "tree: mean children per inner node (uniform in [1, 2B - 1])")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str();
  cmd->add_option("--out", o->out, "Output file: .csv, or anything else for CEPAIRS1")->required();
  return {cmd, [o] { return run_synth(*o); }};
}

Command add_bench_command(CLI::App& app, const std::string& bundled_data, const std::string& command_line) {
  auto o = std::make_shared<BenchOptions>();
  o->data = bundled_data;
  auto* cmd = app.add_subcommand(
      "bench",
      "Time training: every CUDA kernel variant (or the CPU backend without a device) on the default run and\n"
      "larger shapes; CUDA events after warm-up, repeated; writes bench.json and bench.md to --out.");
  cmd->add_option("--data", o->data, "Colour CSV for the colour shapes")->capture_default_str();
  cmd->add_option("--out", o->out,
                        "Directory for bench.json and bench.md (default: runs/bench-<timestamp>)");
  cmd->add_flag("--force", o->force, "Write into --out even if results are already there");
  cmd->add_option("--device", o->device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd
      ->add_option("--shapes", o->shapes,
                   "default (the colours, 2-D and 3-D), large (up to 100k rows, D 256, batch 65536), sparse (1M and "
                   "10M rows, D 64 and 128, batch 65536, power-law rows, lazy-adam/sgd/adagrad; GB/s against the "
                   "measured copy bandwidth), all, tiny")
      ->check(CLI::IsMember({"default", "large", "sparse", "all", "tiny"}))
      ->capture_default_str();
  auto kernel_choices = cuda_kernel_names();
  kernel_choices.push_back("all");
  cmd->add_option("--kernel", o->kernel, "Variant to time, or all")
      ->check(CLI::IsMember(kernel_choices))
      ->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "Timed repeats; the median is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed epochs before each repeat")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "Timed epochs per repeat (0: each shape's own)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU: threads sharing each training step (0: as train picks them)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--epochs-per-launch", o->epochs_per_launch,
                  "CUDA persistent kernels: epochs one launch trains, at most (1: a launch an epoch, as before "
                  "issue 12; the first launch trains one)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_flag("--phase-profile", o->phase_profile,
                      "CUDA: stamp clock64() per phase in the persistent kernels and report cycles per step "
                      "(forward+backward, optimizer, barriers); the stamps cost a little time themselves");
  return {cmd, [o, command_line] {
            if (o->out.empty()) o->out = default_run_dir("bench-");
            return run_bench(*o, command_line);
          }};
}

}  // namespace cudaembed
