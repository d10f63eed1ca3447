// Checkpoints, the divergence guard, and the real binary killed (SIGKILL) or interrupted (SIGINT)
// and resumed: the outputs must equal an uninterrupted run's, byte for byte, on the CPU backend.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "cudaembed/checkpoint.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"

using namespace cudaembed;
using test::slurp;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// Starts `cudaembed ARGS` with its output to `log`; returns the child's pid.
pid_t spawn(const std::string& args, const std::string& log) {
  const std::string command = std::string("exec '") + CUDAEMBED_BINARY + "' " + args + " > '" + log + "' 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  REQUIRE(pid > 0);
  return pid;
}

int wait_status(pid_t pid) {
  int raw = 0;
  ::waitpid(pid, &raw, 0);
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

int run(const std::string& args, const std::string& log) { return wait_status(spawn(args, log)); }

// Waits until `path` exists (the run has written its first checkpoint), at most 20 s.
void wait_for(const std::string& path) {
  for (int i = 0; i < 2000 && !fs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(fs::exists(path));
}

// The per-epoch numbers of metrics.csv without the wall-clock column.
std::string metrics_without_seconds(const std::string& path) {
  std::istringstream in(slurp(path));
  std::string out;
  for (std::string line; std::getline(in, line);) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

void require_same_outputs(const std::string& reference, const std::string& resumed) {
  for (const char* file : {"embedding.npy", "snapshots.npy", "vectors.tsv", "word2vec.txt"}) {
    INFO(file);
    CHECK(slurp(reference + "/" + file) == slurp(resumed + "/" + file));
  }
  CHECK(metrics_without_seconds(reference + "/metrics.csv") == metrics_without_seconds(resumed + "/metrics.csv"));
  CHECK_FALSE(fs::exists(resumed + "/snapshots.npy.tmp"));
}

// A backend whose loss turns NaN in one epoch, for the guard.
// A backend whose epoch `bad_epoch` (0: none) goes non-finite: its loss (at step 7 of the epoch)
// or only the table's first value, which otherwise holds the epoch count. It counts the trainer's
// copies back, and with `flags` checks its own parameters (EpochMetrics::parameters_finite), as
// the real backends do; without, it leaves that to the trainer.
class FakeBackend final : public Backend {
 public:
  enum class Bad { loss, table };
  FakeBackend(int64_t bad_epoch, Bad what, bool flags) : bad_epoch_(bad_epoch), what_(what), flags_(flags) {}
  BackendInfo info() const override { return {"fake", "fake", "fake"}; }
  PairSet generate_pairs(std::span<const float>, const PairSpec&) override { return {}; }
  void load(const PairSet&, const ModelState& s) override { state_ = s; }
  EpochMetrics train_epoch(const std::atomic<bool>*, const EpochMetrics&) override {
    ++epoch_;
    state_.step += 1;
    const bool bad = epoch_ == bad_epoch_;
    constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
    state_.table[0] = bad && what_ == Bad::table ? kNaN : static_cast<float>(epoch_);
    EpochMetrics m{bad && what_ == Bad::loss ? kNaN : 1.0, 0, 0, 1, 0, bad && what_ == Bad::loss ? 7 : -1};
    if (flags_) m.parameters_finite = !(bad && what_ == Bad::table);
    return m;
  }
  void fetch(ModelState& s, bool with_optimizer) override {
    ++fetches;
    full_fetches += with_optimizer;
    s = state_;
  }
  int fetches = 0, full_fetches = 0;

 private:
  int64_t bad_epoch_, epoch_ = 0;
  Bad what_;
  bool flags_;
  ModelState state_;
};

const std::string kArgs = "train --epochs 200 --pairs 20000 --no-plot --log-every 1000 ";

}  // namespace

TEST_CASE("reliability: a checkpoint reads back exactly and refuses damage", "[reliability]") {
  TempDir tmp;
  Checkpoint c;
  c.config_json = R"({"options":{"dims":3}})";
  c.epoch = 4;
  c.state = init_model(5, 3, InitSpec{});
  c.state.step = 40;
  c.state.table_m[2] = 0.25f;
  c.state.table_v[14] = 1e-9f;
  c.state.dense_m[1] = -3.5f;
  for (int64_t e = 1; e <= 4; ++e) c.history.push_back({e, {1.5 * e, 0.5, 80.0 + e, 100}, 0.01 * e});
  const std::string path = tmp / "checkpoint.bin";
  write_checkpoint(path, c);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const Checkpoint back = read_checkpoint(path);
  CHECK(back.config_json == c.config_json);
  CHECK(back.epoch == 4);
  CHECK(back.state.step == 40);
  CHECK(back.state.table == c.state.table);
  CHECK(back.state.table_m == c.state.table_m);
  CHECK(back.state.table_v == c.state.table_v);
  CHECK(back.state.dense[0] == c.state.dense[0]);
  CHECK(back.state.dense_m[1] == -3.5f);
  REQUIRE(back.history.size() == 4);
  CHECK(back.history[3].metrics.loss_sum == 6.0);
  CHECK(back.history[2].metrics.correct == 83.0);

  std::string bytes = slurp(path);
  auto rewrite = [&](const std::string& content) { std::ofstream(path, std::ios::binary) << content; };
  rewrite(bytes.substr(0, bytes.size() - 20));
  CHECK_THROWS_WITH(read_checkpoint(path), Catch::Contains("checksum") || Catch::Contains("truncated"));
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  rewrite(flipped);
  CHECK_THROWS_WITH(read_checkpoint(path), Catch::Contains("corrupt (checksum mismatch)"));
  rewrite("not a checkpoint at all");
  CHECK_THROWS_WITH(read_checkpoint(path), Catch::Contains("not a cudaembed checkpoint"));
  CHECK_THROWS_WITH(read_checkpoint(tmp / "missing.bin"), Catch::Contains("no checkpoint to resume from"));
}

TEST_CASE("reliability: the divergence guard stops at the first non-finite epoch", "[reliability]") {
  FakeBackend backend(3, FakeBackend::Bad::loss, false);
  ModelState state = init_model(4, 2, InitSpec{});
  std::vector<int64_t> seen;
  CHECK_THROWS_WITH(
      train(backend, {}, state, 10, [&](const EpochRecord& r, const ModelState&) {
        seen.push_back(r.epoch);
        return true;
      }),
      Catch::Contains("diverged in epoch 3") && Catch::Contains("step 7 of the epoch"));
  CHECK(seen == std::vector<int64_t>{1, 2});  // epoch 3 never reaches the callback (or a checkpoint)
}

TEST_CASE("reliability: the weights are copied back only for the epochs that read them", "[reliability]") {
  auto run_with = [](FakeBackend& backend, const EpochCallback& on_epoch, const WeightsWanted& wanted) {
    ModelState state = init_model(4, 2, InitSpec{});
    train(backend, {}, state, 6, on_epoch, 0, nullptr, nullptr, wanted);
    CHECK(state.step == 6);  // the final state is always fetched in full
    CHECK(state.table[0] == 6.0f);
    CHECK(backend.full_fetches == 1);
    return backend.fetches;
  };
  std::vector<int64_t> read;
  const EpochCallback reader = [&](const EpochRecord& r, const ModelState& s) {
    if (r.epoch % 2 == 0) {  // only the epochs it asked for: their own weights
      CHECK(s.step == r.epoch);
      CHECK(s.table[0] == static_cast<float>(r.epoch));
      read.push_back(r.epoch);
    }
    return true;
  };
  const WeightsWanted even = [](int64_t epoch) { return epoch % 2 == 0; };
  {
    FakeBackend backend(0, FakeBackend::Bad::table, true);
    CHECK(run_with(backend, reader, even) == 3 + 1);
    CHECK(read == std::vector<int64_t>{2, 4, 6});
  }
  {
    FakeBackend backend(0, FakeBackend::Bad::table, true);  // no callback: nothing reads the weights until the end
    CHECK(run_with(backend, nullptr, {}) == 1);
  }
  {
    FakeBackend backend(0, FakeBackend::Bad::table, true);  // a callback that does not say: every epoch, as before
    CHECK(run_with(backend, [](const EpochRecord&, const ModelState&) { return true; }, {}) == 6 + 1);
  }
  {
    FakeBackend backend(0, FakeBackend::Bad::table, false);  // no check of its own: the trainer copies to check
    CHECK(run_with(backend, nullptr, [](int64_t) { return false; }) == 6 + 1);
  }
}

TEST_CASE("reliability: the backend's own finiteness flag stops training without a copy back", "[reliability]") {
  for (const bool flags : {true, false}) {
    INFO("backend checks its parameters: " << flags);
    FakeBackend backend(3, FakeBackend::Bad::table, flags);
    ModelState state = init_model(4, 2, InitSpec{});
    std::vector<int64_t> seen;
    const EpochCallback on_epoch = [&](const EpochRecord& r, const ModelState& s) {
      CHECK(std::isfinite(s.table[0]));
      seen.push_back(r.epoch);
      return true;
    };
    CHECK_THROWS_WITH(train(backend, {}, state, 10, on_epoch, 0, nullptr, nullptr, [](int64_t) { return false; }),
                      "training diverged in epoch 3: the parameters became non-finite (NaN or Inf); "
                      "try a smaller --lr");
    CHECK(seen == std::vector<int64_t>{1, 2});
    CHECK(backend.fetches == (flags ? 0 : 3));
  }
}

TEST_CASE("reliability: killed at any moment and resumed, a run ends bit-identical", "[reliability]") {
  TempDir tmp;
  const std::string reference = tmp / "reference";
  REQUIRE(run(kArgs + "--out " + reference, tmp / "reference.log") == 0);

  // Kill points: just after the first checkpoint, and later ones spread over the run.
  for (const int delay_ms : {0, 150, 400}) {
    const std::string dir = tmp / ("killed-" + std::to_string(delay_ms));
    const pid_t pid = spawn(kArgs + "--checkpoint-every 1 --out " + dir, dir + ".log");
    wait_for(dir + "/checkpoint.bin");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    wait_status(pid);
    INFO("killed " << delay_ms << " ms after the first checkpoint; resume log: " << slurp(dir + ".resume.log"));
    REQUIRE(run("train --resume " + dir, dir + ".resume.log") == 0);
    require_same_outputs(reference, dir);
  }
}

TEST_CASE("reliability: Ctrl-C stops with a checkpoint, and --resume finishes the same run", "[reliability]") {
  TempDir tmp;
  const std::string reference = tmp / "reference";
  REQUIRE(run(kArgs + "--out " + reference, tmp / "reference.log") == 0);
  const std::string dir = tmp / "interrupted";
  // A longer run, so that SIGINT lands before the end.
  const pid_t pid = spawn(kArgs + "--out " + dir, tmp / "interrupted.log");
  for (int i = 0; i < 2000 && !fs::exists(dir + "/snapshots.npy.tmp"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGINT);
  const int status = wait_status(pid);
  const std::string log = slurp(tmp / "interrupted.log");
  INFO(log);
  if (status == 0) {
    WARN("the run finished before SIGINT arrived; nothing to resume");
    return;
  }
  CHECK(status == 130);
  // The hint names the binary as it was started, so that it works when pasted into a shell.
  const std::string hint = "checkpoint written; continue with: ";
  const std::string command = std::string(CUDAEMBED_BINARY) + " train --resume " + dir;
  REQUIRE_THAT(log, Catch::Contains(hint + command));
  const int resumed = std::system((command + " > '" + (tmp / "resume.log") + "' 2>&1").c_str());
  REQUIRE((WIFEXITED(resumed) && WEXITSTATUS(resumed) == 0));
  require_same_outputs(reference, dir);
}

TEST_CASE("reliability: divergence and bad resumes are clear errors", "[reliability]") {
  TempDir tmp;
  const std::string dir = tmp / "diverged";
  CHECK(run("train --epochs 5 --pairs 5000 --lr 1e30 --checkpoint-every 1 --out " + dir, tmp / "d.log") == 1);
  CHECK_THAT(slurp(tmp / "d.log"), Catch::Contains("training diverged in epoch 1") && Catch::Contains("--lr"));
  CHECK_FALSE(fs::exists(dir + "/embedding.npy"));

  CHECK(run("train --resume " + (tmp / "nothing-here"), tmp / "r.log") == 1);
  CHECK_THAT(slurp(tmp / "r.log"), Catch::Contains("no checkpoint to resume from"));

  const std::string done = tmp / "done";
  REQUIRE(run("train --epochs 2 --pairs 5000 --no-plot --checkpoint-every 1 --out " + done, tmp / "ok.log") == 0);
  // The settings --resume may change: a finished run just writes its outputs again.
  CHECK(run("train --resume " + done + " --device cpu --kernel fused --log-every 1 --threads 2 --no-plot", tmp / "ok2.log") ==
        0);
  CHECK_THAT(slurp(tmp / "ok2.log"), Catch::Contains("training finished all 2 epochs; writing the outputs again"));
  CHECK(run("train --resume " + done + " --lr 0.5", tmp / "lr.log") == 1);
  CHECK_THAT(slurp(tmp / "lr.log"), Catch::Contains("--lr: cannot be changed when resuming"));
}

TEST_CASE("reliability: --resume refuses a checkpoint that is not run.json's run", "[reliability]") {
  TempDir tmp;
  const std::string mine = tmp / "mine", other = tmp / "other";
  REQUIRE(run("train --epochs 3 --pairs 5000 --no-plot --checkpoint-every 1 --seed 7 --out " + mine, tmp / "a.log") ==
          0);
  REQUIRE(run("train --epochs 2 --pairs 5000 --no-plot --checkpoint-every 1 --seed 1 --out " + other, tmp / "b.log") ==
          0);
  const std::string embedding = slurp(mine + "/embedding.npy");
  fs::copy_file(other + "/checkpoint.bin", mine + "/checkpoint.bin", fs::copy_options::overwrite_existing);
  CHECK(run("train --resume " + mine, tmp / "r.log") == 1);
  const std::string log = slurp(tmp / "r.log");
  INFO(log);
  CHECK_THAT(log, Catch::Contains("checkpoint.bin is not from the run that run.json describes"));
  CHECK_THAT(log, Catch::Contains("epochs 2 in checkpoint.bin, 3 in run.json"));
  CHECK_THAT(log, Catch::Contains("seed 1 in checkpoint.bin, 7 in run.json"));
  CHECK(slurp(mine + "/embedding.npy") == embedding);  // the run's outputs are left as they were
  // Its own checkpoint resumes as before.
  CHECK(run("train --resume " + other, tmp / "own.log") == 0);
}

TEST_CASE("reliability: the CPU backend stops after a step and finishes the same epoch exactly", "[reliability]") {
  TrainConfig cfg;
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(test::bundled_colours().rgb, PairSpec{20000, 9, 0.2f});
  const ModelState init = init_model(static_cast<int64_t>(test::bundled_colours().size()), 2, InitSpec{});

  auto whole = make_cpu_backend(cfg);
  whole->load(pairs, init);
  const EpochMetrics full = whole->train_epoch();
  ModelState expected;
  whole->fetch(expected, true);

  auto first = make_cpu_backend(cfg);
  first->load(pairs, init);
  const std::atomic<bool> stop{true};
  const EpochMetrics part = first->train_epoch(&stop);
  CHECK_FALSE(part.complete);
  CHECK(part.samples == 512);  // one step, then it stopped
  ModelState middle;
  first->fetch(middle, true);
  CHECK(middle.step == 1);

  auto second = make_cpu_backend(cfg);  // as --resume would: a fresh backend from the saved state
  second->load(pairs, middle);
  const EpochMetrics rest = second->train_epoch(nullptr, part);
  ModelState got;
  second->fetch(got, true);
  CHECK(rest.complete);
  CHECK(got.step == expected.step);
  CHECK(got.table == expected.table);
  CHECK(got.table_v == expected.table_v);
  CHECK(rest.loss_sum == full.loss_sum);  // the sums carried on, not restarted
  CHECK(rest.samples == full.samples);
}
