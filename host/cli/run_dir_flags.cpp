// The flags of the commands that read a run directory: plot, animate, neighbours, evaluate.
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
#include "cli/query_commands.hpp"
#include "cudaembed/plot.hpp"
#include "outputs/run_progress.hpp"

namespace cudaembed {
namespace {

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

Command add_plot_command(CLI::App& app, const std::string& program) {
  auto run_dir = std::make_shared<std::string>();
  auto o = std::make_shared<PlotOptions>();
  auto* cmd = app.add_subcommand(
      "plot",
      "Draw a run's embedding to PREFIX.png and PREFIX.svg: each colour a dot of its own RGB (a pairs file's\n"
      "items in one colour, or one per value of --colour-by). D = 2 as is, D = 3 an orthographic view (on the\n"
      "unit sphere when the run normalised), D > 3 its top two principal components, D = 1 against a fixed\n"
      "jitter.");
  add_plot_options(*cmd, *run_dir, *o);
  return {cmd, [run_dir, o, program] {
            check_run_outputs_current(*run_dir, program);
            write_plot(*run_dir, *o);
            return 0;
          }};
}

Command add_animate_command(CLI::App& app, const std::string& program) {
  auto run_dir = std::make_shared<std::string>();
  auto o = std::make_shared<AnimateOptions>();
  auto* cmd = app.add_subcommand(
      "animate",
      "Render snapshots.npy as a clip (MP4 through ffmpeg, or a looping GIF): frame f of F shows epoch\n"
      "round((f / (F - 1))^2 * epochs), on the axes of the final snapshot.");
  add_animate_options(*cmd, *run_dir, *o);
  return {cmd, [run_dir, o, program] {
            check_run_outputs_current(*run_dir, program);
            write_animation(*run_dir, *o);
            return 0;
          }};
}

Command add_neighbours_command(CLI::App& app, const std::string& program) {
  auto o = std::make_shared<NeighboursOptions>();
  auto* cmd = app.add_subcommand(
      "neighbours",
      "The k colours (or a pairs file's items) nearest to NAME in a run's embedding, with their embedding and\n"
      "RGB distances (a dot or cosine head's run: the k most similar by its dot product or cosine similarity).");
  cmd->alias("neighbors");
  cmd->add_option("RUN_DIR", o->run_dir, "A directory written by cudaembed train")->required();
  cmd
      ->add_option("NAME", o->name,
                   "Name of a colour or item: exactly, any one name of a merged row ('grey' for 'gray, grey'), or "
                   "ignoring case, spaces and hyphens when that finds only one")
      ->required();
  cmd->add_option("-k", o->k, "How many neighbours")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd
      ->add_option("--device", o->device,
                   "Where the query's distances run: auto, cpu or cuda (same result)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  return {cmd, [o, program] {
            check_run_outputs_current(o->run_dir, program);
            return run_neighbours(*o);
          }};
}

Command add_evaluate_command(CLI::App& app, const std::string& program) {
  auto o = std::make_shared<EvaluateOptions>();
  auto* cmd = app.add_subcommand(
      "evaluate",
      "How well a run's embedding orders colours like RGB does: the Spearman rank correlation of all pairwise\n"
      "distances, and the mean overlap of k-nearest-neighbour sets (ties counted fairly). With --pairs FILE, any\n"
      "run: link prediction and graph reconstruction on that file (docs/evaluation.md).");
  cmd->add_option("RUN_DIR", o->run_dir, "A directory written by cudaembed train")->required();
  cmd->add_option("-k", o->k, "Neighbourhood size")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd
      ->add_option("--device", o->device,
                   "Where the all-pairs distances run: auto, cpu or cuda (same result)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON line instead of a sentence");
  cmd
      ->add_option("--pairs", o->pairs,
                   "Link prediction on a pairs file (names or ids of the run's rows): filtered MRR, Hits@1/10/50, "
                   "AUC of its positives, and reconstruction MAP and mean rank (Nickel & Kiela 2017); any run")
      ->check(CLI::ExistingFile)
      ->group("Evaluation");
  cmd
      ->add_option("--filter", o->filters,
                   "With --pairs: more pairs files whose positives are known too, filtered out of the candidates "
                   "(the training file, as PyTorch-BigGraph filters); repeatable")
      ->check(CLI::ExistingFile)
      ->needs("--pairs")
      ->group("Evaluation");
  add_eval_candidates_option(*cmd, o->eval_candidates);
  cmd->get_option("--eval-candidates")->needs("--pairs");
  cmd->add_option("--seed", o->seed, "Seed of the drawn candidates (default: the run's seed)")
      ->needs("--pairs")
      ->group("Evaluation");
  return {cmd, [o, program] {
            check_run_outputs_current(o->run_dir, program);
            return run_evaluate(*o);
          }};
}

}  // namespace cudaembed
