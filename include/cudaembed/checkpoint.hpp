// The full training state on disk, so a killed or interrupted run can continue bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cudaembed/model.hpp"
#include "cudaembed/trainer.hpp"

namespace cudaembed {

// Format: "CEMBCKPT", uint32 version, uint64 header length, the JSON header (config, epoch,
// history, the optimizer arrays' lengths), the float32 arrays (table: N*D; table_m, table_v, row_acc:
// as long as the header says; dense, dense_m, dense_v: 2 each), the int64 row_step array, then the
// FNV-1a 64 hash of everything before it. Version 1 (Adam only: m and v of N*D, no row arrays) is
// still read. The pairs and every epoch's shuffle are pure functions of the seed and the epoch, so
// the epoch is the random generators' whole position.
constexpr uint32_t kCheckpointVersion = 2;

struct Checkpoint {
  std::string config_json;           // the run's options (the caller's format), restored on --resume
  int64_t epoch = 0;                 // whole epochs completed
  ModelState state;                  // parameters and Adam state at state.step (inside epoch + 1 after Ctrl-C)
  std::vector<EpochRecord> history;  // one record per completed epoch
  EpochMetrics in_progress;          // sums of the epoch state.step is inside (samples == 0: none)
};

// Writes atomically: a temporary file, fsync, rename over `path`, fsync of the directory.
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and verifies (magic, version, sizes, hash); errors name the file and what is wrong.
Checkpoint read_checkpoint(const std::string& path);

// The header alone (config, epoch, step, history; no arrays, no hash check), read without loading
// the table: how far a run got. nullopt when `path` is missing or not a readable checkpoint.
std::optional<Checkpoint> read_checkpoint_header(const std::string& path);

// Where rank `rank` of a run keeps its checkpoint: RUN/checkpoint.bin for rank 0 (and a run of one
// process), RUN/checkpoint.rank<r>.bin for the other ranks of a data-parallel run.
std::string checkpoint_path(const std::string& run_dir, int rank = 0);

// A run on K ranks checkpoints in two phases, so that a rank killed at any moment leaves a
// checkpoint every rank can resume from: each rank keeps the committed shard as its previous one
// (checkpoint[.rank<r>].prev.bin) while it writes the new one; once every rank has written its
// shard (a barrier), rank 0 commits the step in RUN/checkpoint.manifest.json, which names K and how
// rows are placed. --resume takes the manifest's step from each rank's current or previous shard.
struct ShardManifest {
  int ranks = 1;
  std::string parallel = "data";                              // --parallel
  std::string rows_rule = "replicated: every rank holds every row";  // where row r lives
  int64_t epoch = 0;
  int64_t step = 0;
};
std::string previous_checkpoint_path(const std::string& run_dir, int rank = 0);
std::string shard_manifest_path(const std::string& run_dir);
// Before rank `rank` writes a new shard: keeps its current one as the previous one if the current
// one is at `committed_step` (else the previous one already is, and stays).
void keep_previous_checkpoint(const std::string& run_dir, int rank, int64_t committed_step);
void write_shard_manifest(const std::string& run_dir, const ShardManifest& manifest);
// nullopt when the run has no manifest (a run of one process); throws when it is unreadable.
std::optional<ShardManifest> read_shard_manifest(const std::string& run_dir);
// What --resume continues rank `rank` from: with a manifest, the rank's shard at the committed
// step; without one, checkpoint_path(run_dir, rank) (a run of one process). Errors name the file.
Checkpoint read_committed_checkpoint(const std::string& run_dir, int rank = 0);

}  // namespace cudaembed
