// Held-out evaluation: the seeded validation split, the validation loss, and the link-prediction and
// reconstruction metrics on tables small enough to rank by hand (the expected numbers are worked
// out in the comments, not by the code under test), then against an independent sort-based ranking.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/link_prediction.hpp"
#include "cudaembed/validation.hpp"
#include "data/held_out.hpp"
#include "test_support.hpp"

using namespace cudaembed;
using Catch::Matchers::Contains;

namespace {

PairSet pairs_of(const std::vector<std::tuple<uint32_t, uint32_t, float>>& list) {
  PairSet p;
  for (const auto& [a, b, label] : list) {
    p.a.push_back(a);
    p.b.push_back(b);
    p.label.push_back(label);
  }
  return p;
}

KnownPositives known_of(uint32_t rows, const PairSet& pairs) {
  const PairSet* sets[] = {&pairs};
  return known_positives(rows, sets);
}

// Six points on a line: row r is the 1-D vector x[r]. Squared distances are exact small integers.
const std::vector<float> kLine = {0, 1, 3, 6, 10, -1};

// Positives (0, 1), (0, 2), (3, 4): known(0) = {1, 2}, known(1) = known(2) = {0}, known(3) = {4},
// known(4) = {3}, row 5 has none.
PairSet line_graph() { return pairs_of({{0, 1, 1}, {0, 2, 1}, {3, 4, 1}, {1, 5, 0}}); }

std::vector<RankCounts> line_counts(const std::vector<uint32_t>& sources, const std::vector<uint32_t>& targets,
                                    float dense_weight, const KnownPositives& known, uint32_t sampled = 0,
                                    uint64_t seed = 0) {
  const RankingInput in{kLine, 1, Head::euclidean, dense_weight, sources, targets, &known, sampled, seed};
  return cpu_rank_counts(in);
}

}  // namespace

TEST_CASE("validation split: seeded, reproducible, disjoint, exact counts", "[validation]") {
  // 1000 distinct pairs, 300 positives.
  PairSet all;
  for (uint32_t i = 0; i < 1000; ++i) {
    all.a.push_back(i);
    all.b.push_back(i + 1);
    all.label.push_back(i % 10 < 3 ? 1.0f : 0.0f);
  }
  const ValidationSplit s = split_validation(all, 0.1, 42);
  CHECK(s.held_positives == 30);  // round(0.1 * 300)
  CHECK(s.held_negatives == 70);  // round(0.1 * 700)
  CHECK(s.held_out.size() == 100);
  CHECK(s.train.size() == 900);
  std::set<uint32_t> held(s.held_out.a.begin(), s.held_out.a.end()), trained(s.train.a.begin(), s.train.a.end());
  CHECK(held.size() == 100);
  for (const uint32_t a : held) CHECK(trained.count(a) == 0);  // a held-out pair never trains
  CHECK(held.size() + trained.size() == 1000);                 // and every pair is in one of the two
  for (std::size_t i = 0; i < s.train.size(); ++i) CHECK(s.train.b[i] == s.train.a[i] + 1);  // pairs kept whole
  CHECK(std::is_sorted(s.train.a.begin(), s.train.a.end()));                                 // in the file's order

  const ValidationSplit again = split_validation(all, 0.1, 42);
  CHECK(again.held_out.a == s.held_out.a);
  CHECK(again.train.a == s.train.a);
  const ValidationSplit other = split_validation(all, 0.1, 43);
  CHECK(other.held_out.a != s.held_out.a);
  CHECK(other.held_positives == 30);
}

TEST_CASE("validation split: weights travel with their pairs, and too few positives is an error", "[validation]") {
  PairSet p = pairs_of({{0, 1, 1}, {1, 2, 1}, {2, 3, 1}, {3, 4, 0}});
  p.weight = {0.5f, 1.5f, 2.5f, 3.5f};
  const ValidationSplit s = split_validation(p, 0.34, 1);  // round(0.34 * 3) = 1 positive, round(0.34) = 0 others
  REQUIRE(s.held_out.size() == 1);
  CHECK(s.held_out.weight[0] == 0.5f + s.held_out.a[0]);
  CHECK(s.train.weight.size() == 3);
  CHECK_THAT(test::error_of([&] { split_validation(p, 0.1, 1); }), Contains("holds out none of the 3 positive"));
  CHECK_THAT(test::error_of([&] { split_validation(p, 0.9, 1); }), Contains("leaving none to train on"));
}

TEST_CASE("validation loss: the training BCE on the held-out pairs and fixed negatives", "[validation]") {
  ModelState state;
  state.rows = 6;
  state.dims = 1;
  state.table = kLine;
  state.dense[0] = -0.5f;
  state.dense[1] = 1.0f;
  TrainConfig config;
  config.dims = 1;
  const PairSet held = pairs_of({{0, 1, 1}, {0, 3, 0}});
  const auto samples = validation_samples(held, 0, 7, 6);
  REQUIRE(samples.size() == 2);
  // logit = -0.5 d + 1: pair (0, 1) d = 1, logit 0.5, label 1: log(1 + e^-0.5); pair (0, 3) d = 36,
  // logit -17, label 0: log(1 + e^-17).
  const double expected = (std::log1p(std::exp(-0.5)) + std::log1p(std::exp(-17.0))) / 2;
  CHECK(validation_loss(samples, state, config) == Approx(expected).epsilon(1e-6));

  const auto with_negatives = validation_samples(held, 3, 7, 6);
  REQUIRE(with_negatives.size() == 8);
  const auto again = validation_samples(held, 3, 7, 6);  // drawn once: the same every epoch
  for (std::size_t i = 0; i < 8; ++i) CHECK(again[i].b == with_negatives[i].b);
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(with_negatives[i].a == held.a[i / 4]);
    CHECK(with_negatives[i].b < 6);
    if (i % 4) CHECK(with_negatives[i].label == 0.0f);
  }
}

TEST_CASE("known positives: both directions, deduplicated, no self pairs, negatives left out", "[rank]") {
  const PairSet p = pairs_of({{0, 2, 1}, {2, 0, 1}, {0, 1, 1}, {3, 3, 1}, {1, 3, 0}, {0, 2, 0.9f}});
  const KnownPositives k = known_of(4, p);
  CHECK(k.offsets == std::vector<uint64_t>{0, 2, 3, 4, 4});
  CHECK(k.rows == std::vector<uint32_t>{1, 2, 0, 0});
}

TEST_CASE("link prediction: ranks, AUC and MRR of a hand-ranked table, filtered", "[rank]") {
  const KnownPositives known = known_of(6, line_graph());
  // dense weight < 0: the nearer the better. Squared distances from row 0: r1 1, r2 9, r3 36, r4 100, r5 1.
  // (0 -> 2): candidates r3, r4, r5 (not 0 itself, not its known 1, 2); r5 is nearer: rank 2, AUC 2/3.
  // (0 -> 1): r5 ties the target at 1: rank 1 + 0 + 1/2 = 1.5, AUC (3 - 0.5) / 3 = 5/6.
  // (3 -> 4): from x = 6: r0 36, r1 25, r2 9, r4 16, r5 49; candidates r0, r1, r2, r5; r2 is nearer:
  //           rank 2, AUC 3/4.
  const auto c = line_counts({0, 0, 3}, {2, 1, 4}, -1.0f, known);
  REQUIRE(c.size() == 3);
  CHECK(std::tie(c[0].better, c[0].equal, c[0].candidates) == std::tuple(1u, 0u, 3u));
  CHECK(std::tie(c[1].better, c[1].equal, c[1].candidates) == std::tuple(0u, 1u, 3u));
  CHECK(std::tie(c[2].better, c[2].equal, c[2].candidates) == std::tuple(1u, 0u, 4u));
  const LinkPrediction m = link_prediction(c, 0);
  CHECK(m.queries == 3);
  CHECK(m.mrr == Approx((1 / 2.0 + 1 / 1.5 + 1 / 2.0) / 3));
  CHECK(m.hits1 == 0);  // 1.5 is not <= 1
  CHECK(m.hits10 == 1);
  CHECK(m.hits50 == 1);
  CHECK(m.auc == Approx((2 / 3.0 + 5 / 6.0 + 3 / 4.0) / 3));
  CHECK(m.mean_rank == Approx((2 + 1.5 + 2) / 3.0));

  // Unfiltered (nothing known): (0 -> 2) also has r1 ahead of it and r1, r2 become candidates.
  const KnownPositives none = known_of(6, PairSet{});
  const auto u = line_counts({0}, {2}, -1.0f, none);
  CHECK(std::tie(u[0].better, u[0].equal, u[0].candidates) == std::tuple(2u, 0u, 4u));  // r1, r5 of r1, r3, r4, r5
}

TEST_CASE("link prediction: the Dense weight's sign orders the scores, and a dot head ranks by dot", "[rank]") {
  const KnownPositives known = known_of(6, line_graph());
  // w > 0 on a distance: the model prefers far rows. (0 -> 2), d = 9: r3 (36) and r4 (100) ahead, r5 (1) behind.
  const auto far = line_counts({0}, {2}, 0.7f, known);
  CHECK(std::tie(far[0].better, far[0].equal) == std::tuple(2u, 0u));
  // w = 0: every candidate ties the target.
  const auto flat = line_counts({0}, {2}, 0.0f, known);
  CHECK(std::tie(flat[0].better, flat[0].equal) == std::tuple(0u, 3u));

  // Dot head, w > 0: rows (1,0) (2,0) (0,1) (-1,0); from row 0 the dots are 2, 0, -1. (0 -> 2) has
  // row 1 ahead and row 3 behind: rank 2 of 2 candidates.
  const std::vector<float> table = {1, 0, 2, 0, 0, 1, -1, 0};
  const PairSet p = pairs_of({{0, 2, 1}});
  const KnownPositives k = known_of(4, p);
  const std::vector<uint32_t> s{0}, t{2};
  const auto dot = cpu_rank_counts({table, 2, Head::dot, 1.0f, s, t, &k, 0, 0});
  CHECK(std::tie(dot[0].better, dot[0].equal, dot[0].candidates) == std::tuple(1u, 0u, 2u));
}

TEST_CASE("link prediction: drawn candidates are seeded, uniform and filtered", "[rank]") {
  const KnownPositives known = known_of(6, line_graph());
  // (0 -> 2) over 6000 draws: draws of rows 0, 1, 2 are dropped (about half); of the kept r3, r4, r5
  // only r5 is nearer than the target.
  const auto a = line_counts({0}, {2}, -1.0f, known, 6000, 11);
  const auto b = line_counts({0}, {2}, -1.0f, known, 6000, 11);
  const auto other = line_counts({0}, {2}, -1.0f, known, 6000, 12);
  CHECK(std::tie(a[0].better, a[0].candidates) == std::tie(b[0].better, b[0].candidates));
  CHECK(std::tie(a[0].better, a[0].candidates) != std::tie(other[0].better, other[0].candidates));
  CHECK(a[0].candidates == Approx(3000).margin(200));  // binomial(6000, 1/2): sd 39
  CHECK(a[0].better == Approx(a[0].candidates / 3.0).margin(150));
  CHECK(a[0].equal == 0);
  CHECK(eval_candidates_for(-1, 100000) == 0);
  CHECK(eval_candidates_for(-1, 100001) == kDefaultSampledCandidates);
  CHECK(eval_candidates_for(500, 10) == 500);
  CHECK(eval_candidates_for(0, 1000000) == 0);
}

TEST_CASE("reconstruction: MAP and mean rank of a hand-ranked graph (Nickel & Kiela 2017)", "[rank]") {
  // Neighbours N(0) = {1, 2}, N(1) = N(2) = {0}, N(3) = {4}, N(4) = {3}; row 5 has none. Nearer is better.
  // u = 0: r1 1, r5 1, r2 9, r3 36, r4 100.
  //   v = 1: r5 ties it: rank 1.5; precision at its score: 1 neighbour of 2 rows (r1, r5) = 1/2.
  //   v = 2: r5 ahead: rank 2; precision 2 neighbours of 3 rows = 2/3.  AP = 7/12.
  // u = 1 (x = 1): r0 1 first: rank 1, AP 1.
  // u = 2 (x = 3): r1 4 ahead, r3 9 ties r0 9: rank 2.5, precision 1/3, AP 1/3.
  // u = 3 (x = 6): r2 9 ahead of r4 16: rank 2, AP 1/2.
  // u = 4 (x = 10): r3 16 first: rank 1, AP 1.
  // MAP = (7/12 + 1 + 1/3 + 1/2 + 1) / 5 = 41/60; mean rank = (1.5 + 2 + 1 + 2.5 + 2 + 1) / 6 = 5/3.
  const Reconstruction r = reconstruction(kLine, 1, Head::euclidean, -1.0f, known_of(6, line_graph()), false);
  CHECK(r.nodes == 5);
  CHECK(r.edges == 6);
  CHECK(r.map == Approx(41.0 / 60));
  CHECK(r.mean_rank == Approx(5.0 / 3));
}

// An independent ranking: every candidate's score in double, sorted, the target's position found.
TEST_CASE("link prediction: counts agree with a sort-based ranking on a random table", "[rank]") {
  const uint32_t rows = 300;
  const int dims = 5;
  const std::vector<float> table = test::random_points(rows, dims, 3);
  std::mt19937 rng(8);
  PairSet p;
  for (int i = 0; i < 900; ++i) {
    p.a.push_back(rng() % rows);
    p.b.push_back(rng() % rows);
    p.label.push_back(1.0f);
  }
  const KnownPositives known = known_of(rows, p);
  std::vector<uint32_t> s, t;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p.a[i] != p.b[i]) {
      s.push_back(p.a[i]);
      t.push_back(p.b[i]);
    }
  for (const Head head : {Head::euclidean, Head::dot}) {
    const float w = head == Head::euclidean ? -2.0f : 3.0f;
    auto score = [&](uint32_t a, uint32_t b) {
      double d = 0, dot = 0;
      for (int k = 0; k < dims; ++k) {
        const double x = table[a * dims + k], y = table[b * dims + k];
        d += (x - y) * (x - y);
        dot += x * y;
      }
      return head == Head::euclidean ? -d : dot;
    };
    const auto counts = cpu_rank_counts({table, dims, head, w, s, t, &known, 0, 0});
    for (std::size_t q = 0; q < s.size(); ++q) {
      std::set<uint32_t> excluded{s[q]};
      for (uint64_t k = known.offsets[s[q]]; k < known.offsets[s[q] + 1]; ++k) excluded.insert(known.rows[k]);
      std::vector<double> others;
      for (uint32_t j = 0; j < rows; ++j)
        if (!excluded.count(j)) others.push_back(score(s[q], j));
      std::sort(others.rbegin(), others.rend());
      const double target = score(s[q], t[q]);
      const auto better = std::lower_bound(others.begin(), others.end(), target, std::greater<>()) - others.begin();
      INFO("query " << q << " head " << (head == Head::euclidean ? "euclidean" : "dot"));
      CHECK(counts[q].better == better);
      CHECK(counts[q].equal == 0);  // random floats: no ties
      CHECK(counts[q].candidates == others.size());
    }
  }
}

TEST_CASE("held-out pairs: CSV fields quoted as the pairs reader reads them", "[validation]") {
  CHECK(csv_field("plain name") == "plain name");
  CHECK(csv_field("Grey, Silver") == "\"Grey, Silver\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field(" padded") == "\" padded\"");
  CHECK(csv_field("") == "\"\"");
}
