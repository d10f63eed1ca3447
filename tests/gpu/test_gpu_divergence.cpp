// The divergence guard on the device and the copies it saves: every kernel path's finiteness flag
// sees a NaN wherever it sits in the table or the Dense layer, train() stops on the flag alone,
// and copying the weights back every epoch or only at the end trains the same table; the
// persistent kernels' many epochs a launch train what one a launch does, and a run stopped inside
// a launch keeps the state of its last epoch.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

const ColourTable& colours() { return test::bundled_colours(); }

// Every kernel path that can train the colours at `dims`, "auto" left out.
std::vector<std::string> kernels_for(int dims) {
  std::vector<std::string> names;
  TrainConfig cfg;
  cfg.dims = dims;
  for (const auto& name : cuda_kernel_names())
    if (name != "auto" && cuda_kernel_supports(name, static_cast<int64_t>(colours().size()), cfg))
      names.push_back(name);
  return names;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("the device finiteness flag finds a NaN anywhere in the table or the Dense layer", "[gpu]") {
  // D = 3: 646 x 3 values, not a multiple of 4, so the check's scalar tail is covered too.
  constexpr int kDims = 3;
  for (const auto& kernel : kernels_for(kDims)) {
    TrainConfig cfg;
    cfg.dims = kDims;
    cfg.kernel = kernel;
    const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{5000, 5, 0.2f});
    const ModelState init = init_model(static_cast<int64_t>(colours().size()), kDims, InitSpec{});
    const std::size_t n = init.table.size();
    // Where to put the NaN: nowhere, the first value, one in the float4 body, the last (the tail).
    for (const long where : {-1L, 0L, static_cast<long>(n / 2 + 1), static_cast<long>(n - 1), -2L}) {
      INFO("kernel " << kernel << ", NaN at " << where << " (-1: none, -2: the Dense bias)");
      ModelState s = init;
      if (where >= 0) s.table[static_cast<std::size_t>(where)] = kNaN;
      if (where == -2) s.dense[1] = kNaN;
      auto backend = make_cuda_backend(cfg);
      backend->load(pairs, s);
      const EpochMetrics m = backend->train_epoch();
      REQUIRE(m.parameters_finite.has_value());
      CHECK(*m.parameters_finite == (where == -1));
    }
  }
}

TEST_CASE("train stops on the device flag in the epoch it went non-finite, with no copy back", "[gpu]") {
  for (const auto& kernel : kernels_for(2)) {
    INFO("kernel " << kernel);
    TrainConfig cfg;
    cfg.kernel = kernel;
    const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{5000, 5, 0.2f});
    ModelState s = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
    s.table.back() = kNaN;
    std::vector<int64_t> seen;
    const EpochCallback record_epoch = [&](const EpochRecord& r, const ModelState&) {
      seen.push_back(r.epoch);
      return true;
    };
    CHECK_THROWS_WITH(
        train(*make_cuda_backend(cfg), pairs, s, 3, record_epoch, 0, nullptr, nullptr, [](int64_t) { return false; }),
        Catch::Contains("training diverged in epoch 1") && Catch::Contains("non-finite"));
    CHECK(seen.empty());
  }
}

TEST_CASE("copying the weights back every epoch or only at the end trains the same table", "[gpu]") {
  for (const auto& kernel : kernels_for(2)) {
    INFO("kernel " << kernel);
    TrainConfig cfg;
    cfg.kernel = kernel;
    cfg.epochs = 3;
    const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 5, 0.2f});
    const ModelState init = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
    ModelState every = init, skipped = init;
    std::vector<float> last_seen;
    const auto h1 = train(*make_cuda_backend(cfg), pairs, every, cfg.epochs,
                          [&](const EpochRecord&, const ModelState& s) {
                            last_seen = s.table;
                            return true;
                          });
    const auto h2 = train(*make_cuda_backend(cfg), pairs, skipped, cfg.epochs, nullptr);
    REQUIRE(h1.size() == h2.size());
    CHECK(last_seen == every.table);  // the last epoch's callback saw the final table
    CHECK(every.step == skipped.step);
    // Bit for bit where the kernel repeats bit for bit; float atomics elsewhere, within parity's tolerance.
    if (kernel == "deterministic" || kernel == "sorted") {
      CHECK(every.table == skipped.table);
      CHECK(every.table_v == skipped.table_v);
      CHECK(every.dense[0] == skipped.dense[0]);
    } else {
      CHECK_CLOSE(every.table, skipped.table, (Tolerance{2e-5, 1e-3}));
    }
  }
}

// ---- Many epochs a launch (the persistent kernels, epoch_snapshots.hpp) ----
namespace {

struct EveryEpoch {
  std::vector<std::vector<float>> tables;  // what the callback saw, epoch by epoch
  std::vector<EpochMetrics> metrics;
  ModelState final;
};

EveryEpoch train_seeing_every_epoch(TrainConfig cfg, const PairSet& pairs, const ModelState& init, int64_t stop_after) {
  EveryEpoch run{{}, {}, init};
  train(*make_cuda_backend(cfg), pairs, run.final, cfg.epochs, [&](const EpochRecord& r, const ModelState& s) {
    run.tables.push_back(s.table);
    run.metrics.push_back(r.metrics);
    CHECK(r.metrics.seconds > 0);
    return r.epoch < stop_after;
  });
  return run;
}

}  // namespace

TEST_CASE("the persistent kernels train the same many epochs a launch as one, and every epoch reaches the callback",
          "[gpu]") {
  const std::string kernel = GENERATE("persistent", "deterministic");
  TrainConfig cfg;
  cfg.kernel = kernel;
  cfg.epochs = 7;  // launches of 1 and 6 epochs, or 1, 3, 3
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 5, 0.2f});
  const ModelState init = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
  std::vector<EveryEpoch> runs;
  for (const int per_launch : {1, 3, 32}) {
    cfg.epochs_per_launch = per_launch;
    runs.push_back(train_seeing_every_epoch(cfg, pairs, init, cfg.epochs));
  }
  for (const auto& run : runs) {
    REQUIRE(run.tables.size() == 7);
    for (std::size_t e = 1; e < 7; ++e) CHECK(run.tables[e] != run.tables[e - 1]);  // each epoch its own snapshot
    CHECK(run.tables.back() == run.final.table);
  }
  for (std::size_t r = 1; r < runs.size(); ++r) {
    INFO("kernel " << kernel << ": one epoch a launch against " << (r == 1 ? 3 : 32));
    if (kernel == "deterministic") {
      CHECK(runs[r].tables == runs[0].tables);
      test::check_same_training(runs[r].final, runs[r].metrics, runs[0].final, runs[0].metrics);
    } else {  // float atomics: within the parity tests' tolerance
      CHECK(runs[r].final.step == runs[0].final.step);
      CHECK_CLOSE(runs[r].final.table, runs[0].final.table, (Tolerance{2e-5, 1e-3}));
      CHECK_CLOSE(runs[r].final.table_v, runs[0].final.table_v, (Tolerance{1e-9, 1e-3}));
    }
  }
}

TEST_CASE("a run stopped inside a launch of many epochs keeps the state of the last epoch it was given", "[gpu]") {
  TrainConfig cfg;
  cfg.kernel = "deterministic";
  cfg.epochs = 10;  // launches of 1 and 9: epoch 4 is inside the second, which trains on to 10
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 5, 0.2f});
  const ModelState init = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
  const EveryEpoch stopped = train_seeing_every_epoch(cfg, pairs, init, 4);
  TrainConfig straight = cfg;
  straight.epochs = 4;
  straight.epochs_per_launch = 1;
  const EveryEpoch four = train_seeing_every_epoch(straight, pairs, init, 4);
  // The moments and the step too: what a checkpoint saves.
  test::check_same_training(stopped.final, stopped.metrics, four.final, four.metrics);
  CHECK(stopped.final.step == 4 * steps_per_epoch(pairs.size(), cfg.batch));
}
