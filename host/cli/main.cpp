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

#include "cudaembed/api.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/version.hpp"
#include "text/input_text.hpp"
#include "cli/command.hpp"

namespace {

using namespace cudaembed;

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
  const std::string program = argv[0], bundled_data = default_colours_csv();
  std::string command_line = "cudaembed";
  for (int i = 1; i < argc; ++i) command_line += fmt::format(" {}", argv[i]);
  const std::vector<Command> commands{
      add_train_command(app, bundled_data, program), add_bench_command(app, bundled_data, command_line),
      add_plot_command(app, program),                add_animate_command(app, program),
      add_neighbours_command(app, program),          add_evaluate_command(app, program),
      add_convert_command(app),                      add_synth_command(app)};

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
    for (const Command& command : commands)
      if (*command.app) return command.run();
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return 3;
  }
  return 0;
}
