// Options of `cudaembed train` and the command itself.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "cudaembed/config.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"
#include "cudaembed/pairs_file.hpp"

namespace cudaembed {

struct TrainOptions {
  std::string data;        // colour CSV (when no pairs_file)
  std::string pairs_file;  // the user's own pairs: CSV or CEPAIRS1 (docs/pairs-format.md)
  PairsFileOptions pairs_file_options;
  std::string snapshots = "auto";  // snapshots.npy: all, none, or auto (all when it stays under 1 GiB)
  std::string out;     // run directory
  bool force = false;  // allow writing into an existing run directory
  std::string device = "auto";
  int64_t log_every = 0;                    // epochs between progress lines; 0 = about 25 lines per run
  bool no_plot = false;                     // skip plot.png / plot.svg at the end
  int64_t checkpoint_every = 0;             // epochs between checkpoints; 0 = only when interrupted
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT: stop after this epoch, checkpoint
  bool save_pairs = false;                  // also write pair_ids.npy and pair_labels.npy (for peers and audits)
  std::string program = "cudaembed";        // argv[0] as typed, for commands a run suggests
  double validation = 0;                    // pairs files: the fraction held out (0: none), see held_out.hpp
  int64_t eval_candidates = -1;             // held-out ranking: sampled candidates, 0 all rows, -1 by table size
  bool distributed = false;                 // --distributed: MPI even where no launcher's environment says so
  double collective_timeout = 300;          // seconds a collective may wait for the other ranks
  Parallel parallel = Parallel::data;       // --parallel: how K ranks split the work
  PairSpec pairs;
  InitSpec init;
  TrainConfig train;
};

// What may differ when a run is resumed; everything else comes from its checkpoint.
struct ResumeOptions {
  std::string run_dir;
  std::optional<std::string> device, kernel;
  std::optional<int64_t> log_every;
  std::optional<int> threads;  // never changes a result
  std::optional<int64_t> epochs;  // train to this many epochs instead of the planned number
  bool no_plot = false;
  const std::atomic<bool>* stop = nullptr;
  std::string program = "cudaembed";  // argv[0] as typed
};

// Exit status of a run stopped by SIGINT (128 + SIGINT, as shells report it).
constexpr int kInterruptedExit = 130;

// Runs the whole job; throws Error on bad input. Returns 0, or kInterruptedExit.
int run_train(const TrainOptions& options);

// Continues the run in `run_dir` from its checkpoint, appending to the same outputs; with
// options.epochs, to that many epochs (more or fewer than planned, not fewer than done).
int resume_train(const ResumeOptions& options);

}  // namespace cudaembed
