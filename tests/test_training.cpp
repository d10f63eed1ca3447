// Training on the CPU backend: batches cover every pair once per epoch, runs are reproducible, the
// loss falls, the embedding orders colours like RGB, and the default init avoids the wrong basin.
#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"

using namespace cudaembed;

namespace {

const ColourTable& colours() { return test::bundled_colours(); }

struct Run {
  std::vector<EpochRecord> history;
  ModelState state;
  double spearman;
};

Run train_colours(TrainConfig cfg, InitScheme scheme, uint64_t pairs = 100000) {
  auto backend = make_cpu_backend(cfg);
  const PairSet p = backend->generate_pairs(colours().rgb, PairSpec{pairs, cfg.seed, 0.2f});
  Run run;
  run.state = init_model(static_cast<int64_t>(colours().size()), cfg.dims, InitSpec{scheme, 0.05f, cfg.seed});
  run.history = train(*backend, p, run.state, cfg.epochs, nullptr);
  run.spearman = evaluate_embedding(run.state.table, cfg.dims, colours().rgb, 3, 10, false).spearman;
  return run;
}

}  // namespace

TEST_CASE("a shuffled epoch holds every pair exactly once in a new order each epoch", "[training]") {
  PairSet pairs;
  for (uint32_t i = 0; i < 1000; ++i) {
    pairs.a.push_back(i);
    pairs.b.push_back(i + 1);
    pairs.label.push_back(static_cast<float>(i % 2));
  }
  CHECK(steps_per_epoch(1000, 64) == 16);      // 15 full batches and one of 40
  CHECK(steps_per_epoch(100000, 512) == 196);  // the tutorial's count
  std::vector<LabelledPair> e5, e6;
  shuffled_epoch(pairs, 42, 5, e5);
  shuffled_epoch(pairs, 42, 6, e6);
  std::vector<int> seen(1000, 0);
  for (const auto& p : e5) {
    ++seen[p.a];
    CHECK(p.b == p.a + 1);  // a pair stays whole
    CHECK(p.label == static_cast<float>(p.a % 2));
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
  int same = 0;
  for (std::size_t i = 0; i < e5.size(); ++i) same += e5[i].a == e6[i].a;
  CHECK(same < 20);
}

TEST_CASE("the CPU backend is bit-reproducible for a seed", "[training]") {
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.seed = 5;
  const Run a = train_colours(cfg, InitScheme::robust, 20000);
  const Run b = train_colours(cfg, InitScheme::robust, 20000);
  CHECK(a.state.table == b.state.table);
  CHECK(a.state.table_v == b.state.table_v);
  CHECK(a.history.back().metrics.loss_sum == b.history.back().metrics.loss_sum);
  CHECK(a.state.step == 2 * steps_per_epoch(20000, 512));
}

TEST_CASE("training on the bundled colours lowers the loss and orders pairs like RGB", "[training]") {
  TrainConfig cfg;
  cfg.epochs = 20;
  const Run run = train_colours(cfg, InitScheme::robust);
  const auto& h = run.history;
  INFO("loss epoch 1 " << h.front().metrics.loss() << ", epoch 20 " << h.back().metrics.loss());
  CHECK(h.back().metrics.loss() < 0.9 * h.front().metrics.loss());
  CHECK(h.back().metrics.accuracy() > 0.78);
  // 20 epochs reach 0.82-0.89 over seeds 1-20; the default 500 epochs 0.915 (seed 42). Measured.
  INFO("Spearman " << run.spearman);
  CHECK(run.spearman > 0.75);
}

TEST_CASE("D = 3 normalised trains too", "[training]") {
  TrainConfig cfg;
  cfg.epochs = 10;
  cfg.dims = 3;
  cfg.normalize = true;
  const Run run = train_colours(cfg, InitScheme::robust, 50000);
  CHECK(run.history.back().metrics.loss() < run.history.front().metrics.loss());
  CHECK(std::all_of(run.state.table.begin(), run.state.table.end(), [](float x) { return std::isfinite(x); }));
}

TEST_CASE("seed robustness of the default init versus the Keras init", "[training][seeds]") {
  // The orientation (sign of Spearman) is fixed within the first few epochs and stays: with
  // Keras's init a positive Dense weight stays positive and Spearman sits near -0.3 for good.
  TrainConfig cfg;
  cfg.epochs = 8;
  int robust_right = 0, keras_wrong = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    cfg.seed = seed;
    robust_right += train_colours(cfg, InitScheme::robust).spearman > 0.4;
    keras_wrong += train_colours(cfg, InitScheme::keras).spearman < 0.0;
  }
  INFO("robust right " << robust_right << "/20, keras wrong " << keras_wrong << "/20");
  CHECK(robust_right >= 19);
  CHECK(keras_wrong >= 3);  // the trap is real: measured 11/20 for seeds 1-20
}

TEST_CASE("the robust init draws the Dense weight's sign for the head", "[training][heads]") {
  // A distance is small for similar rows, so its weight starts <= 0; a similarity (dot, and cosine,
  // which is dot on normalised rows) is large for similar rows, so its weight starts >= 0. Same
  // draw, mirrored: the euclidean weight (and so the default run) is the one it always was.
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ModelState euclidean = init_model(20, 2, InitSpec{InitScheme::robust, 0.05f, seed, Head::euclidean});
    const ModelState dot = init_model(20, 2, InitSpec{InitScheme::robust, 0.05f, seed, Head::dot});
    const ModelState keras_dot = init_model(20, 2, InitSpec{InitScheme::keras, 0.05f, seed, Head::dot});
    const ModelState keras = init_model(20, 2, InitSpec{InitScheme::keras, 0.05f, seed, Head::euclidean});
    INFO("seed " << seed);
    CHECK(euclidean.dense[0] <= 0.0f);
    CHECK(dot.dense[0] == -euclidean.dense[0]);
    CHECK(dot.table == euclidean.table);
    CHECK(keras_dot.dense[0] == keras.dense[0]);  // --init keras is Keras's draw whatever the head
  }
}
