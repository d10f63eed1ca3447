// Quality metrics and neighbour queries: exact on known geometry, near chance on noise, and
// sensible on a trained embedding.
#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include <catch2/catch.hpp>

#include "cudaembed/distances.hpp"
#include "cudaembed/neighbours.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;

namespace {

const ColourTable& colours() { return test::bundled_colours(); }

// n points of a 3-D grid with 4 levels per axis (RGB quantised): 64 distinct points for n rows,
// so nearly every row has exact twins and most neighbour distances tie.
std::vector<float> grid_points(std::size_t n) {
  std::vector<float> p;
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) p.push_back(std::floor(colours().rgb[i * 3 + c] * 3.999f) / 3.0f);
  return p;
}

// A run holding `embedding` (N, dims) for the bundled colours.
RunDir run_of(std::vector<float> embedding, int dims, bool normalize) {
  RunDir run;
  run.rows = static_cast<int64_t>(colours().size());
  run.dims = dims;
  run.normalize = normalize;
  run.embedding = std::move(embedding);
  run.names = colours().names;
  run.rgb = colours().rgb;
  return run;
}

}  // namespace

TEST_CASE("all-pairs distances are the direct sum of squares in double, rounded once", "[quality]") {
  const int dims = 5;
  const auto p = test::random_points(40, dims, 3);
  const auto d = all_pairs_sq_distances(p, dims, false);
  std::vector<float> direct(40 * 40);
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 40; ++j) {
      double s = 0;
      for (int k = 0; k < dims; ++k) {
        const double diff = double(p[i * dims + k]) - p[j * dims + k];
        s += diff * diff;
      }
      direct[i * 40 + j] = static_cast<float>(s);
    }
  // Exact: the GPU runs the same helper, and a tie here must be a tie there.
  CHECK_CLOSE(d, direct, (test::Tolerance{0, 0}));
}

TEST_CASE("one row of distances is the all-pairs matrix's row, bit for bit", "[quality]") {
  const auto& rgb = colours().rgb;  // 284 rows share their RGB value with another: exact zeros
  const auto grid = grid_points(colours().size());
  const auto noise = test::random_points(colours().size(), 2, 5);
  for (const auto& [points, dims] : {std::pair{&rgb, 3}, std::pair{&grid, 3}, std::pair{&noise, 2}}) {
    const auto all = all_pairs_sq_distances(*points, dims, false);
    const std::size_t n = points->size() / dims;
    for (std::size_t q = 0; q < n; ++q) {
      const auto row = sq_distances_from_row(*points, dims, q, false);
      INFO("dims " << dims << ", row " << q);
      REQUIRE(std::equal(row.begin(), row.end(), all.begin() + q * n, all.begin() + (q + 1) * n));
    }
  }
  CHECK_THROWS_AS(sq_distances_from_row(rgb, 3, colours().size(), false), Error);
  CHECK_THROWS_AS(sq_distances_from_row(rgb, 4, 0, false), Error);  // 646 * 3 values are not rows of 4
}

TEST_CASE("neighbours from one row rank like the full matrix, ties by row index", "[quality]") {
  const bool normalize = GENERATE(false, true);
  // A 3-D embedding on a 4-level grid: most rows have exact twins and most distances tie.
  const RunDir run = run_of(grid_points(colours().size()), 3, normalize);
  const auto all = all_pairs_sq_distances(run.effective_embedding(), 3, false);
  const auto rgb = all_pairs_sq_distances(run.rgb, 3, false);
  const std::size_t n = run.names.size();
  std::size_t tied_at_k = 0;  // queries whose 10th and 11th neighbours tie: the index decides
  for (std::size_t q = 0; q < n; ++q) {
    std::vector<std::size_t> order;
    for (std::size_t j = 0; j < n; ++j)
      if (j != q) order.push_back(j);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return all[q * n + a] < all[q * n + b]; });
    tied_at_k += all[q * n + order[9]] == all[q * n + order[10]];
    const auto nn = nearest_neighbours(run, q, 10, false);
    INFO("normalize " << normalize << ", query " << q);
    REQUIRE(nn.size() == 10);
    for (std::size_t r = 0; r < nn.size(); ++r) {
      REQUIRE(nn[r].row == order[r]);
      REQUIRE(nn[r].embedding_distance == std::sqrt(all[q * n + order[r]]));
      REQUIRE(nn[r].rgb_distance == std::sqrt(rgb[q * n + order[r]]));
    }
  }
  INFO(tied_at_k << " of " << n << " queries tie at the 10th neighbour");
  CHECK(tied_at_k > n / 2);
}

TEST_CASE("an embedding equal to RGB scores Spearman 1 and overlap 1", "[quality]") {
  const auto q = evaluate_embedding(colours().rgb, 3, colours().rgb, 3, 10, false);
  CHECK(q.spearman == Approx(1.0).margin(1e-12));
  CHECK(q.knn_overlap == Approx(1.0).margin(1e-12));
  // Any rotation and scale keeps the ranks: the same two numbers.
  std::vector<float> scaled = colours().rgb;
  for (std::size_t i = 0; i < scaled.size(); i += 3) {
    const float r = scaled[i], g = scaled[i + 1];
    scaled[i] = 2.0f * (0.6f * r - 0.8f * g);
    scaled[i + 1] = 2.0f * (0.8f * r + 0.6f * g);
    scaled[i + 2] *= 2.0f;
  }
  const auto rotated = evaluate_embedding(scaled, 3, colours().rgb, 3, 10, false);
  CHECK(rotated.spearman == Approx(1.0).margin(1e-6));
  CHECK(rotated.knn_overlap > 0.97);  // float rounding can reorder exact ties
}

TEST_CASE("a random embedding scores near chance", "[quality]") {
  const auto noise = test::random_points(colours().size(), 2, 7);
  const auto q = evaluate_embedding(noise, 2, colours().rgb, 3, 10, false);
  CHECK(std::fabs(q.spearman) < 0.1);
  CHECK(q.knn_overlap < 0.06);  // chance is 10 / 645 = 0.016, plus tie-inclusive sets
}

TEST_CASE("k-NN overlap counts tied neighbours fairly", "[quality]") {
  // Points 1 and 2 coincide in the reference: both are point 0's nearest. The embedding picks 2.
  const std::vector<float> ref{0, 0, 1, 0, 1, 0, 5, 0};
  const std::vector<float> emb{0, 0, 1, 0, 0.9f, 0, 5, 0};
  const auto dr = all_pairs_sq_distances(ref, 2, false), de = all_pairs_sq_distances(emb, 2, false);
  // k = 1: point 0's embedding set {2} lies inside its tied reference set {1, 2}: overlap 1.
  // Point 1: embedding {2}, reference {2} (distance 0); point 2: {1} vs {1}; point 3: {1} vs {1, 2}.
  CHECK(knn_overlap(de, dr, 4, 1) == Approx(1.0));
  const std::vector<float> far{0, 0, 1, 0, 7, 0, 5, 0};  // point 2 moved away
  CHECK(knn_overlap(all_pairs_sq_distances(far, 2, false), dr, 4, 1) < 1.0);
}

TEST_CASE("neighbours in a trained embedding include the colour's RGB twins", "[quality]") {
  TrainConfig cfg;
  cfg.epochs = 40;
  auto backend = make_cpu_backend(cfg);
  const PairSet pairs = backend->generate_pairs(colours().rgb, PairSpec{100000, 42, 0.2f});
  ModelState state = init_model(static_cast<int64_t>(colours().size()), 2, InitSpec{});
  train(*backend, pairs, state, cfg.epochs, nullptr);
  RunDir run;
  run.rows = state.rows;
  run.dims = 2;
  run.embedding = state.table;
  run.names = colours().names;
  run.rgb = colours().rgb;
  // 284 colours share their exact RGB value with another (navy and NavyBlue are both 0, 0, 128).
  // Chance puts a twin among 10 of 645 neighbours 1.6% of the time; a trained embedding far more
  // often (measured: 50% after 100 epochs, 55% after 500).
  int with_twin = 0, twin_found = 0;
  for (std::size_t i = 0; i < run.names.size(); ++i) {
    std::vector<std::size_t> twins;
    for (std::size_t j = 0; j < run.names.size(); ++j)
      if (j != i && std::equal(&run.rgb[3 * i], &run.rgb[3 * i + 3], &run.rgb[3 * j])) twins.push_back(j);
    if (twins.empty()) continue;
    ++with_twin;
    const auto nn = nearest_neighbours(run, i, 10, false);
    for (std::size_t r = 1; r < nn.size(); ++r) REQUIRE(nn[r - 1].embedding_distance <= nn[r].embedding_distance);
    twin_found += std::any_of(nn.begin(), nn.end(), [&](const Neighbour& n) {
      return std::find(twins.begin(), twins.end(), n.row) != twins.end();
    });
  }
  INFO(twin_found << " of " << with_twin << " colours have an RGB twin among their 10 nearest");
  CHECK(with_twin == 284);
  CHECK(twin_found > 0.3 * with_twin);
}

TEST_CASE("an unknown name is an error that suggests close matches", "[quality]") {
  const auto& names = colours().names;
  CHECK(names[find_row(names, "SKYBLUE", "NAME")] == "SkyBlue");
  REQUIRE_THROWS_WITH(find_row(names, "skyblu", "NAME"),
                      Catch::Matchers::Contains("NAME skyblu: no colour of that name") &&
                          Catch::Matchers::Contains("closest: SkyBlue"));
  REQUIRE_THROWS_WITH(find_row(names, "zzzzzzzzzzzzzz", "--label"),
                      Catch::Matchers::StartsWith("--label zzzzzzzzzzzzzz: no colour"));
  CHECK(names[find_row(names, "sky blue", "NAME")] == "SkyBlue");
}

TEST_CASE("names: a merged row by any of its names, exact before loose, ambiguity an error", "[quality][names]") {
  const auto& names = colours().names;
  // The bundled data keeps the names of one RGB value in one row.
  CHECK(names[find_row(names, "grey", "NAME")] == "gray, grey");
  CHECK(names[find_row(names, "gray, grey", "NAME")] == "gray, grey");
  CHECK(names[find_row(names, "dim grey", "NAME")] == "DimGray, DimGrey");
  // A merged name in a hint is quoted, so that it reads as one name.
  REQUIRE_THROWS_WITH(find_row(names, "dimgrye", "NAME"), Catch::Matchers::Contains("closest: 'DimGray, DimGrey'"));

  const std::vector<std::string> items = {"A-1", "a1", "b 2", "B-2", "x, y"};
  CHECK(rows_named(items, "a1") == std::vector<std::size_t>{1});  // the exact name wins over A-1
  CHECK(rows_named(items, "A-1") == std::vector<std::size_t>{0});
  CHECK(rows_named(items, "a 1") == std::vector<std::size_t>{0, 1});  // ignoring case and spaces: both
  CHECK(rows_named(items, "y") == std::vector<std::size_t>{4});
  CHECK(rows_named(items, "zz").empty());
  REQUIRE_THROWS_WITH(find_row(items, "b2", "NAME", "item"),
                      Catch::Matchers::Equals("NAME b2: 2 items match it when case, spaces and hyphens are ignored: "
                                              "'b 2', B-2; give one exactly"));
  REQUIRE_THROWS_WITH(find_row(items, "q", "NAME", "item"), Catch::Matchers::StartsWith("NAME q: no item of that name"));
}
