// The pieces of data-parallel training that need no second process: the split of a batch, the
// rank-order sum (distributed.hpp), the GPUs' exchange of samples by its CPU twin
// (sample_exchange.hpp), and the two-phase checkpoint of K ranks (checkpoint.hpp).
// test_mpi.cpp runs them under mpirun.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>

#include "cudaembed/backend.hpp"
#include "cudaembed/checkpoint.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/sample_exchange.hpp"
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

TEST_CASE("distributed: K ranks take GPUs only where each has one", "[distributed]") {
  TrainConfig config;
  auto comm = std::make_shared<TwinCommunicator>(cuda_device_count());  // a local rank past the machine's GPUs
  // --device auto asks every rank (one all-gather) and trains all of them on the CPU, both ways.
  const auto automatic = make_backend(DeviceChoice::automatic, config, comm);
  CHECK(automatic->info().name == "cpu");
  CHECK(comm->gathers == 1);
  CHECK(make_backend(DeviceChoice::automatic, config, comm, 10)->info().kernel == "sorted, row sharded");
  CHECK(comm->gathers == 2);
  // --device cuda on a rank without a GPU of its own says so, and what works.
  CHECK_THROWS_WITH(make_backend(DeviceChoice::cuda, config, comm), Catch::Contains("--device cpu"));
  CHECK_THROWS_WITH(make_backend(DeviceChoice::cuda, config, comm, 10), Catch::Contains("--device cpu"));
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

// A step's per-sample arrays as a rank holds them after its forward: its own slice's values
// (from `whole`, the values every sample would have), and `unset` elsewhere.
struct StepArrays {
  std::vector<float> lookup_grad, partials;
  SampleExchange view(uint32_t column, uint32_t samples, int dims, int rank, int ranks) {
    return {lookup_grad.data(), partials.data(), column, samples, dims, rank, ranks};
  }
};

StepArrays rank_arrays(const StepArrays& whole, uint32_t column, uint32_t samples, int dims, int rank, int ranks,
                       float unset) {
  StepArrays mine{std::vector<float>(whole.lookup_grad.size(), unset),
                  std::vector<float>(whole.partials.size(), unset)};
  const Slice slice = rank_slice(samples, rank, ranks);
  const auto width = static_cast<std::size_t>(2 * dims);
  for (std::size_t s = slice.begin; s < slice.end; ++s) {
    for (std::size_t k = 0; k < width; ++k) mine.lookup_grad[s * width + k] = whole.lookup_grad[s * width + k];
    for (std::size_t c = 0; c < kSamplePartials; ++c) mine.partials[c * column + s] = whole.partials[c * column + s];
  }
  return mine;
}

}  // namespace

TEST_CASE("distributed: the GPUs' exchange of samples puts every rank's slice in place on every rank",
          "[distributed]") {
  for (const uint32_t column : {1u, 7u, 512u, 513u}) {
    for (const uint32_t samples : {column, column / 2, 1u}) {
      for (const int ranks : {1, 2, 3, 5}) {
        for (const int dims : {0, 1, 3, 8}) {  // 0: the partials only, as row sharding exchanges them
          INFO("column " << column << ", samples " << samples << ", ranks " << ranks << ", D " << dims);
          const auto width = static_cast<std::size_t>(2 * dims);
          StepArrays whole{std::vector<float>(column * width), std::vector<float>(kSamplePartials * column)};
          for (std::size_t i = 0; i < whole.lookup_grad.size(); ++i)
            whole.lookup_grad[i] = 1.0f + static_cast<float>(i);
          for (std::size_t i = 0; i < whole.partials.size(); ++i) whole.partials[i] = -1.0f - static_cast<float>(i);
          const uint64_t chunk = exchange_chunk(column, dims, ranks);
          const uint32_t longest = exchange_longest(column, ranks);
          REQUIRE(longest == (column + static_cast<uint32_t>(ranks) - 1) / static_cast<uint32_t>(ranks));
          REQUIRE(chunk == uint64_t{longest} * (width + kSamplePartials));
          std::vector<float> gathered(chunk * static_cast<uint64_t>(ranks), 99.0f);
          for (int r = 0; r < ranks; ++r) {
            StepArrays own = rank_arrays(whole, column, samples, dims, r, ranks, 0.5f);
            pack_chunk(own.view(column, samples, dims, r, ranks), gathered.data() + r * chunk);
            // Past the slice's end the chunk is padding: zeros, never a neighbour's values (here the
            // first padded sample's first partial, which follows the longest x 2D gradients).
            const Slice slice = rank_slice(samples, r, ranks);
            const float* first_pad = gathered.data() + r * chunk + longest * width + (slice.end - slice.begin);
            if (slice.end - slice.begin < longest) CHECK(*first_pad == 0.0f);
          }
          for (int r = 0; r < ranks; ++r) {
            StepArrays own = rank_arrays(whole, column, samples, dims, r, ranks, 0.5f);
            unpack_chunks(own.view(column, samples, dims, r, ranks), gathered.data());
            for (std::size_t s = 0; s < column; ++s) {
              const bool in_step = s < samples;
              for (std::size_t k = 0; k < width; ++k)
                REQUIRE(own.lookup_grad[s * width + k] == (in_step ? whole.lookup_grad[s * width + k] : 0.5f));
              for (std::size_t c = 0; c < kSamplePartials; ++c)
                REQUIRE(own.partials[c * column + s] == (in_step ? whole.partials[c * column + s] : 0.5f));
            }
          }
        }
      }
    }
  }
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
