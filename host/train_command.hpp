// Options of `cudaembed train` and the command itself.
#pragma once

#include <string>

#include "cudaembed/config.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

struct TrainOptions {
  std::string data;    // colour CSV
  std::string out;     // run directory
  bool force = false;  // allow writing into an existing run directory
  std::string device = "auto";
  int64_t log_every = 0;    // epochs between progress lines; 0 = about 25 lines per run
  bool no_plot = false;     // skip plot.png / plot.svg at the end
  bool save_pairs = false;  // also write pair_ids.npy and pair_labels.npy (for peers and audits)
  PairSpec pairs;
  InitSpec init;
  TrainConfig train;
};

// Runs the whole job; throws Error on bad input.
int run_train(const TrainOptions& options);

}  // namespace cudaembed
