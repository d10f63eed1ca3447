// GPU distances, `evaluate` and `neighbours` against the CPU. Both call row_sq_distance (math.hpp),
// so the distances are bit-identical and everything derived from them is compared exactly: Spearman,
// the tie-aware k-NN overlap and neighbour rankings, on the bundled colours (284 share an RGB value
// with another) and on a table built to be full of exact ties.
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/distances.hpp"
#include "cudaembed/neighbours.hpp"
#include "cudaembed/quality.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

const ColourTable& colours() { return test::bundled_colours(); }

// Bit-identical, as far as a float comparison can tell (it cannot tell 0 from -0, which no squared
// distance is).
const Tolerance kExact{0, 0};

// The colours' RGB on a grid of 4 levels per axis: 64 distinct points for 646 rows, so nearly
// every row has exact twins and most neighbour distances tie.
std::vector<float> grid_rgb() {
  std::vector<float> p;
  for (const float c : colours().rgb) p.push_back(std::floor(c * 3.999f) / 3.0f);
  return p;
}

struct Table {
  std::string name;
  std::vector<float> values;  // (646, dims)
  int dims;
};

// Embeddings of the 646 colours to evaluate and query: RGB itself (exact ties between twins), the
// tie-heavy grid, noise, and a wider random table.
std::vector<Table> tables() {
  const std::size_t n = colours().size();
  return {{"rgb", colours().rgb, 3},
          {"grid", grid_rgb(), 3},
          {"noise 2-D", test::random_points(n, 2, 7), 2},
          {"noise 8-D", test::random_points(n, 8, 9), 8}};
}

void check_distances_match(const std::vector<float>& points, int dims) {
  const auto cpu = all_pairs_sq_distances(points, dims, false);
  const auto gpu = all_pairs_sq_distances(points, dims, true);
  CHECK_CLOSE(gpu, cpu, kExact);
  const std::size_t n = points.size() / dims;
  for (const std::size_t q : {std::size_t{0}, n / 2, n - 1}) {
    INFO("row " << q);
    CHECK_CLOSE(sq_distances_from_row(points, dims, q, true), sq_distances_from_row(points, dims, q, false), kExact);
  }
}

}  // namespace

TEST_CASE("GPU distances equal the CPU's bit for bit, small rows", "[gpu][small]") {
  for (const Table& t : tables()) {
    INFO(t.name);
    check_distances_match(t.values, t.dims);
  }
  const int dims = GENERATE(1, 2, 5);
  INFO("700 random rows of " << dims);
  check_distances_match(test::random_points(700, dims, 3), dims);
}

TEST_CASE("GPU distances equal the CPU's bit for bit, wide rows", "[gpu]") {
  const int dims = GENERATE(64, 256);
  INFO("700 random rows of " << dims);
  check_distances_match(test::random_points(700, dims, 4), dims);
}

TEST_CASE("evaluate gives the same Spearman and k-NN overlap on the GPU as on the CPU", "[gpu][small]") {
  const int k = GENERATE(1, 10);
  for (const Table& t : tables()) {
    const EmbeddingQuality cpu = evaluate_embedding(t.values, t.dims, colours().rgb, 3, k, false);
    const EmbeddingQuality gpu = evaluate_embedding(t.values, t.dims, colours().rgb, 3, k, true);
    INFO(t.name << ", k " << k << ": CPU " << cpu.spearman << ", " << cpu.knn_overlap << "; GPU " << gpu.spearman
                << ", " << gpu.knn_overlap);
    // Exactly: the same distance bits go through the same host code.
    CHECK(gpu.spearman == cpu.spearman);
    CHECK(gpu.knn_overlap == cpu.knn_overlap);
  }
}

TEST_CASE("neighbours rank the same on the GPU as on the CPU, ties included", "[gpu][small]") {
  const bool normalize = GENERATE(false, true);
  for (const Table& t : tables()) {
    RunDir run;
    run.rows = static_cast<int64_t>(colours().size());
    run.dims = t.dims;
    run.normalize = normalize;
    run.embedding = t.values;
    run.names = colours().names;
    run.rgb = colours().rgb;
    for (std::size_t q = 0; q < colours().size(); ++q) {
      const auto cpu = nearest_neighbours(run, q, 10, false);
      const auto gpu = nearest_neighbours(run, q, 10, true);
      INFO(t.name << ", normalize " << normalize << ", query " << q);
      REQUIRE(gpu.size() == cpu.size());
      for (std::size_t r = 0; r < cpu.size(); ++r) {
        REQUIRE(gpu[r].row == cpu[r].row);
        REQUIRE(gpu[r].embedding_distance == cpu[r].embedding_distance);
      }
    }
  }
}
