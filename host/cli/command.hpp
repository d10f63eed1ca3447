// The command line's subcommands: each one's flags, bound to the options it runs with, and what it
// does once they are parsed. main.cpp registers them, parses, and runs the one given.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace cudaembed {

struct Command {
  CLI::App* app = nullptr;   // the subcommand; *app is true when the command line named it
  std::function<int()> run;  // after parsing: runs it, returns the exit status (throws Error on bad input)
};

// `program` is argv[0] as typed, for the commands a message suggests; `bundled_data` the colours.
Command add_train_command(CLI::App& app, const std::string& bundled_data, const std::string& program);
Command add_bench_command(CLI::App& app, const std::string& bundled_data, const std::string& command_line);
Command add_plot_command(CLI::App& app, const std::string& program);
Command add_animate_command(CLI::App& app, const std::string& program);
Command add_neighbours_command(CLI::App& app, const std::string& program);
Command add_evaluate_command(CLI::App& app, const std::string& program);
Command add_convert_command(CLI::App& app);
Command add_synth_command(CLI::App& app);

// --eval-candidates, for train and evaluate.
void add_eval_candidates_option(CLI::App& cmd, int64_t& value);

}  // namespace cudaembed
