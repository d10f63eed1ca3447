// GPU link-prediction rank counts against the CPU reference. Both call rank_math.hpp's helpers, whose
// scores accumulate in double with explicitly rounded operations (no FMA contraction on either side)
// and round once to float, so the scores are bit-identical and the counts, being integers of exact
// comparisons, must be equal: the tolerance is zero. The metrics are then computed from the counts by
// the same host code, so they are compared exactly too. A mismatch is a bug, not float noise.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/link_prediction.hpp"
#include "data/held_out.hpp"
#include "test_support.hpp"

using namespace cudaembed;

namespace {

struct Case {
  std::string name;
  std::vector<float> table;  // (rows, dims)
  int dims;
};

// Random rows (no ties), a tie-heavy grid (rows quantised to 3 levels: most scores tie exactly), and
// a wide table.
std::vector<Case> cases(uint32_t rows) {
  std::vector<float> grid = test::random_points(rows, 3, 5);
  for (float& x : grid) x = std::round(x);
  return {{"random 4-D", test::random_points(rows, 4, 1), 4},
          {"grid 3-D (ties)", grid, 3},
          {"random 64-D", test::random_points(rows, 64, 2), 64}};
}

// Positives over `rows` with one hot row: row 0 is paired with 600 others (more than a block's 256
// threads stride over), the rest at random.
PairSet graph(uint32_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  PairSet p;
  for (uint32_t i = 1; i <= 600 && i < rows; ++i) {
    p.a.push_back(0);
    p.b.push_back(i);
    p.label.push_back(1.0f);
  }
  for (uint32_t i = 0; i < 4 * rows; ++i) {
    p.a.push_back(rng() % rows);
    p.b.push_back(rng() % rows);
    p.label.push_back(rng() % 4 ? 1.0f : 0.0f);
  }
  return p;
}

void check_counts_equal(const RankingInput& in) {
  const std::vector<RankCounts> cpu = cpu_rank_counts(in);
  const std::vector<RankCounts> gpu = cuda_rank_counts(in);
  REQUIRE(gpu.size() == cpu.size());
  for (std::size_t q = 0; q < cpu.size(); ++q) {
    INFO("query " << q << " (" << in.sources[q] << " -> " << in.targets[q] << ")");
    REQUIRE(gpu[q].better == cpu[q].better);
    REQUIRE(gpu[q].equal == cpu[q].equal);
    REQUIRE(gpu[q].candidates == cpu[q].candidates);
    REQUIRE(gpu[q].known_at_or_above == cpu[q].known_at_or_above);
  }
}

}  // namespace

TEST_CASE("GPU link-prediction counts equal the CPU's, every row and drawn candidates", "[gpu][small]") {
  const uint32_t rows = 2000;
  const PairSet p = graph(rows, 3);
  const PairSet* sets[] = {&p};
  const KnownPositives known = known_positives(rows, sets);
  std::vector<uint32_t> sources, targets;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (is_positive(p.label[i])) {
      sources.push_back(p.a[i]);
      targets.push_back(p.b[i]);
    }
  const uint32_t sampled = GENERATE(0u, 300u);
  for (const Case& c : cases(rows))
    for (const Head head : {Head::euclidean, Head::dot})
      for (const float w : {-1.5f, 0.0f, 2.0f}) {
        INFO(c.name << ", head " << (head == Head::euclidean ? "euclidean" : "dot") << ", w " << w << ", sampled "
                    << sampled);
        check_counts_equal({c.table, c.dims, head, w, sources, targets, &known, sampled, 9});
      }
}

TEST_CASE("GPU link-prediction counts: more queries than blocks in the grid", "[gpu]") {
  // 70000 queries over 100 rows: the kernel's grid (at most 65535 blocks) strides over them.
  const uint32_t rows = 100;
  const std::vector<float> table = test::random_points(rows, 8, 4);
  PairSet p;
  std::mt19937 rng(6);
  for (int i = 0; i < 70000; ++i) {
    p.a.push_back(rng() % rows);
    p.b.push_back(rng() % rows);
    p.label.push_back(1.0f);
  }
  const PairSet* sets[] = {&p};
  const KnownPositives known = known_positives(rows, sets);
  check_counts_equal({table, 8, Head::euclidean, -1.0f, p.a, p.b, &known, 0, 0});
}

TEST_CASE("GPU link prediction and reconstruction metrics equal the CPU's", "[gpu][small]") {
  const uint32_t rows = 1500;
  const PairSet p = graph(rows, 7);
  const PairSet* sets[] = {&p};
  const KnownPositives known = known_positives(rows, sets);
  for (const Case& c : cases(rows)) {
    INFO(c.name);
    const RankingInput in{c.table, c.dims, Head::euclidean, -1.0f, p.a, p.b, &known, 0, 0};
    const LinkPrediction cpu = link_prediction(rank_counts(in, false), 0);
    const LinkPrediction gpu = link_prediction(rank_counts(in, true), 0);
    CHECK(gpu.mrr == cpu.mrr);
    CHECK(gpu.hits1 == cpu.hits1);
    CHECK(gpu.hits10 == cpu.hits10);
    CHECK(gpu.hits50 == cpu.hits50);
    CHECK(gpu.auc == cpu.auc);
    const Reconstruction rc = reconstruction(c.table, c.dims, Head::dot, 1.0f, known, false);
    const Reconstruction rg = reconstruction(c.table, c.dims, Head::dot, 1.0f, known, true);
    CHECK(rg.map == rc.map);
    CHECK(rg.mean_rank == rc.mean_rank);
  }
}

TEST_CASE("train --validation's held-out ranking is the same on the GPU", "[gpu][small]") {
  // What run_training calls at the end of a CUDA run, against the CPU: every row, and drawn rows.
  const uint32_t rows = 1000;
  PairSet p = graph(rows, 11);
  TrainConfig config;
  config.dims = 16;
  config.negatives = 2;
  const HeldOutPairs held(p, 0.1, config, rows);
  const std::vector<float> table = test::random_points(rows, 16, 12);
  for (const int64_t candidates : {int64_t{0}, int64_t{250}}) {
    INFO("--eval-candidates " << candidates);
    const LinkPrediction cpu = held.rank(table, -1.0f, candidates, false);
    const LinkPrediction gpu = held.rank(table, -1.0f, candidates, true);
    CHECK(gpu.queries == cpu.queries);
    CHECK(gpu.mrr == cpu.mrr);
    CHECK(gpu.hits10 == cpu.hits10);
    CHECK(gpu.auc == cpu.auc);
  }
}
