// The sorted-segment kernels (cuda/sorted_kernels.cu) against their CPU twin (host/sorted_step.cpp):
// every optimizer and head over the instantiated widths, with negatives, pair weights and hot rows
// long enough for the block-per-row kernel; bit-identical repeats; the unsupported-width error.
#include <string>

#include <catch2/catch.hpp>

#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

// Half the draws go to 3 rows: at batch 2048 each takes ~700 lookups a step, past kHotRunLength.
PairSet hot_pairs(uint32_t rows) {
  PairSet p = powerlaw_pairs({rows, 6000, 3, 0.5f, 8});
  p.weight.resize(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) p.weight[i] = 0.5f + static_cast<float>(i % 3);
  return p;
}

void check_sorted_against_cpu(Optimizer optimizer, const std::string& head, int dims) {
  TrainConfig cfg;
  cfg.dims = dims;
  cfg.optimizer = optimizer;
  parse_head(head, cfg);
  cfg.kernel = "sorted";
  cfg.batch = 2048;
  cfg.negatives = 1;
  cfg.adam.lr = optimizer == Optimizer::sgd ? 0.1f : 0.01f;
  const uint32_t rows = 3000;
  const PairSet pairs = hot_pairs(rows);
  const ModelState init = init_model(rows, dims, InitSpec{InitScheme::robust, 0.05f, 11}, optimizer);
  ModelState cpu = init, gpu = init;
  auto cpu_backend = make_cpu_backend(cfg);
  auto gpu_backend = make_cuda_backend(cfg);
  const auto cpu_hist = train(*cpu_backend, pairs, cpu, 2, nullptr);
  const auto gpu_hist = train(*gpu_backend, pairs, gpu, 2, nullptr);
  INFO(to_string(optimizer) << ", head " << head << ", D " << dims);
  // The GPU sums each row's elements across lanes and a hot row's lookups in slices: another
  // order of float additions than the CPU's, a few ulps per step, through 6 normalised steps.
  const Tolerance tol{2e-5, 1e-3};
  CHECK(gpu_backend->info().kernel == "sorted");
  CHECK(gpu.step == cpu.step);
  CHECK_CLOSE(gpu.table, cpu.table, tol);
  CHECK_CLOSE(gpu.table_m, cpu.table_m, (Tolerance{1e-6, 1e-3}));
  CHECK_CLOSE(gpu.table_v, cpu.table_v, (Tolerance{1e-9, 1e-3}));
  CHECK_CLOSE(gpu.row_acc, cpu.row_acc, (Tolerance{1e-9, 1e-3}));
  CHECK(gpu.row_step == cpu.row_step);
  CHECK_CLOSE(std::vector<float>(gpu.dense, gpu.dense + 2), std::vector<float>(cpu.dense, cpu.dense + 2), tol);
  for (std::size_t e = 0; e < cpu_hist.size(); ++e)
    CHECK(gpu_hist[e].metrics.loss() == Approx(cpu_hist[e].metrics.loss()).epsilon(1e-4));
}

}  // namespace

TEST_CASE("sorted kernels train like the CPU sorted step, small rows", "[gpu][small]") {
  const Optimizer optimizer = GENERATE(Optimizer::adam, Optimizer::lazy_adam, Optimizer::sgd, Optimizer::adagrad);
  const std::string head = GENERATE("euclidean", "dot", "cosine");
  const int dims = GENERATE(1, 2, 3, 4, 8);
  check_sorted_against_cpu(optimizer, head, dims);
}

TEST_CASE("sorted kernels train like the CPU sorted step, wide rows", "[gpu]") {
  const Optimizer optimizer = GENERATE(Optimizer::adam, Optimizer::lazy_adam, Optimizer::sgd, Optimizer::adagrad);
  const std::string head = GENERATE("euclidean", "dot", "cosine");
  const int dims = GENERATE(16, 32, 64, 128, 256);
  check_sorted_against_cpu(optimizer, head, dims);
}

TEST_CASE("sorted kernels repeat bit for bit", "[gpu]") {
  const Optimizer optimizer = GENERATE(Optimizer::adam, Optimizer::lazy_adam, Optimizer::adagrad);
  TrainConfig cfg;
  cfg.dims = 64;
  cfg.optimizer = optimizer;
  cfg.kernel = "sorted";
  cfg.batch = 2048;
  const PairSet pairs = hot_pairs(5000);
  const ModelState init = init_model(5000, 64, InitSpec{}, optimizer);
  ModelState first = init, second = init;
  auto one = make_cuda_backend(cfg);
  auto two = make_cuda_backend(cfg);
  const auto h1 = train(*one, pairs, first, 3, nullptr);
  const auto h2 = train(*two, pairs, second, 3, nullptr);
  INFO(to_string(optimizer));
  CHECK(first.table == second.table);
  CHECK(first.table_v == second.table_v);
  CHECK(first.row_acc == second.row_acc);
  CHECK(first.dense[0] == second.dense[0]);
  CHECK(h1.back().metrics.loss_sum == h2.back().metrics.loss_sum);
}

TEST_CASE("sorted kernels name the widths they support", "[gpu][small]") {
  TrainConfig cfg;
  cfg.dims = 5;
  cfg.kernel = "sorted";
  ModelState s = init_model(10, 5, InitSpec{});
  const PairSet pairs = powerlaw_pairs({10, 100, 1, 0.1f, 1});
  CHECK_FALSE(cuda_kernel_supports("sorted", 10, cfg));
  // The backend itself refuses D = 5 when it is made: inside the checked call.
  const std::string message = test::error_of([&] {
    auto backend = make_cuda_backend(cfg);
    train(*backend, pairs, s, 1, nullptr);
  });
  CHECK_THAT(message, Catch::Contains("--dims 5") && Catch::Contains("128 and 256"));
}
