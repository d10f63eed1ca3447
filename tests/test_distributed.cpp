// The pieces of data-parallel training that need no second process: the split of a batch, the
// rank-order sum (distributed.hpp), and the two-phase checkpoint of K ranks (checkpoint.hpp).
// test_mpi.cpp runs them under mpirun.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "cudaembed/checkpoint.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "test_support.hpp"

namespace cudaembed::test {

TEST_CASE("distributed: each rank takes a contiguous slice, together the whole batch", "[distributed]") {
  for (const std::size_t count : {0, 1, 5, 512, 513}) {
    for (const int size : {1, 2, 3, 7}) {
      std::size_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const Slice s = rank_slice(count, rank, size);
        CHECK(s.begin == next);
        CHECK(s.end - s.begin >= count / size);
        CHECK(s.end - s.begin <= count / size + 1);
        next = s.end;
      }
      CHECK(next == count);
    }
  }
}

TEST_CASE("distributed: one process sums to itself, and mpirun is noticed by its environment", "[distributed]") {
  const auto comm = make_communicator(false);
  CHECK(comm->size() == 1);
  CHECK(comm->is_root());
  std::vector<float> values{1.5f, -2.0f}, scratch;
  sum_in_rank_order(*comm, std::span<float>(values), scratch);
  CHECK(values == std::vector<float>{1.5f, -2.0f});
  CHECK_FALSE(launched_by_mpi());  // ctest does not run under mpirun
}

namespace {

// Rank `rank`'s shard of a two-rank run at `step`, with the step in its table to tell shards apart.
Checkpoint shard_at(int64_t step) {
  Checkpoint c;
  c.config_json = R"({"options":{},"ranks":2})";
  c.epoch = step / 10;
  c.state = init_model(4, 2, InitSpec{});
  c.state.step = step;
  c.state.table[0] = static_cast<float>(step);
  return c;
}

ShardManifest committing(int64_t step) {
  ShardManifest m;
  m.ranks = 2;
  m.epoch = step / 10;
  m.step = step;
  return m;
}

}  // namespace

TEST_CASE("distributed: a shard written past the committed step leaves the committed one to resume from",
          "[distributed]") {
  TempDir tmp;
  const std::string dir = tmp.path.string();
  // No manifest yet: the ranks never all wrote a shard, and there is nothing to resume.
  write_checkpoint(checkpoint_path(dir, 1), shard_at(10));
  CHECK_THROWS_WITH(read_committed_checkpoint(dir, 1), Catch::Contains("before every rank had written its first"));

  // Step 10 committed; rank 1 keeps it while it writes step 20, and is killed before the commit.
  write_shard_manifest(dir, committing(10));
  keep_previous_checkpoint(dir, 1, 10);
  write_checkpoint(checkpoint_path(dir, 1), shard_at(20));
  CHECK(read_committed_checkpoint(dir, 1).state.table[0] == 10.0f);

  // The resumed run writes step 20 again: the stale current shard is not the committed one, so the
  // previous one stays, until step 20 is committed and becomes the one kept.
  keep_previous_checkpoint(dir, 1, 10);
  CHECK(read_checkpoint(previous_checkpoint_path(dir, 1)).state.step == 10);
  write_checkpoint(checkpoint_path(dir, 1), shard_at(20));
  write_shard_manifest(dir, committing(20));
  CHECK(read_committed_checkpoint(dir, 1).state.step == 20);
  keep_previous_checkpoint(dir, 1, 20);
  CHECK(read_checkpoint(previous_checkpoint_path(dir, 1)).state.step == 20);

  // A manifest naming a step no shard of the rank holds: an error naming the rank and the step.
  write_shard_manifest(dir, committing(30));
  CHECK_THROWS_WITH(read_committed_checkpoint(dir, 1), Catch::Contains("rank 1 has no checkpoint at step 30"));
  const std::optional<ShardManifest> manifest = read_shard_manifest(dir);
  REQUIRE(manifest);
  CHECK(manifest->ranks == 2);
  CHECK(manifest->parallel == "data");
  {
    std::ofstream damaged(shard_manifest_path(dir), std::ios::trunc);
    damaged << "{\"ranks\": 2, \"step\":";
  }
  CHECK_THROWS_WITH(read_shard_manifest(dir),
                    Catch::Contains(shard_manifest_path(dir) + ": unreadable checkpoint manifest"));
  CHECK_THROWS_WITH(read_committed_checkpoint(dir, 1), Catch::Contains("unreadable checkpoint manifest"));
  write_shard_manifest(dir, committing(30));

  // --force over such a run removes every shard and the manifest.
  for (const char* name : {"checkpoint.rank1.bin", "checkpoint.rank1.prev.bin", "checkpoint.manifest.json",
                           "checkpoint.prev.bin", "checkpoint.rank12.prev.bin.tmp"})
    CHECK(is_run_file_name(name));
  CHECK_FALSE(is_run_file_name("checkpoint.rank0.prev.bin"));
}

TEST_CASE("row sharding: row r lives on rank r mod K, and a shard's draw is the whole draw's rows", "[distributed]") {
  InitSpec spec;
  spec.seed = 7;
  const int64_t rows = 11;
  const int dims = 5;  // odd: the rows start at offsets Philox's blocks of four do not
  const ModelState whole = init_model(rows, dims, spec, Optimizer::lazy_adam);
  for (const int ranks : {1, 2, 3, 4}) {
    int64_t held = 0;
    for (int rank = 0; rank < ranks; ++rank) {
      const RowPlacement place{rank, ranks};
      const ModelState shard = init_model_shard(rows, dims, spec, Optimizer::lazy_adam, place);
      REQUIRE(shard.rows == place.local_rows(rows));
      CHECK(shard.table_m.size() == shard.table.size());
      CHECK(shard.row_step.size() == static_cast<std::size_t>(shard.rows));
      CHECK(shard.dense[0] == whole.dense[0]);
      for (int64_t i = 0; i < shard.rows; ++i) {
        const uint64_t row = place.global(static_cast<uint64_t>(i));
        CHECK(place.owner(row) == rank);
        CHECK(place.local(row) == static_cast<uint64_t>(i));
        for (int k = 0; k < dims; ++k) CHECK(shard.table[i * dims + k] == whole.table[row * dims + k]);
      }
      held += shard.rows;
    }
    CHECK(held == rows);
  }
}

TEST_CASE("row sharding: one shard's step is the sorted step, and gathers back to the table", "[distributed]") {
  const auto comm = make_communicator(false);
  TrainConfig config;
  config.dims = 4;
  config.optimizer = Optimizer::adagrad;
  config.negatives = 1;
  const int64_t rows = 9;
  InitSpec spec;
  ModelState plain = init_model(rows, config.dims, spec, config.optimizer);
  ModelState shard = init_model_shard(rows, config.dims, spec, config.optimizer, RowPlacement{0, 1});
  REQUIRE(shard.table == plain.table);
  const std::vector<PairRecord> batch{{0, 3, 1.0f, 1.0f}, {3, 8, 0.0f, 0.5f}, {3, 3, 1.0f, 1.0f}, {5, 1, 0.0f, 2.0f}};
  SortedWorkspace sorted;
  ShardWorkspace sharded;
  EpochMetrics a, b;
  for (int step = 0; step < 3; ++step) {
    cpu_sorted_step(plain, batch, config, sorted, a);
    cpu_sharded_step(shard, rows, batch, config, sharded, b, 1.0f, *comm);
  }
  CHECK(shard.table == plain.table);
  CHECK(shard.row_acc == plain.row_acc);
  CHECK(shard.dense[0] == plain.dense[0]);
  CHECK(a.loss_sum == b.loss_sum);
  CHECK(gather_table(shard, rows, *comm) == plain.table);
}

}  // namespace cudaembed::test
