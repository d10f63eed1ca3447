// Pair generation on the host: reproducible per seed, in range, and labelled about 23% positive.
#include <algorithm>

#include <catch2/catch.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/pairs.hpp"
#include "test_support.hpp"

using namespace cudaembed;

namespace {

const ColourTable& colours() { return test::bundled_colours(); }

}  // namespace

TEST_CASE("the same seed gives the same pairs and another seed other pairs", "[pairs]") {
  const PairSpec spec{20000, 7, 0.2f};
  const PairSet p1 = generate_pairs_host(colours().rgb, spec);
  const PairSet p2 = generate_pairs_host(colours().rgb, spec);
  CHECK(p1.a == p2.a);
  CHECK(p1.b == p2.b);
  CHECK(p1.label == p2.label);
  PairSpec other = spec;
  other.seed = 8;
  const PairSet p3 = generate_pairs_host(colours().rgb, other);
  CHECK(p1.a != p3.a);
}

TEST_CASE("100k pairs have ids in range and 20 to 26 percent positives", "[pairs]") {
  const PairSet p = generate_pairs_host(colours().rgb, PairSpec{100000, 42, 0.2f});
  REQUIRE(p.size() == 100000);
  const uint32_t n = static_cast<uint32_t>(colours().size());
  CHECK(*std::max_element(p.a.begin(), p.a.end()) < n);
  CHECK(*std::max_element(p.b.begin(), p.b.end()) < n);
  // With 100k draws the ids should reach both ends of the table.
  CHECK(*std::min_element(p.a.begin(), p.a.end()) == 0u);
  CHECK(*std::max_element(p.a.begin(), p.a.end()) == n - 1);
  CHECK(p.positive_fraction() > 0.20);
  CHECK(p.positive_fraction() < 0.26);
  for (std::size_t i = 0; i < p.size(); ++i) REQUIRE((p.label[i] == 0.0f || p.label[i] == 1.0f));
}

TEST_CASE("the label threshold scales the positive fraction", "[pairs]") {
  const double low = generate_pairs_host(colours().rgb, PairSpec{20000, 1, 0.05f}).positive_fraction();
  const double high = generate_pairs_host(colours().rgb, PairSpec{20000, 1, 0.8f}).positive_fraction();
  CHECK(low < 0.15);
  CHECK(high > 0.35);
}
