// How far a run directory's training got, from its checkpoint's header, and the resume command to
// say so with: for `train --out`, `plot`, `animate`, `neighbours` and `evaluate` on a run that
// stopped early or can be trained further.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cudaembed {

struct TrainingProgress {
  int64_t epoch = 0;    // the epoch it stopped in (as the interrupt message counts: a started epoch counts)
  int64_t planned = 0;  // the epochs it was to train
  bool finished() const { return epoch >= planned; }
};

// From <run_dir>/checkpoint.bin; nullopt when there is none (or it is unreadable).
std::optional<TrainingProgress> training_progress(const std::string& run_dir);

// "<program> train --resume <run_dir>", each word quoted for a shell.
std::string resume_command(const std::string& program, const std::string& run_dir);

// For the commands that read a run's outputs: an Error when training was interrupted before it
// wrote them (saying how to resume it), a warning when the outputs are older than an interrupted
// continuation (--resume --epochs). Nothing for a finished run.
void check_run_outputs_current(const std::string& run_dir, const std::string& program);

// For `train --out` without --force: an Error for a directory that holds a run with a checkpoint,
// saying how to resume it (interrupted) or train it further (finished). Nothing otherwise.
void refuse_resumable_run(const std::string& run_dir, const std::string& program);

}  // namespace cudaembed
