// CUDA backend against the CPU reference: the same pairs from the device generator, and for every
// kernel variant the same training within float-atomics tolerance, over D, normalisation, both
// second-moment modes and a hot-row case.
#include <algorithm>
#include <initializer_list>
#include <string>
#include <tuple>
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

std::vector<std::string> variants() {
  auto names = cuda_kernel_names();
  names.erase(names.begin());  // "auto"
  return names;
}

// Pairs where most lookups hit row 0: many atomics on one row, and rows missing from batches.
PairSet hot_row_pairs(uint32_t rows, std::size_t count) {
  PairSet p;
  for (std::size_t i = 0; i < count; ++i) {
    p.a.push_back(i % 4 == 3 ? static_cast<uint32_t>(i * 7 % rows) : 0u);
    p.b.push_back(static_cast<uint32_t>(i * 13 % rows));
    p.label.push_back(i % 3 == 0 ? 1.0f : 0.0f);
  }
  return p;
}

struct VariantCase {
  std::string kernel;
  int dims;
  bool normalize;
  SecondMoment moment;
  bool hot;
  int64_t batch = 512;
};

uint32_t rows_of(bool hot) { return hot ? 50 : static_cast<uint32_t>(colours().size()); }

TrainConfig config_of(const VariantCase& c) {
  TrainConfig cfg;
  cfg.dims = c.dims;
  cfg.normalize = c.normalize;
  cfg.second_moment = c.moment;
  cfg.kernel = c.kernel;
  cfg.batch = c.batch;
  cfg.epochs = 2;
  cfg.adam.lr = 0.01f;  // larger steps than the default so differences would show
  return cfg;
}

// Every variant x D x normalisation x second moment x hot row that the variant supports on this
// device: persistent and deterministic refuse tables that do not fit one block's shared memory
// (tested apart, below).
std::vector<VariantCase> supported_cases(std::initializer_list<int> dims) {
  std::vector<VariantCase> cases;
  for (const auto& kernel : variants())
    for (int d : dims)
      for (bool normalize : {false, true})
        for (SecondMoment moment : {SecondMoment::lookups, SecondMoment::rows})
          for (bool hot : {false, true}) {
            const VariantCase c{kernel, d, normalize, moment, hot};
            if (cuda_kernel_supports(kernel, rows_of(hot), config_of(c))) cases.push_back(c);
          }
  return cases;
}

void check_variant_against_cpu(const VariantCase& c) {
  const TrainConfig cfg = config_of(c);
  const uint32_t rows = rows_of(c.hot);
  const PairSet pairs =
      c.hot ? hot_row_pairs(rows, 3000) : make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{5000, 3, 0.2f});
  const ModelState init = init_model(rows, c.dims, InitSpec{InitScheme::robust, 0.05f, 11});

  ModelState cpu = init, gpu = init;
  auto cpu_backend = make_cpu_backend(cfg);
  auto gpu_backend = make_cuda_backend(cfg);
  const auto cpu_hist = train(*cpu_backend, pairs, cpu, cfg.epochs, nullptr);
  const auto gpu_hist = train(*gpu_backend, pairs, gpu, cfg.epochs, nullptr);

  INFO("kernel " << c.kernel << ", D " << c.dims << ", normalize " << c.normalize << ", adam-v "
                 << to_string(c.moment) << ", hot " << c.hot << ", batch " << c.batch);
  // Float atomics add the batch's gradients in another order than the CPU loop: a few ulps per
  // step, carried through ~20 Adam steps whose step size is normalised by sqrt(v).
  const Tolerance tol{2e-5, 1e-3};
  CHECK(gpu.step == cpu.step);
  CHECK_CLOSE(gpu.table, cpu.table, tol);
  CHECK_CLOSE(gpu.table_m, cpu.table_m, (Tolerance{1e-6, 1e-3}));
  CHECK_CLOSE(gpu.table_v, cpu.table_v, (Tolerance{1e-9, 1e-3}));
  CHECK_CLOSE(std::vector<float>(gpu.dense, gpu.dense + 2), std::vector<float>(cpu.dense, cpu.dense + 2), tol);
  for (std::size_t e = 0; e < cpu_hist.size(); ++e) {
    CHECK(gpu_hist[e].metrics.loss() == Approx(cpu_hist[e].metrics.loss()).epsilon(1e-5));
    CHECK(gpu_hist[e].metrics.correct == Approx(cpu_hist[e].metrics.correct).margin(3));
  }
}

}  // namespace

TEST_CASE("kernel auto picks persistent for the colours, sorted for wide rows and graph for small narrow ones",
          "[gpu]") {
  TrainConfig cfg;
  cfg.epochs = 1;
  const PairSet pairs = hot_row_pairs(20, 1000);
  for (const auto& [rows, dims, expected] :
       {std::tuple{646, 2, "persistent"}, std::tuple{20000, 64, "sorted"}, std::tuple{20000, 16, "graph"}}) {
    cfg.dims = dims;
    auto backend = make_cuda_backend(cfg);
    ModelState s = init_model(rows, dims, InitSpec{});
    train(*backend, pairs, s, 1, nullptr);
    CHECK(backend->info().kernel == expected);
  }
}

TEST_CASE("device cuRAND pairs equal host cuRAND pairs bit for bit", "[gpu]") {
  TrainConfig cfg;
  const PairSpec spec{100000, 42, 0.2f};
  const PairSet host = make_cpu_backend(cfg)->generate_pairs(colours().rgb, spec);
  const PairSet device = make_cuda_backend(cfg)->generate_pairs(colours().rgb, spec);
  CHECK(device.a == host.a);
  CHECK(device.b == host.b);
  CHECK(device.label == host.label);
}

TEST_CASE("every kernel variant trains like the CPU reference, small rows", "[gpu][small]") {
  const VariantCase c = GENERATE(from_range(supported_cases({1, 2, 3, 8})));
  check_variant_against_cpu(c);
}

TEST_CASE("persistent trains batches past its 512 compute threads like the CPU reference", "[gpu][small]") {
  // Each compute thread then trains several pairs a step, and the fetch warps load several.
  const int64_t batch = GENERATE(1500, 2048);
  const bool hot = GENERATE(false, true);
  const VariantCase c{"persistent", 2, false, SecondMoment::lookups, hot, batch};
  REQUIRE(cuda_kernel_supports(c.kernel, rows_of(hot), config_of(c)));
  check_variant_against_cpu(c);
}

TEST_CASE("every kernel variant trains like the CPU reference, wide rows", "[gpu]") {
  const VariantCase c = GENERATE(from_range(supported_cases({64, 256})));
  check_variant_against_cpu(c);
}

TEST_CASE("persistent and deterministic refuse a table too big for shared memory, saying so", "[gpu][small]") {
  const std::string kernel = GENERATE("persistent", "deterministic");
  TrainConfig cfg;
  cfg.kernel = kernel;
  cfg.dims = 256;
  cfg.epochs = 1;
  const uint32_t rows = rows_of(false);
  REQUIRE_FALSE(cuda_kernel_supports(kernel, rows, cfg));
  ModelState s = init_model(rows, cfg.dims, InitSpec{});
  const PairSet pairs = hot_row_pairs(rows, 1000);
  const std::string message = test::error_of([&] {
    auto backend = make_cuda_backend(cfg);
    train(*backend, pairs, s, 1, nullptr);
  });
  CHECK_THAT(message, Catch::Contains("--kernel " + kernel + ": cannot train a 646 x 256 table") &&
                          Catch::Contains("use --kernel auto"));
  // What auto picks instead trains it.
  cfg.kernel = "auto";
  CHECK(cuda_kernel_supports("auto", rows, cfg));
}

TEST_CASE("the deterministic kernel repeats bit for bit", "[gpu]") {
  const SecondMoment moment = GENERATE(SecondMoment::lookups, SecondMoment::rows);
  TrainConfig cfg;
  cfg.kernel = "deterministic";
  cfg.second_moment = moment;
  cfg.epochs = 3;
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 5, 0.2f});
  const ModelState init = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
  ModelState first = init, second = init;
  auto one = make_cuda_backend(cfg);
  auto two = make_cuda_backend(cfg);
  const auto h1 = train(*one, pairs, first, cfg.epochs, nullptr);
  const auto h2 = train(*two, pairs, second, cfg.epochs, nullptr);
  CHECK(first.table == second.table);
  CHECK(first.table_v == second.table_v);
  CHECK(first.dense[0] == second.dense[0]);
  CHECK(h1.back().metrics.loss_sum == h2.back().metrics.loss_sum);
}

TEST_CASE("the persistent kernels stamp their phases when asked, and train the same", "[gpu][small]") {
  const std::string kernel = GENERATE("persistent", "deterministic");
  TrainConfig cfg;
  cfg.kernel = kernel;
  cfg.epochs = 2;
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 5, 0.2f});
  const ModelState init = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
  ModelState plain = init, stamped = init;
  auto quiet = make_cuda_backend(cfg);
  train(*quiet, pairs, plain, cfg.epochs, nullptr);
  CHECK(quiet->phase_report().empty());
  cfg.phase_profile = true;
  auto profiled = make_cuda_backend(cfg);
  train(*profiled, pairs, stamped, cfg.epochs, nullptr);
  const std::string report = profiled->phase_report();
  INFO(report);
  CHECK_THAT(report, Catch::Contains(kernel + " phases over 80 steps"));  // 2 epochs of 40 steps
  CHECK_THAT(report, Catch::Contains("A forward+backward") && Catch::Contains("B optimizer"));
  // The stamps change no result: bit for bit where the kernel is deterministic, else within the
  // parity tolerance.
  if (kernel == "deterministic")
    CHECK(stamped.table == plain.table);
  else
    CHECK_CLOSE(stamped.table, plain.table, (Tolerance{2e-5, 1e-3}));
}

// ---- The deterministic kernel's phase B: a stable block radix sort of the step's lookups by row
// (persistent_kernel.cu), up to 2048 pairs a batch; beyond that, the scan of every lookup. ----

namespace {

constexpr int64_t kSortPairs = 2048;  // persistent_kernel.cu's kSortPairs: batches it sorts

struct Trained {
  ModelState state;
  double last_loss_sum;
};

Trained train_deterministic(const std::string& device, TrainConfig cfg, const PairSet& pairs, const ModelState& init) {
  cfg.kernel = "deterministic";
  auto backend = device == "cpu" ? make_cpu_backend(cfg) : make_cuda_backend(cfg);
  Trained t{init, 0.0};
  const auto history = train(*backend, pairs, t.state, cfg.epochs, nullptr);
  t.last_loss_sum = history.back().metrics.loss_sum;
  return t;
}

// The deterministic kernel sums each row's lookups in the CPU loop's order; what differs is the
// per-lookup math (the device's expf and logf, FMA contraction, which the host build turns off)
// and the Dense gradient's order: a few ulps per step. So 10x tighter than the atomics variants'
// tolerance, over one epoch. Not yet measured on a device: widen it with the measured worst case
// if the H200 disagrees, not past the sweep's.
void check_close_to_cpu(const ModelState& gpu, const ModelState& cpu) {
  CHECK(gpu.step == cpu.step);
  CHECK_CLOSE(gpu.table, cpu.table, (Tolerance{2e-6, 1e-4}));
  CHECK_CLOSE(gpu.table_m, cpu.table_m, (Tolerance{1e-7, 1e-4}));
  CHECK_CLOSE(gpu.table_v, cpu.table_v, (Tolerance{1e-10, 1e-4}));
  CHECK_CLOSE(std::vector<float>(gpu.dense, gpu.dense + 2), std::vector<float>(cpu.dense, cpu.dense + 2),
              (Tolerance{2e-6, 1e-4}));
}

}  // namespace

TEST_CASE("the deterministic kernel trains like the CPU reference within a tight tolerance", "[gpu]") {
  const SecondMoment moment = GENERATE(SecondMoment::lookups, SecondMoment::rows);
  const int dims = GENERATE(2, 8);
  TrainConfig cfg;
  cfg.dims = dims;
  cfg.second_moment = moment;
  cfg.epochs = 1;
  cfg.adam.lr = 0.01f;
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{5000, 3, 0.2f});
  const ModelState init =
      init_model(static_cast<int64_t>(colours().size()), dims, InitSpec{InitScheme::robust, 0.05f, 11});
  INFO("D " << dims << ", adam-v " << to_string(moment));
  REQUIRE(cuda_kernel_supports("deterministic", init.rows, cfg));
  check_close_to_cpu(train_deterministic("cuda", cfg, pairs, init).state,
                     train_deterministic("cpu", cfg, pairs, init).state);
}

TEST_CASE("the deterministic kernel with hot rows and a partial last batch: like the CPU, and bit for bit on repeat",
          "[gpu]") {
  const SecondMoment moment = GENERATE(SecondMoment::lookups, SecondMoment::rows);
  TrainConfig cfg;
  cfg.second_moment = moment;
  cfg.epochs = 1;
  cfg.batch = 512;
  cfg.adam.lr = 0.01f;
  const uint32_t rows = 50;
  const PairSet pairs = hot_row_pairs(rows, 3000);  // 5 batches of 512 and one of 440; row 0 in ~3/8 of lookups
  const ModelState init = init_model(rows, cfg.dims, InitSpec{InitScheme::robust, 0.05f, 11});
  INFO("adam-v " << to_string(moment));
  const Trained first = train_deterministic("cuda", cfg, pairs, init);
  const Trained second = train_deterministic("cuda", cfg, pairs, init);
  CHECK(first.state.table == second.state.table);
  CHECK(first.state.table_v == second.state.table_v);
  CHECK(first.last_loss_sum == second.last_loss_sum);
  check_close_to_cpu(first.state, train_deterministic("cpu", cfg, pairs, init).state);
}

// A batch of kSortPairs is sorted and one of kSortPairs + 1 is scanned. Over kSortPairs pairs or
// fewer both are one step an epoch with the same pairs (the shuffle depends on the pair count and
// the seed, not the batch), so the two paths must give the same bits: the sort against the scan
// the kernel had before it.
TEST_CASE("the deterministic kernel's sort gives the scan's bits, at the sort's capacity and beyond it", "[gpu]") {
  const SecondMoment moment = GENERATE(SecondMoment::lookups, SecondMoment::rows);
  const bool hot = GENERATE(false, true);
  const int dims = GENERATE(2, 3);  // 3: the sort's storage needs its alignment padding (12 N D bytes of table)
  // A full batch at the capacity, and a partial one.
  const std::size_t count = GENERATE(std::size_t{kSortPairs}, std::size_t{1500});
  TrainConfig cfg;
  cfg.dims = dims;
  cfg.second_moment = moment;
  cfg.epochs = 4;
  cfg.adam.lr = 0.01f;
  const uint32_t rows = rows_of(hot);
  const PairSet pairs =
      hot ? hot_row_pairs(rows, count) : make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{count, 7, 0.2f});
  const ModelState init = init_model(rows, cfg.dims, InitSpec{InitScheme::robust, 0.05f, 11});
  INFO("adam-v " << to_string(moment) << ", hot " << hot << ", D " << dims << ", pairs " << count);
  cfg.batch = kSortPairs;
  REQUIRE(cuda_kernel_supports("deterministic", rows, cfg));
  const Trained sorted = train_deterministic("cuda", cfg, pairs, init);
  cfg.batch = kSortPairs + 1;
  REQUIRE(cuda_kernel_supports("deterministic", rows, cfg));
  const Trained scanned = train_deterministic("cuda", cfg, pairs, init);
  CHECK(sorted.state.table == scanned.state.table);
  CHECK(sorted.state.table_m == scanned.state.table_m);
  CHECK(sorted.state.table_v == scanned.state.table_v);
  CHECK(sorted.state.dense[0] == scanned.state.dense[0]);
  CHECK(sorted.last_loss_sum == scanned.last_loss_sum);
}

TEST_CASE("the deterministic kernel trains batches beyond the sort's capacity like the CPU reference", "[gpu]") {
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch = 3000;  // scanned: more than kSortPairs; 7 steps, the last partial
  cfg.adam.lr = 0.01f;
  const PairSet pairs = make_cpu_backend(cfg)->generate_pairs(colours().rgb, PairSpec{20000, 3, 0.2f});
  const ModelState init =
      init_model(static_cast<int64_t>(colours().size()), cfg.dims, InitSpec{InitScheme::robust, 0.05f, 11});
  REQUIRE(cuda_kernel_supports("deterministic", static_cast<uint32_t>(colours().size()), cfg));
  check_close_to_cpu(train_deterministic("cuda", cfg, pairs, init).state,
                     train_deterministic("cpu", cfg, pairs, init).state);
}
