// Options of `cudaembed bench` and the command itself.
#pragma once

#include <string>

#include "cudaembed/config.hpp"

namespace cudaembed {

struct BenchOptions {
  std::string data;  // colour CSV for the colour shapes
  std::string out;   // where bench.json and bench.md go
  bool force = false;
  std::string device = "auto";
  std::string shapes = "default";  // default | large | all | tiny
  std::string kernel = "all";      // a variant name, or all
  int repeats = 5;
  int warmup = 1;      // untimed epochs before each repeat's timed ones
  int64_t epochs = 0;  // timed epochs per repeat; 0: the shape's own
  int threads = 0;             // CPU: TrainConfig::threads
  bool phase_profile = false;  // the persistent kernel's cycles per phase, in the log and bench.md
  int epochs_per_launch = TrainConfig{}.epochs_per_launch;  // CUDA persistent kernels
};

// `command` is the command line, recorded in the outputs.
int run_bench(const BenchOptions& options, const std::string& command);

}  // namespace cudaembed
