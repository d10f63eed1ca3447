// Data-parallel training under MPI: `mpirun -np 2 cudaembed train` against one process, its
// replicas against each other, a rank killed mid-run, and the errors of what is not built. Built
// where CMake finds MPI (CUDAEMBED_MPI).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cudaembed/backend.hpp"
#include "cudaembed/checkpoint.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/run_dir.hpp"
#include "test_support.hpp"

namespace cudaembed::test {
namespace {

// Open MPI refuses to start as root unless told; CI runs as root. Set here, for these commands
// only. In the sanitizer build the ranks keep AddressSanitizer's checks but not its leak report:
// Open MPI's runtime and its dlopened plugins keep allocations past exit by design, in frames
// LeakSanitizer cannot name (other builds ignore the variable).
const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
    "ASAN_OPTIONS=detect_leaks=0 mpirun -np ";

std::string mpirun(int ranks, const std::string& args) {
  return kMpirun + std::to_string(ranks) + " " + shell_quote(cudaembed_binary()) + " " + args;
}

const std::string kColours = "train --device cpu --pairs 20000 --epochs 6 --no-plot --snapshots none ";

// The process of rank `rank` among those whose command line names `marker`; 0 when none is.
pid_t rank_process(const std::string& marker, int rank) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = slurp(entry.path() / "cmdline");
    if (cmdline.find(marker) == std::string::npos || cmdline.find("cudaembed") == std::string::npos) continue;
    std::string environ = slurp(entry.path() / "environ");
    if (environ.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
      return static_cast<pid_t>(std::stol(pid));
  }
  return 0;
}

}  // namespace

TEST_CASE("distributed: mpirun -np 2 trains the colours bit for bit as one process does, and its replicas agree", "[mpi]") {
  TempDir tmp;
  const RunResult one = run_cli(kColours + "--out " + shell_quote(tmp / "one"));
  REQUIRE(one.status == 0);
  const RunResult two = run_shell(mpirun(2, kColours + "--out " + shell_quote(tmp / "two")) + " 2>&1");
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK_THAT(two.output, Catch::Contains("data parallel on") && Catch::Contains("2 ranks"));
  CHECK_THAT(two.output, !Catch::Contains("rank 1:"));  // rank 1 logs warnings and errors only

  const RunDir a = read_run_dir(tmp / "one"), b = read_run_dir(tmp / "two");
  // Bit for bit: every rank holds the step's lookups as one process computes them, and sums them alike.
  CHECK(a.embedding == b.embedding);
  const Checkpoint alone = read_checkpoint(checkpoint_path(tmp / "one"));
  const Checkpoint ranked = read_checkpoint(checkpoint_path(tmp / "two"));
  REQUIRE(alone.history.size() == ranked.history.size());
  for (std::size_t e = 0; e < alone.history.size(); ++e)
    CHECK(alone.history[e].metrics.loss_sum == ranked.history[e].metrics.loss_sum);
  CHECK_THAT(slurp(tmp / "two/run.json"), Catch::Contains("\"ranks\": 2"));

  // Every rank applied the same updates: its own checkpoint holds the same bits as rank 0's.
  const Checkpoint rank0 = read_checkpoint(checkpoint_path(tmp / "two", 0));
  const Checkpoint rank1 = read_checkpoint(checkpoint_path(tmp / "two", 1));
  CHECK(rank0.state.table == rank1.state.table);
  CHECK(rank0.state.table_m == rank1.state.table_m);
  CHECK(rank0.state.table_v == rank1.state.table_v);
  CHECK(rank0.state.dense[0] == rank1.state.dense[0]);
  CHECK(rank0.state.step == rank1.state.step);
}

TEST_CASE("distributed: --distributed without a launcher joins MPI alone and trains as one process", "[mpi]") {
  TempDir tmp;
  REQUIRE(run_cli(kColours + "--out " + shell_quote(tmp / "plain")).status == 0);
  // MPI's singleton start: a world of one. Open MPI's runtime keeps allocations past exit (see kMpirun).
  const RunResult alone = run_shell("ASAN_OPTIONS=detect_leaks=0 " + shell_quote(cudaembed_binary()) + " " + kColours +
                                    "--distributed --out " + shell_quote(tmp / "alone") + " 2>&1 </dev/null");
  INFO(alone.output);
  REQUIRE(alone.status == 0);
  CHECK(read_run_dir(tmp / "alone").embedding == read_run_dir(tmp / "plain").embedding);
  CHECK_THAT(slurp(tmp / "alone/run.json"), !Catch::Contains("\"ranks\""));
}

TEST_CASE("distributed: a rank killed mid-run ends the job, and K = 2 resumes to the same table", "[mpi]") {
  TempDir tmp;
  const std::string args = "train --device cpu --pairs 20000 --epochs 40 --no-plot --snapshots none "
                           "--checkpoint-every 2 --out ";
  REQUIRE(run_shell(mpirun(2, args + shell_quote(tmp / "whole")) + " >/dev/null 2>&1").status == 0);

  const std::string killed = tmp / "killed";
  const auto start = std::chrono::steady_clock::now();
  const std::string command = mpirun(2, args + shell_quote(killed)) + " >" + shell_quote(tmp / "killed.log") + " 2>&1";
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_t victim = 0;
  // Killed once a checkpoint is committed (a rank killed before that leaves none to resume from).
  while (!std::filesystem::exists(shard_manifest_path(killed)) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  victim = rank_process(killed, 1);
  REQUIRE(victim > 0);
  ::kill(victim, SIGKILL);
  int status = 0;
  ::waitpid(launcher, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(slurp(tmp / "killed.log"));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(seconds < 30);

  const RunResult resumed = run_shell(mpirun(2, "train --resume " + shell_quote(killed)) + " 2>&1");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(read_run_dir(killed).embedding == read_run_dir(tmp / "whole").embedding);

  const RunResult alone = run_cli("train --resume " + shell_quote(killed));
  CHECK(alone.status != 0);
  CHECK_THAT(alone.output, Catch::Contains("written by a run on 2 ranks") && Catch::Contains("mpirun -np 2"));
}

TEST_CASE("distributed: a rank that stops answering ends the job within the collective timeout", "[mpi]") {
  TempDir tmp;
  const std::string dir = tmp / "stuck", log = tmp / "stuck.log";
  const std::string command = mpirun(2, "train --device cpu --pairs 20000 --epochs 5000 --no-plot --snapshots none "
                                        "--collective-timeout 2 --out " + shell_quote(dir)) + " >" + shell_quote(log) + " 2>&1";
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto start = std::chrono::steady_clock::now();
  auto waited = [&] { return std::chrono::steady_clock::now() - start; };
  while (slurp(log).find("training 5000 epochs") == std::string::npos && waited() < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const pid_t victim = rank_process(dir, 1);
  REQUIRE(victim > 0);
  ::kill(victim, SIGSTOP);  // alive, holding its sockets, answering nothing: what a hung node looks like
  const auto stopped = std::chrono::steady_clock::now();
  int status = 0;
  while (::waitpid(launcher, &status, WNOHANG) == 0 && waited() < std::chrono::seconds(90)) {
    if (slurp(log).find("a collective has waited") != std::string::npos) ::kill(victim, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(victim, SIGKILL);
  if (::waitpid(launcher, &status, WNOHANG) == 0) ::waitpid(launcher, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  INFO(slurp(log));
  CHECK_THAT(slurp(log), Catch::Contains("rank 0: a collective has waited"));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(seconds < 30);
}

TEST_CASE("distributed: a shard written past the committed step is set aside, and --resume ends as if never stopped",
          "[mpi]") {
  TempDir tmp;
  const std::string parallel = GENERATE(as<std::string>(), "data", "rows");
  INFO("--parallel " << parallel);
  const std::string args = "train --device cpu --pairs 20000 --epochs 8 --no-plot --snapshots none "
                           "--checkpoint-every 2 --parallel " + parallel + " --out ";
  REQUIRE(run_shell(mpirun(2, args + shell_quote(tmp / "whole")) + " >/dev/null 2>&1").status == 0);
  const std::string cut = tmp / "cut";
  REQUIRE(run_shell(mpirun(2, args + shell_quote(cut)) + " >/dev/null 2>&1").status == 0);

  // What a kill leaves when rank 1 dies after epoch 8's last collective, before writing its shard:
  // rank 0's shard at epoch 8, rank 1's at epoch 6, the manifest at epoch 6, no outputs.
  const Checkpoint committed = read_checkpoint(previous_checkpoint_path(cut, 1));
  REQUIRE(committed.epoch == 6);
  std::filesystem::copy_file(previous_checkpoint_path(cut, 1), checkpoint_path(cut, 1),
                             std::filesystem::copy_options::overwrite_existing);
  std::optional<ShardManifest> manifest = read_shard_manifest(cut);
  REQUIRE(manifest);
  CHECK(manifest->ranks == 2);
  manifest->epoch = committed.epoch;
  manifest->step = committed.state.step;
  write_shard_manifest(cut, *manifest);
  for (const auto& entry : std::filesystem::directory_iterator(cut))
    if (entry.path().filename().string().rfind("checkpoint", 0) != 0) std::filesystem::remove(entry.path());
  REQUIRE(read_checkpoint(checkpoint_path(cut, 0)).epoch == 8);

  const RunResult resumed = run_shell(mpirun(2, "train --resume " + shell_quote(cut)) + " 2>&1");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.output, Catch::Contains("resuming after epoch 6"));
  CHECK(read_run_dir(cut).embedding == read_run_dir(tmp / "whole").embedding);
  CHECK(read_shard_manifest(cut)->epoch == 8);
  CHECK(read_shard_manifest(cut)->parallel == parallel);
  if (parallel == "data")
    CHECK(read_checkpoint(checkpoint_path(cut, 1)).state.table == read_checkpoint(checkpoint_path(cut, 0)).state.table);
}

TEST_CASE("distributed: mpirun -np 2 and 3 train the sorted path bit for bit as one process", "[mpi]") {
  TempDir tmp;
  // A hot row (a fifth of the draws on three rows: long segments), negatives, and weights.
  REQUIRE(run_cli("synth --kind powerlaw --rows 500 --pairs 4000 --hot-rows 3 --hot-fraction 0.2 --out " +
                  shell_quote(tmp / "hot.bin"))
              .status == 0);
  {
    std::ofstream weighted(tmp / "weighted.csv");
    weighted << "a,b,label,weight\n";
    for (int i = 0; i < 600; ++i) weighted << i % 37 << ',' << (i * 7) % 41 << ',' << (i % 3 == 0) << ',' << 0.25 * (1 + i % 4) << '\n';
  }
  const std::string common = "train --device cpu --dims 8 --epochs 3 --batch 100 --no-plot --snapshots none ";
  for (const std::string& options : {"--pairs-file " + shell_quote(tmp / "hot.bin") + " --optimizer lazy-adam --negatives 2",
                                     "--pairs-file " + shell_quote(tmp / "hot.bin") + " --optimizer adagrad --negatives 1",
                                     "--pairs-file " + shell_quote(tmp / "weighted.csv") + " --optimizer adam --head dot"}) {
    INFO(options);
    const RunResult one = run_cli(common + options + " --out " + shell_quote(tmp / "one"));
    REQUIRE(one.status == 0);
    for (const int ranks : {2, 3}) {
      const std::string dir = tmp / ("ranks" + std::to_string(ranks));
      const RunResult many = run_shell(mpirun(ranks, common + options + " --out " + shell_quote(dir)) + " 2>&1");
      INFO(many.output);
      REQUIRE(many.status == 0);
      CHECK(read_run_dir(dir).embedding == read_run_dir(tmp / "one").embedding);
      // The metrics too: every rank sums the samples' values in sample order, as one process does.
      const Checkpoint a = read_checkpoint(checkpoint_path(tmp / "one")), b = read_checkpoint(checkpoint_path(dir));
      REQUIRE(a.history.size() == b.history.size());
      CHECK(a.history.back().metrics.loss_sum == b.history.back().metrics.loss_sum);
      CHECK(a.state.row_step == b.state.row_step);
      CHECK(a.state.row_acc == b.state.row_acc);
      CHECK(read_checkpoint(checkpoint_path(dir, ranks - 1)).state.table == b.state.table);
      std::filesystem::remove_all(dir);
    }
    std::filesystem::remove_all(tmp / "one");
  }
}

TEST_CASE("distributed: mpirun -np 2 on two GPUs trains as one GPU, bit for bit, data parallel and row sharded",
          "[mpi]") {
  if (cuda_device_count() < 2) {
    // NCCL gives each rank a GPU of its own; the one-GPU form of this test is [gpu] (test_gpu_sorted.cpp).
    WARN("not run: this machine has " << cuda_device_count() << " visible GPUs and the test needs 2");
    return;
  }
  TempDir tmp;
  REQUIRE(run_cli("synth --kind powerlaw --rows 3000 --pairs 6000 --hot-rows 3 --hot-fraction 0.3 --out " +
                  shell_quote(tmp / "hot.bin"))
              .status == 0);
  const std::string common =
      "train --device cuda --dims 64 --epochs 3 --batch 2048 --negatives 1 --optimizer "
      "lazy-adam --no-plot --snapshots none --pairs-file " +
      shell_quote(tmp / "hot.bin");
  REQUIRE(run_cli(common + " --out " + shell_quote(tmp / "one")).status == 0);
  const RunResult two = run_shell(mpirun(2, common + " --out " + shell_quote(tmp / "two")) + " 2>&1");
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK_THAT(two.output, Catch::Contains("data parallel on NCCL"));
  const Checkpoint one = read_checkpoint(checkpoint_path(tmp / "one"));
  const Checkpoint rank0 = read_checkpoint(checkpoint_path(tmp / "two")),
                   rank1 = read_checkpoint(checkpoint_path(tmp / "two", 1));
  CHECK(rank0.state.table == one.state.table);
  CHECK(rank1.state.table == one.state.table);
  CHECK(rank0.state.table_m == one.state.table_m);
  CHECK(rank0.history.back().metrics.loss_sum == one.history.back().metrics.loss_sum);
  // Row sharded: the run directory's table (gathered from the shards) is one GPU's.
  const RunResult rows = run_shell(mpirun(2, common + " --parallel rows --out " + shell_quote(tmp / "rows")) + " 2>&1");
  INFO(rows.output);
  REQUIRE(rows.status == 0);
  CHECK_THAT(rows.output, Catch::Contains("row sharded on NCCL"));
  CHECK(read_run_dir(tmp / "rows").embedding == read_run_dir(tmp / "one").embedding);
}

TEST_CASE("distributed: row-sharded ranks train the sorted path bit for bit as one process, each on its rows",
          "[mpi]") {
  TempDir tmp;
  // Hot rows (a fifth of the draws on three of them) and negatives: long segments, rows read by
  // every rank's slice, and rows no sample touches.
  REQUIRE(run_cli("synth --kind powerlaw --rows 600 --pairs 4000 --hot-rows 3 --hot-fraction 0.2 --out " +
                  shell_quote(tmp / "hot.bin"))
              .status == 0);
  const std::string common = "train --device cpu --pairs-file " + shell_quote(tmp / "hot.bin") +
                             " --dims 16 --epochs 3 --batch 100 --no-plot --snapshots none ";
  for (const std::string optimizer : {"lazy-adam", "adagrad"}) {
    INFO(optimizer);
    const std::string options = common + "--optimizer " + optimizer + " --negatives 2";
    REQUIRE(run_cli(options + " --out " + shell_quote(tmp / "one")).status == 0);
    const Checkpoint one = read_checkpoint(checkpoint_path(tmp / "one"));
    for (const int ranks : {2, 3}) {
      const std::string dir = tmp / ("rows" + std::to_string(ranks));
      const RunResult run = run_shell(mpirun(ranks, options + " --parallel rows --out " + shell_quote(dir)) + " 2>&1");
      INFO(run.output);
      REQUIRE(run.status == 0);
      CHECK_THAT(run.output, Catch::Contains("row sharded on " + std::to_string(ranks) + " ranks") &&
                                 Catch::Contains("rank 0 holds " + std::to_string(600 / ranks) + " of 600 rows"));
      CHECK(read_run_dir(dir).embedding == read_run_dir(tmp / "one").embedding);
      // Each rank's shard: its rows of the one-process state, optimizer state included, and no others.
      for (int rank = 0; rank < ranks; ++rank) {
        const Checkpoint shard = read_checkpoint(checkpoint_path(dir, rank));
        const RowPlacement place{rank, ranks};
        REQUIRE(shard.state.rows == place.local_rows(600));
        CHECK(std::filesystem::file_size(checkpoint_path(dir, rank)) <
              std::filesystem::file_size(checkpoint_path(tmp / "one")) / ranks + 4096);
        bool same = true;
        for (int64_t i = 0; i < shard.state.rows; ++i) {
          const uint64_t row = place.global(static_cast<uint64_t>(i));
          for (int k = 0; k < 16; ++k) same &= shard.state.table[i * 16 + k] == one.state.table[row * 16 + k];
          if (optimizer == "adagrad") same &= shard.state.row_acc[i] == one.state.row_acc[row];
          if (optimizer == "lazy-adam") same &= shard.state.row_step[i] == one.state.row_step[row];
        }
        CHECK(same);
        CHECK(shard.history.back().metrics.loss_sum == one.history.back().metrics.loss_sum);
      }
      std::filesystem::remove_all(dir);
    }
    std::filesystem::remove_all(tmp / "one");
  }
}

TEST_CASE("distributed: row-sharded ranks train the colours as one process's sorted path", "[mpi]") {
  TempDir tmp;
  REQUIRE(run_cli(kColours + "--kernel sorted --out " + shell_quote(tmp / "one")).status == 0);
  const RunResult rows = run_shell(mpirun(2, kColours + "--parallel rows --out " + shell_quote(tmp / "rows")) + " 2>&1");
  INFO(rows.output);
  REQUIRE(rows.status == 0);
  CHECK(read_run_dir(tmp / "rows").embedding == read_run_dir(tmp / "one").embedding);
  CHECK_THAT(slurp(tmp / "rows/run.json"), Catch::Contains("\"parallel\": \"rows\""));
  CHECK_THAT(slurp(tmp / "rows/checkpoint.manifest.json"), Catch::Contains("row r on rank r mod K"));
}

TEST_CASE("distributed: what row sharding and the ranks do not cover says so, on every rank, and exits non-zero",
          "[mpi]") {
  TempDir tmp;
  {
    std::ofstream two_rows(tmp / "two_rows.csv");
    two_rows << "a,b,label\n0,1,1\n1,0,0\n";
  }
  const RunResult few = run_shell(
      mpirun(3, "train --device cpu --pairs-file " + shell_quote(tmp / "two_rows.csv") +
                    " --parallel rows --epochs 1 --no-plot --out " + shell_quote(tmp / "few")) + " 2>&1");
  CHECK(few.status != 0);
  CHECK_THAT(few.output, Catch::Contains("3 ranks for a table of 2 rows"));
  const RunResult held = run_shell(
      mpirun(2, "train --device cpu --pairs-file " + shell_quote(tmp / "two_rows.csv") +
                    " --parallel rows --validation 0.5 --epochs 1 --no-plot --out " + shell_quote(tmp / "held")) + " 2>&1");
  CHECK(held.status != 0);
  CHECK_THAT(held.output, Catch::Contains("--validation") && Catch::Contains("--parallel data"));
  // Ranks on GPUs need a GPU each: here none (or one, on a device machine, for two ranks).
  if (cuda_device_count() < 2) {
    const RunResult cuda = run_shell(
        mpirun(2, "train --device cuda --pairs 2000 --epochs 1 --no-plot --out " + shell_quote(tmp / "cuda")) +
        " 2>&1");
    CHECK(cuda.status != 0);
    CHECK_THAT(cuda.output, Catch::Contains("--device cpu"));
    const RunResult rows_on_gpus =
        run_shell(mpirun(2, "train --device cuda --pairs-file " + shell_quote(tmp / "two_rows.csv") +
                                " --parallel rows --epochs 1 --no-plot --out " + shell_quote(tmp / "rows_on_gpus")) +
                  " 2>&1");
    CHECK(rows_on_gpus.status != 0);
    CHECK_THAT(rows_on_gpus.output, Catch::Contains("--device cpu"));
  }
  for (const char* dir : {"few", "held", "rows_on_gpus", "cuda"})
    CHECK_FALSE(std::filesystem::exists(tmp.path / dir / "embedding.npy"));
}

}  // namespace cudaembed::test
