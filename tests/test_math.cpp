// The shared math of math.hpp: gradients against finite differences in double, Adam against values
// worked by hand, and the random-bit mappings and permutation at their edges.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/math.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

struct PairParams {
  std::vector<double> ea, eb;
  double w, b, label;
};

double pair_loss(const PairParams& p, bool normalize, Head head) {
  auto ignore = [](int, double) {};
  return pair_forward_backward<double>(p.ea.data(), p.eb.data(), static_cast<int>(p.ea.size()), normalize, p.w, p.b,
                                       p.label, 1.0, ignore, ignore, head)
      .loss;
}

}  // namespace

TEST_CASE("pair gradients match central finite differences in float64", "[math]") {
  const Head head = GENERATE(Head::euclidean, Head::dot);
  const bool normalize = GENERATE(false, true);
  const int dims = GENERATE(1, 2, 3, 8);
  const double label = GENERATE(0.0, 1.0);
  std::mt19937 rng(1234 + dims);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  PairParams p;
  for (int k = 0; k < dims; ++k) {
    p.ea.push_back(u(rng));
    p.eb.push_back(u(rng));
  }
  p.w = -1.7;
  p.b = 0.3;
  p.label = label;

  std::vector<double> grad_a(dims, 0.0), grad_b(dims, 0.0);
  const auto r = pair_forward_backward<double>(
      p.ea.data(), p.eb.data(), dims, normalize, p.w, p.b, p.label, 1.0, [&](int k, double g) { grad_a[k] += g; },
      [&](int k, double g) { grad_b[k] += g; }, head);

  // Central differences: error O(h^2) ~ 1e-12, rounding ~ 1e-16 / h ~ 1e-10.
  const double h = 1e-6;
  auto numeric = [&](double& x) {
    const double saved = x;
    x = saved + h;
    const double up = pair_loss(p, normalize, head);
    x = saved - h;
    const double down = pair_loss(p, normalize, head);
    x = saved;
    return (up - down) / (2 * h);
  };
  std::vector<double> num_a, num_b;
  for (int k = 0; k < dims; ++k) num_a.push_back(numeric(p.ea[k]));
  for (int k = 0; k < dims; ++k) num_b.push_back(numeric(p.eb[k]));
  const std::vector<double> dense{r.dlogit * r.score, r.dlogit};
  const std::vector<double> num_dense{numeric(p.w), numeric(p.b)};

  INFO("head " << (head == Head::dot ? "dot" : "euclidean") << ", dims " << dims << ", normalize " << normalize
                << ", label " << label);
  const Tolerance tol{1e-8, 1e-6};
  CHECK_CLOSE(grad_a, num_a, tol);
  CHECK_CLOSE(grad_b, num_b, tol);
  CHECK_CLOSE(dense, num_dense, tol);
}

TEST_CASE("the dot head is the dot product and the cosine head the cosine", "[math]") {
  const double ea[3] = {1.0, 2.0, -2.0}, eb[3] = {3.0, 0.0, 4.0};
  CHECK(pair_forward(ea, eb, 3, false, Head::dot).score == Approx(3.0 - 8.0).epsilon(1e-15));
  CHECK(pair_forward(ea, eb, 3, true, Head::dot).score == Approx(-5.0 / (3.0 * 5.0)).epsilon(1e-15));
  CHECK(pair_forward(ea, eb, 3, false, Head::euclidean).score == Approx(4.0 + 4.0 + 36.0).epsilon(1e-15));
}

TEST_CASE("normalised rows below the norm floor are scaled without projection", "[math]") {
  // ||e||^2 = 1e-14 < eps: l2_normalize divides by sqrt(eps) and the max() passes no gradient.
  // eps is the float 1e-12f, so the floor is sqrt(double(1e-12f)), about 1e-6.
  const double floor = std::sqrt(static_cast<double>(kNormalizeEpsilon));
  const double ea[2] = {1e-7, 0.0}, eb[2] = {0.6, 0.8};
  double ga[2] = {0, 0};
  const auto r = pair_forward_backward<double>(
      ea, eb, 2, true, -1.0, 0.0, 1.0, 1.0, [&](int k, double g) { ga[k] += g; }, [](int, double) {});
  const double na0 = 1e-7 / floor;  // about 0.1
  const double expected_dist = (na0 - 0.6) * (na0 - 0.6) + 0.8 * 0.8;
  CHECK(r.score == Approx(expected_dist).epsilon(1e-12));
  // dL/de_a = 2 * ddist * (n_a - n_b) / floor componentwise: no -n<n, g> term.
  const double ddist = r.dlogit * -1.0;
  CHECK(ga[0] == Approx(2 * ddist * (na0 - 0.6) / floor).epsilon(1e-12));
  CHECK(ga[1] == Approx(2 * ddist * (0.0 - 0.8) / floor).epsilon(1e-12));
}

TEST_CASE("at D = 1 a normalised row's gradient is exactly zero, in float with or without FMA", "[math]") {
  // n = e / |e| = +-1 for every e: the exact gradient through the projection vanishes. Computed as
  // (g - n <n, g>) / |e| in float it would be rounding noise whose value depends on FMA contraction.
  const Head head = GENERATE(Head::euclidean, Head::dot);
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  int nonzero = 0;
  for (int i = 0; i < 20000; ++i) {
    const float ea = u(rng), eb = u(rng);
    float ga = 0, gb = 0;
    pair_forward_backward<float>(
        &ea, &eb, 1, true, -2.3f, 0.4f, static_cast<float>(i % 2), 1.0f, [&](int, float g) { ga += g; },
        [&](int, float g) { gb += g; }, head);
    nonzero += (ga != 0.0f) + (gb != 0.0f);
  }
  INFO("head " << (head == Head::dot ? "dot" : "euclidean"));
  CHECK(nonzero == 0);
  // A row under the norm floor is scaled, not projected: its gradient is not zero.
  const float tiny = 1e-7f, other = 0.5f;
  float g_tiny = 0;
  pair_forward_backward<float>(
      &tiny, &other, 1, true, -2.3f, 0.4f, 1.0f, 1.0f, [&](int, float g) { g_tiny += g; }, [](int, float) {}, head);
  CHECK(g_tiny != 0.0f);
}

TEST_CASE("BCE from the logit is finite and exact at extreme logits", "[math]") {
  // For z = 50, label 0: loss = 50 + log1p(e^-50) = 50 exactly in float; clipping p would give 16.1.
  const auto far_pos = bce_from_logit(50.0f, 0.0f);
  CHECK(far_pos.loss == Approx(50.0f));
  CHECK(far_pos.prob == 1.0f);
  const auto far_neg = bce_from_logit(-100.0f, 1.0f);
  CHECK(far_neg.loss == Approx(100.0f));
  CHECK(far_neg.dlogit == Approx(-1.0f));
  const auto zero = bce_from_logit(0.0f, 1.0f);
  CHECK(zero.loss == Approx(std::log(2.0f)));
  CHECK(zero.prob == 0.5f);
  for (float z : {-1e30f, -88.0f, 88.0f, 1e30f}) {
    const auto r = bce_from_logit(z, 1.0f);
    CHECK(std::isfinite(r.loss));
    CHECK(std::isfinite(r.dlogit));
  }
}

TEST_CASE("Adam two steps against values worked by hand", "[math]") {
  // lr 1e-3, b1 0.9, b2 0.999, eps 1e-7, p0 = 0.5.
  // t=1, g=0.2: m = 0.1*0.2 = 0.02; v = 0.001*0.04 = 4e-5;
  //   step = 1e-3*sqrt(1-0.999)/(1-0.9) = 3.16227766e-4; p = 0.5 - 0.02*step/(sqrt(4e-5)+1e-7) = 0.499000016
  // t=2, g=-0.1: m = 0.02 + 0.1*(-0.1-0.02) = 0.008; v = 4e-5 + 0.001*(0.01-4e-5) = 4.996e-5;
  //   step = 1e-3*sqrt(1-0.999^2)/(1-0.9^2) = 2.35316725e-4; p = 0.499000016 - 0.008*step/(sqrt(v)+1e-7) = 0.498733683
  // The hyperparameters are float32 (as in Keras): 0.999f = 0.99900001287, so 1 - beta2 is 1.3e-5
  // off the decimal; step sizes and v carry that, hence 5e-5 relative on them.
  const AdamHyper h;
  const AdamCoefficients c = adam_coefficients(h);
  float p = 0.5f, m = 0.0f, v = 0.0f;
  CHECK(adam_step_size(h, 1) == Approx(3.16227766e-4).epsilon(5e-5));
  adam_update(p, m, v, 0.2f, 0.04f, adam_step_size(h, 1), c);
  CHECK(m == Approx(0.02).epsilon(1e-6));
  CHECK(v == Approx(4e-5).epsilon(5e-5));
  CHECK(p == Approx(0.499000016).epsilon(1e-7));
  CHECK(adam_step_size(h, 2) == Approx(2.35316725e-4).epsilon(5e-5));
  adam_update(p, m, v, -0.1f, 0.01f, adam_step_size(h, 2), c);
  CHECK(m == Approx(0.008).epsilon(1e-5));
  CHECK(v == Approx(4.996e-5).epsilon(5e-5));
  CHECK(p == Approx(0.498733683).epsilon(1e-7));
}

TEST_CASE("Adam second moment per-lookup squares versus squared row sums", "[math]") {
  // One row looked up twice in a batch with gradients 0.2 and -0.1: G = 0.1.
  // lookups: v = 0.001 * (0.04 + 0.01) = 5e-5 -> p = 0.5 - 0.01*3.16227766e-4/(sqrt(5e-5)+1e-7) = 0.499552793
  // rows:    v = 0.001 * 0.1^2 = 1e-5      -> p = 0.5 - 0.01*3.16227766e-4/(sqrt(1e-5)+1e-7) = 0.499000032
  const AdamHyper h;
  const AdamCoefficients c = adam_coefficients(h);
  float p1 = 0.5f, m1 = 0, v1 = 0, p2 = 0.5f, m2 = 0, v2 = 0;
  adam_update(p1, m1, v1, 0.1f, 0.2f * 0.2f + 0.1f * 0.1f, adam_step_size(h, 1), c);
  adam_update(p2, m2, v2, 0.1f, 0.1f * 0.1f, adam_step_size(h, 1), c);
  CHECK(p1 == Approx(0.499552793).epsilon(1e-7));
  CHECK(p2 == Approx(0.499000032).epsilon(1e-7));
}

TEST_CASE("random bits map into range at the generator extremes", "[math][pairs]") {
  for (uint32_t n : {1u, 2u, 3u, 646u, 1000003u, 0xffffffffu}) {
    CHECK(index_from_bits(0u, n) == 0u);
    CHECK(index_from_bits(0xffffffffu, n) == n - 1);
    CHECK(index_from_bits(0x80000000u, n) < n);
  }
  CHECK(unit_from_bits(0u) == 0.0f);
  CHECK(unit_from_bits(0xffffffffu) < 1.0f);
  CHECK(unit_from_bits(0xffffffffu) == 1.0f - 0x1p-24f);
}

TEST_CASE("colour labels follow diff below threshold times u squared", "[math][pairs]") {
  const float black[3] = {0, 0, 0}, white[3] = {1, 1, 1}, grey[3] = {0.1f, 0.1f, 0.1f};
  CHECK(colour_pair_label(black, black, 0.5f, 0.2f) == 1.0f);    // diff 0 < 0.05
  CHECK(colour_pair_label(black, black, 0.0f, 0.2f) == 0.0f);    // 0 < 0 is false
  CHECK(colour_pair_label(black, white, 0.999f, 0.2f) == 0.0f);  // diff 1
  CHECK(colour_pair_label(black, grey, 0.9f, 0.2f) == 1.0f);     // diff 0.01 < 0.162
  CHECK(colour_pair_label(black, grey, 0.2f, 0.2f) == 0.0f);     // diff 0.01 > 0.008
}

TEST_CASE("permute_index is a bijection that changes with the key", "[math][shuffle]") {
  for (uint32_t n : {1u, 2u, 3u, 7u, 512u, 1000u, 65536u, 100000u}) {
    for (uint32_t key : {0u, 1u, 0xdeadbeefu, epoch_shuffle_key(42, 3)}) {
      std::vector<uint32_t> seen(n, 0);
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t j = permute_index(i, n, key);
        REQUIRE(j < n);
        ++seen[j];
      }
      INFO("n " << n << ", key " << key);
      CHECK(std::all_of(seen.begin(), seen.end(), [](uint32_t c) { return c == 1; }));
    }
  }
  // Different epochs give different orders.
  const uint32_t n = 100000;
  int same = 0;
  for (uint32_t i = 0; i < n; ++i)
    same += permute_index(i, n, epoch_shuffle_key(42, 0)) == permute_index(i, n, epoch_shuffle_key(42, 1));
  CHECK(same < 100);
}

namespace {

// permute_index as first written, with its 64-bit modulo: the reference for the prepared form.
uint32_t permute_index_reference(uint32_t i, uint32_t n, uint32_t key) {
  uint32_t w = n - 1;
  w |= w >> 1;
  w |= w >> 2;
  w |= w >> 4;
  w |= w >> 8;
  w |= w >> 16;
  do {
    i ^= key;
    i *= 0xe170893du;
    i ^= key >> 16;
    i ^= (i & w) >> 4;
    i ^= key >> 8;
    i *= 0x0929eb3fu;
    i ^= key >> 23;
    i ^= (i & w) >> 1;
    i *= 1u | key >> 27;
    i *= 0x6935fa69u;
    i ^= (i & w) >> 11;
    i *= 0x74dcb303u;
    i ^= (i & w) >> 2;
    i *= 0x9e501cc3u;
    i ^= (i & w) >> 2;
    i *= 0xc860a3dfu;
    i &= w;
    i ^= i >> 5;
  } while (i >= n);
  return static_cast<uint32_t>((static_cast<uint64_t>(i) + key) % n);
}

}  // namespace

TEST_CASE("permute_index with a prepared permutation is the one-modulo original", "[math][shuffle]") {
  // Up to n = 2^32 - 1, where i + key mod n overflows 32 bits.
  for (uint32_t n : {1u, 2u, 3u, 646u, 100000u, 0x7fffffffu, 0x80000001u, 0xfffffffeu, 0xffffffffu}) {
    for (uint32_t key : {0u, 1u, n - 1, 0xdeadbeefu, 0xffffffffu, epoch_shuffle_key(42, 3)}) {
      const Permutation p = make_permutation(n, key);
      for (uint32_t i : {0u, 1u, n / 3, n / 2, n - 2, n - 1}) {
        if (i >= n) continue;
        INFO("n " << n << ", key " << key << ", i " << i);
        CHECK(permute_index(i, p) == permute_index_reference(i, n, key));
      }
    }
  }
  // An empty permutation can be made (a loop over no elements makes one) without dividing by 0.
  CHECK(make_permutation(0, 0xdeadbeefu).key_mod_n == 0);
  const Permutation p = make_permutation(100000, epoch_shuffle_key(42, 7));
  for (uint32_t i = 0; i < 100000; ++i) REQUIRE(permute_index(i, p) == permute_index_reference(i, 100000, p.key));
}

TEST_CASE("lower_bound_in finds what std::lower_bound finds", "[math]") {
  const std::vector<uint32_t> sorted{1, 3, 3, 3, 7, 9, 9, 20};
  for (uint32_t key = 0; key <= 21; ++key) {
    const auto expected = static_cast<uint32_t>(std::lower_bound(sorted.begin(), sorted.end(), key) - sorted.begin());
    CHECK(lower_bound_in(sorted.data(), static_cast<uint32_t>(sorted.size()), key) == expected);
    CHECK(lower_bound_in(sorted.data(), uint64_t{sorted.size()}, key) == expected);
  }
  CHECK(lower_bound_in(sorted.data(), uint32_t{0}, 5u) == 0);
}

TEST_CASE("exp_float and log_float are within 2 ulp of the double results", "[math]") {
  auto ulps = [](float got, double ref) {
    return std::abs(std::bit_cast<int32_t>(got) - std::bit_cast<int32_t>(static_cast<float>(ref)));
  };
  int worst_exp = 0, worst_log = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.00137f)
    worst_exp = std::max(worst_exp, ulps(exp_float(x), std::exp(double{x})));
  for (float x = 1e-30f; x < 1e30f; x *= 1.0007f)
    worst_log = std::max(worst_log, ulps(log_float(x), std::log(double{x})));
  // log1p_unit only ever takes log of 1 + t for t in (0, 1]: every float in [1, 2].
  for (float x = 1.0f; x <= 2.0f; x = std::nextafter(x, 3.0f))
    worst_log = std::max(worst_log, ulps(log_float(x), std::log(double{x})));
  INFO("exp " << worst_exp << " ulp, log " << worst_log << " ulp");
  CHECK(worst_exp <= 2);
  CHECK(worst_log <= 2);
  CHECK(exp_float(0.0f) == 1.0f);
  CHECK(log_float(1.0f) == 0.0f);
  CHECK(exp_float(-200.0f) < 1e-37f);  // clamped to the smallest normal range, never NaN
}
