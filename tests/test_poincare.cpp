// The Poincaré head (math.hpp) and its Riemannian optimizers (host/train/sorted_step.cpp): gradients
// against finite differences in double, near the boundary too; the stable arcosh; rows that stay
// inside the ball whatever the learning rate, a hot row included; one rsgd step by hand; a small
// tree closure recovered end to end; the command line from `synth --kind tree` to `evaluate`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cudaembed/backend.hpp"
#include "cudaembed/config.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/link_prediction.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

// A point of norm `radius` in a random direction.
std::vector<double> point_at(std::mt19937& rng, int dims, double radius) {
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> x(dims);
  double sq = 0;
  for (double& v : x) {
    v = n(rng);
    sq += v * v;
  }
  for (double& v : x) v *= radius / std::sqrt(sq);
  return x;
}

double pair_loss(const std::vector<double>& ea, const std::vector<double>& eb, double w, double b, double label) {
  auto ignore = [](int, double) {};
  return pair_forward_backward<double>(ea.data(), eb.data(), static_cast<int>(ea.size()), false, w, b, label, 1.0,
                                       ignore, ignore, Head::poincare)
      .loss;
}

double max_row_norm(const ModelState& s) {
  double worst = 0;
  for (int64_t r = 0; r < s.rows; ++r) {
    double sq = 0;
    for (int k = 0; k < s.dims; ++k) sq += static_cast<double>(s.table[r * s.dims + k]) * s.table[r * s.dims + k];
    worst = std::max(worst, std::sqrt(sq));
  }
  return worst;
}

TrainConfig poincare_config(Optimizer optimizer, int dims) {
  TrainConfig c;
  c.dims = dims;
  c.head = Head::poincare;
  c.optimizer = optimizer;
  c.kernel = "sorted";
  c.adam.lr = default_learning_rate(optimizer);
  return c;
}

// Reconstruction (MAP, mean rank) of a tree closure trained on the CPU backend from a small ball.
Reconstruction train_tree(const TrainConfig& c, const TreeClosure& tree, int64_t epochs) {
  const auto rows = static_cast<uint32_t>(tree.names.size());
  const float range = PoincareDefaults{}.init_range;
  ModelState s = init_model(rows, c.dims, InitSpec{InitScheme::robust, range, 7, Head::poincare}, c.optimizer);
  auto backend = make_cpu_backend(c);
  train(*backend, tree.pairs, s, epochs, nullptr);
  const PairSet* sets[] = {&tree.pairs};
  return reconstruction(s.table, c.dims, Head::poincare, s.dense[0], known_positives(rows, sets), false);
}

}  // namespace

TEST_CASE("Poincaré gradients match central finite differences in float64", "[math][poincare]") {
  const int dims = GENERATE(1, 2, 3, 10);
  const double radius_a = GENERATE(0.0, 0.3, 0.9, 0.999);
  const double label = GENERATE(0.0, 1.0);
  std::mt19937 rng(99 + dims);
  std::vector<double> ea = point_at(rng, dims, radius_a), eb = point_at(rng, dims, 0.6);
  const double w = -1.3, b = 0.4;
  std::vector<double> ga(dims, 0.0), gb(dims, 0.0);
  const auto r = pair_forward_backward<double>(
      ea.data(), eb.data(), dims, false, w, b, label, 1.0, [&](int k, double g) { ga[k] += g; },
      [&](int k, double g) { gb[k] += g; }, Head::poincare);
  // The distance itself, in closed form.
  double sq = 0, sa = 0, sb = 0;
  for (int k = 0; k < dims; ++k) {
    sq += (ea[k] - eb[k]) * (ea[k] - eb[k]);
    sa += ea[k] * ea[k];
    sb += eb[k] * eb[k];
  }
  CHECK(r.score == Approx(std::acosh(1 + 2 * sq / ((1 - sa) * (1 - sb)))).epsilon(1e-12));

  // Steps a small fraction of the distance to the boundary: the loss curves on the scale 1 - |x|.
  const double h = 1e-6 * (1 - radius_a);
  auto numeric = [&](double& x) {
    const double saved = x;
    x = saved + h;
    const double up = pair_loss(ea, eb, w, b, label);
    x = saved - h;
    const double down = pair_loss(ea, eb, w, b, label);
    x = saved;
    return (up - down) / (2 * h);
  };
  std::vector<double> na, nb;
  for (int k = 0; k < dims; ++k) na.push_back(numeric(ea[k]));
  for (int k = 0; k < dims; ++k) nb.push_back(numeric(eb[k]));
  INFO("dims " << dims << ", |a| " << radius_a << ", label " << label);
  // Central differences: truncation O(h^2 f''') and rounding ~1e-16 |loss| / h; at |a| = 0.999
  // (gradients ~20, curvature on the scale 1e-3) both reach ~1e-6 relative.
  const Tolerance tol{1e-6, 1e-5};
  CHECK_CLOSE(ga, na, tol);
  CHECK_CLOSE(gb, nb, tol);
}

TEST_CASE("the Poincaré gradient of a row with itself is zero, not NaN", "[math][poincare]") {
  const float e[3] = {0.2f, -0.5f, 0.7f};
  float g[6] = {1, 1, 1, 1, 1, 1};
  const auto r = pair_forward_backward<float>(
      e, e, 3, false, -1.0f, 0.0f, 1.0f, 1.0f, [&](int k, float v) { g[k] = v; }, [&](int k, float v) { g[3 + k] = v; },
      Head::poincare);
  CHECK(r.score == 0.0f);
  for (float v : g) CHECK(v == 0.0f);
}

TEST_CASE("arcosh(1 + t) is computed without cancellation", "[math][poincare]") {
  // arcosh(1 + t) = 2 asinh(sqrt(t / 2)) exactly, and that form has no cancellation anywhere; std::acosh(1 + t)
  // would lose t's low bits in 1 + t, and where 1 + t rounds to 1 return 0.
  for (const double t : {1e-30, 1e-20, 1e-12, 1e-6, 1e-3, 0.5, 3.0, 1e4, 1e10}) {
    INFO("t " << t);
    const double truth = 2 * std::asinh(std::sqrt(t / 2));
    CHECK(arcosh_1p(t) == Approx(truth).epsilon(1e-14));
    CHECK(arcosh_1p(static_cast<float>(t)) == Approx(truth).epsilon(1e-6));
  }
  CHECK(arcosh_1p(0.0) == 0.0);
}

TEST_CASE("row_poincare_distance is the closed form, symmetric, and 0 on the diagonal", "[math][poincare]") {
  const float origin[2] = {0.0f, 0.0f}, x[2] = {0.3f, 0.4f}, y[2] = {-0.6f, 0.1f};
  CHECK(row_poincare_distance(origin, x, 2) == Approx(2 * std::atanh(0.5)).epsilon(1e-6));
  CHECK(row_poincare_distance(x, y, 2) == row_poincare_distance(y, x, 2));
  CHECK(row_poincare_distance(x, x, 2) == 0.0f);
  // Near the boundary the same Euclidean gap is a far longer way.
  const float p[1] = {0.98f}, q[1] = {0.99f}, p0[1] = {0.0f}, q0[1] = {0.01f};
  CHECK(row_poincare_distance(p, q, 1) > 30 * row_poincare_distance(p0, q0, 1));
}

TEST_CASE("one rsgd step is the Euclidean gradient times (1 - |x|^2)^2 / 4", "[sparse][poincare]") {
  TrainConfig c = poincare_config(Optimizer::rsgd, 2);
  ModelState s = init_model(3, 2, InitSpec{InitScheme::robust, 0.5f, 5, Head::poincare}, c.optimizer);
  s.table = {0.5f, 0.1f, -0.2f, 0.6f, 0.0f, 0.0f};
  const ModelState init = s;
  SortedWorkspace work;
  EpochMetrics metrics;
  cpu_sorted_step(s, std::vector<PairRecord>{{0, 1, 1.0f, 1.0f}}, c, work, metrics);
  float ga[2], gb[2];
  pair_forward_backward<float>(
      &init.table[0], &init.table[2], 2, false, init.dense[0], init.dense[1], 1.0f, 1.0f,
      [&](int k, float g) { ga[k] = g; }, [&](int k, float g) { gb[k] = g; }, Head::poincare);
  const float scale_a = (1 - 0.26f) * (1 - 0.26f) / 4, scale_b = (1 - 0.4f) * (1 - 0.4f) / 4;
  for (int k = 0; k < 2; ++k) {
    CHECK(s.table[k] == Approx(init.table[k] - c.adam.lr * scale_a * ga[k]).epsilon(1e-5));
    CHECK(s.table[2 + k] == Approx(init.table[2 + k] - c.adam.lr * scale_b * gb[k]).epsilon(1e-5));
  }
  CHECK(s.table[4] == 0.0f);  // untouched
}

TEST_CASE("every row stays inside the ball, a hot row included", "[sparse][poincare]") {
  const Optimizer optimizer = GENERATE(Optimizer::rsgd, Optimizer::radam);
  const int dims = GENERATE(2, 10);
  TrainConfig c = poincare_config(optimizer, dims);
  c.negatives = 5;
  c.adam.lr = optimizer == Optimizer::rsgd ? 1000.0f : 1.0f;  // far past anything sensible
  // Rows start up to 0.9 sqrt(D) from the origin: most outside the ball, which the first update retracts.
  ModelState s = init_model(50, dims, InitSpec{InitScheme::robust, 0.9f, 3, Head::poincare}, optimizer);
  std::vector<PairRecord> batch;
  for (uint32_t i = 0; i < 200; ++i) batch.push_back({i % 2 ? 0u : i % 50, (i * 7) % 50, 1.0f, 1.0f});  // row 0 hot
  SortedWorkspace work;
  EpochMetrics metrics;
  INFO(to_string(optimizer) << ", D " << dims);
  // Every row is in the batch (b = 7i mod 50 takes every value), so every row is retracted.
  for (int step = 0; step < 300; ++step) cpu_sorted_step(s, batch, c, work, metrics);
  REQUIRE(parameters_finite(s));
  // Norm <= 1 - 1e-5 within float rounding of the retraction's scale.
  CHECK(max_row_norm(s) < 1.0 - 1e-5 + 1e-6);
}

TEST_CASE("a small tree closure is recovered on the CPU", "[training][poincare]") {
  // 89 nodes, 302 pairs; D = 10, 400 epochs of 10 steps (about 0.3 s). Measured: MAP 0.9975 (radam),
  // 0.9979 (rsgd); the threshold leaves room for another platform's rounding.
  const TreeClosure tree = tree_closure({4, 3, 4});
  const Optimizer optimizer = GENERATE(Optimizer::radam, Optimizer::rsgd);
  TrainConfig c = poincare_config(optimizer, 10);
  c.negatives = 10;
  c.batch = 32;
  c.burn_in = 10;
  const Reconstruction r = train_tree(c, tree, 400);
  INFO(to_string(optimizer) << ": " << tree.names.size() << " nodes, " << tree.pairs.size() << " pairs, MAP " << r.map
                            << ", mean rank " << r.mean_rank);
  CHECK(tree.names.size() == 89);
  CHECK(r.map > 0.95);
}

TEST_CASE("the defaults of --head poincare reconstruct a tree closure", "[training][poincare]") {
  // The done-when command of the issue (--negatives 10 --dims 10) with PoincareDefaults and radam's
  // default learning rate, on `synth --kind tree --depth 5 --branching 3 --seed 4`: 240 nodes, 1,057
  // pairs, 100 epochs of 106 steps (about 0.5 s). Measured: MAP 0.998, mean rank 1.6. gensim's
  // PoincareModel reaches 0.881 and 4.8 on this tree (50 epochs); through the command line, batches
  // of 512 (3 steps an epoch, the default before PoincareDefaults.batch) reached 0.565 and 21.7.
  const TreeClosure tree = tree_closure({5, 3, 4});
  const PoincareDefaults d;
  TrainConfig c = poincare_config(d.optimizer, 10);
  c.negatives = 10;
  c.batch = d.batch;
  c.burn_in = d.burn_in;
  const Reconstruction r = train_tree(c, tree, d.epochs);
  INFO(tree.names.size() << " nodes, " << tree.pairs.size() << " pairs, MAP " << r.map << ", mean rank "
                         << r.mean_rank);
  CHECK(tree.names.size() == 240);
  CHECK(r.map > 0.95);
  CHECK(r.mean_rank < 3.0);
}

TEST_CASE("tree_closure holds every (descendant, ancestor) pair once", "[synthetic][poincare]") {
  const TreeClosure t = tree_closure({4, 2, 11});
  uint64_t expected = 0;
  for (uint32_t node = 1; node < t.parent.size(); ++node) {
    CHECK(t.parent[node] < node);  // breadth-first numbering
    for (uint32_t up = node; up != 0; up = t.parent[up]) ++expected;
    CHECK(t.names[node].rfind(t.names[t.parent[node]] + ".", 0) == 0);  // named by path
  }
  CHECK(t.pairs.size() == expected);
  CHECK(t.names[0] == "r");
  // Same seed, same tree; another seed, another tree.
  CHECK(tree_closure({4, 2, 11}).parent == t.parent);
  CHECK(tree_closure({4, 2, 12}).parent != t.parent);
}

TEST_CASE("the Poincaré head goes with the Riemannian optimizers only", "[config][poincare]") {
  TrainConfig c;
  parse_head("poincare", c);
  c.optimizer = Optimizer::adam;
  CHECK_THAT(test::error_of([&] { check_head_optimizer(c); }), Catch::Contains("use radam or rsgd"));
  c.optimizer = Optimizer::radam;
  CHECK_NOTHROW(check_head_optimizer(c));
  c.normalize = true;
  CHECK_THAT(test::error_of([&] { check_head_optimizer(c); }), Catch::Contains("--normalize"));
  TrainConfig e;
  e.optimizer = Optimizer::rsgd;
  CHECK_THAT(test::error_of([&] { check_head_optimizer(e); }), Catch::Contains("for --head poincare only"));
  e.optimizer = Optimizer::adam;
  e.burn_in = 3;
  CHECK_THAT(test::error_of([&] { check_head_optimizer(e); }), Catch::Contains("--burn-in"));
}

TEST_CASE("train --head poincare on a tree closure, then evaluate, neighbours and plot", "[cli][poincare]") {
  test::TempDir dir;
  const std::string closure = (dir.path / "closure.csv").string(), run = (dir.path / "run").string();
  REQUIRE(test::run_cli(fmt::format("synth --kind tree --depth 4 --branching 3 --seed 4 --out {}", closure)).status ==
          0);
  const auto trained = test::run_cli(fmt::format(
      "train --device cpu --pairs-file {} --head poincare --negatives 10 --dims 2 --out {}", closure, run));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const auto json = nlohmann::json::parse(test::slurp(run + "/run.json"));
  CHECK(json["config"]["head"] == "poincare");
  CHECK(json["config"]["optimizer"] == "radam");
  CHECK(json["config"]["burn_in"] == 10);
  CHECK(json["config"]["batch"] == PoincareDefaults{}.batch);  // 10, not the tutorial's 512
  CHECK(json["config"]["epochs"] == PoincareDefaults{}.epochs);

  const auto evaluated = test::run_cli(fmt::format("evaluate {} --pairs {} --device cpu", run, closure));
  INFO(evaluated.output);
  REQUIRE(evaluated.status == 0);
  CHECK_THAT(evaluated.output, Catch::Contains("MAP") && Catch::Contains("mean rank"));

  const auto nearest = test::run_cli(fmt::format("neighbours {} r.0 -k 3 --device cpu", run));
  INFO(nearest.output);
  REQUIRE(nearest.status == 0);
  CHECK_THAT(nearest.output, Catch::Contains("distances are Poincaré"));

  const auto plotted = test::run_cli(fmt::format("plot {} --out {}", run, (dir.path / "disc").string()));
  INFO(plotted.output);
  CHECK(plotted.status == 0);
  CHECK(std::filesystem::exists(dir.path / "disc.png"));

  const auto refused = test::run_cli(
      fmt::format("train --device cpu --pairs-file {} --head poincare --optimizer adam --out {}", closure, run + "2"));
  CHECK(refused.status != 0);
  CHECK_THAT(refused.output, Catch::Contains("use radam or rsgd"));
}
