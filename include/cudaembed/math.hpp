// The arithmetic of training, written once: the CPU reference (host/) and the CUDA kernels (cuda/)
// both call these __host__ __device__ helpers, so the two backends cannot drift apart.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define CE_HD __host__ __device__ __forceinline__
#else
#define CE_HD inline
#endif

namespace cudaembed {

// Explicitly rounded ops, float or double. nvcc fuses a*b+c into one FMA by default, which would
// make the device's pair labels differ from the host's at the threshold, and the distances of
// queries and quality metrics (accumulated in double) differ by device; these keep both
// bit-identical.
template <class T>
CE_HD T mul_rn(T a, T b) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, double>)
    return __dmul_rn(a, b);
  else
    return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
template <class T>
CE_HD T add_rn(T a, T b) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, double>)
    return __dadd_rn(a, b);
  else
    return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// ---- Distances for neighbour queries and quality metrics ----

// Squared Euclidean distance of rows a and b (dims values each): the direct sum of squared
// differences, accumulated in double in index order and rounded once to float. Written once so the
// CPU and the GPU give the same bits: a Gram-matrix form ||a||^2 + ||b||^2 - 2ab in float cancels
// and turns exact ties (rows sharing an RGB value) into rounding noise that differs per device,
// which moves Spearman and the tie-aware k-NN overlap. Here equal rows give exactly 0, and
// d(a, b) == d(b, a) bit for bit (negating a difference is exact).
CE_HD float row_sq_distance(const float* a, const float* b, int dims) {
  double sum = 0.0;
  for (int k = 0; k < dims; ++k) {
    const double diff = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    sum = add_rn(sum, mul_rn(diff, diff));
  }
  return static_cast<float>(sum);
}

// The Poincaré distance of rows a and b of the unit ball, arcosh(1 + 2 |a - b|^2 / ((1 - |a|^2)(1 - |b|^2))),
// for queries and metrics: the sums in double in index order, 1 - |x|^2 floored at 1e-5 (training's
// margin, kBallEpsilon below), arcosh(1 + t) as log1p(t + sqrt(t (t + 2))), rounded once to float.
CE_HD float row_poincare_distance(const float* a, const float* b, int dims) {
  double sq = 0.0, sq_a = 0.0, sq_b = 0.0;
  for (int k = 0; k < dims; ++k) {
    const double x = a[k], y = b[k], diff = x - y;
    sq = add_rn(sq, mul_rn(diff, diff));
    sq_a = add_rn(sq_a, mul_rn(x, x));
    sq_b = add_rn(sq_b, mul_rn(y, y));
  }
  const double alpha = std::fmax(1.0 - sq_a, 1e-5), beta = std::fmax(1.0 - sq_b, 1e-5);
  const double t = 2.0 * sq / (alpha * beta);
  return static_cast<float>(std::log1p(t + std::sqrt(t * (t + 2.0))));
}

// ---- Random bits to values (shared by cuRAND's host and device generators' outputs) ----

// Maps 32 random bits to [0, n) by multiply-shift: in range by construction, no modulo bias worth
// speaking of for n far below 2^32.
CE_HD uint32_t index_from_bits(uint32_t bits, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(bits) * n) >> 32);
}

// Maps 32 random bits to a float uniform in [0, 1): the top 24 bits, exactly representable.
CE_HD float unit_from_bits(uint32_t bits) { return static_cast<float>(bits >> 8) * 0x1p-24f; }

// The tutorial's label: diff = |rgb_a - rgb_b|^2 / 3, similar (1) when diff < threshold * u^2.
CE_HD float colour_pair_label(const float* rgb_a, const float* rgb_b, float u, float threshold) {
  float sum = 0.0f;
  for (int c = 0; c < 3; ++c) {
    const float delta = rgb_a[c] - rgb_b[c];
    sum = add_rn(sum, mul_rn(delta, delta));
  }
  const float diff = sum / 3.0f;
  return diff < mul_rn(threshold, mul_rn(u, u)) ? 1.0f : 0.0f;
}

// ---- The per-epoch shuffle: an invertible permutation, identical on host and device ----

// 64-bit mixer (splitmix64 finaliser) used to derive per-epoch permutation keys from the seed.
CE_HD uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

CE_HD uint32_t epoch_shuffle_key(uint64_t seed, int64_t epoch) {
  return static_cast<uint32_t>(mix64(seed ^ mix64(static_cast<uint64_t>(epoch) + 0x5eed5eedull)));
}

// One epoch's permutation of [0, n) (indexed only when n >= 1), with what permute_index needs
// worked out once: the mask of the next power of two, and key mod n, so that no element pays for a
// 64-bit division (a subroutine of ~100 instructions on the GPU). Make it once per epoch or loop.
struct Permutation {
  uint32_t n, key;
  uint32_t mask;       // next power of two above n - 1, minus one
  uint32_t key_mod_n;  // key % n
};

CE_HD Permutation make_permutation(uint32_t n, uint32_t key) {
  uint32_t w = n - 1;
  w |= w >> 1;
  w |= w >> 2;
  w |= w >> 4;
  w |= w >> 8;
  w |= w >> 16;
  return {n, key, w, n ? key % n : 0u};  // n = 0: an empty permutation, made but never indexed
}

// One round of Kensler's hash-based bijection on [0, mask + 1) ("Correlated Multi-Jittered
// Sampling", Pixar 2013): permute_index applies it until the value falls below n.
CE_HD uint32_t permute_round(uint32_t i, uint32_t key, uint32_t w) {
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
  return i;
}

// (i + key) mod n for i < n, as (i + key mod n) less n once if over: the sum is below 2n.
CE_HD uint32_t permute_rotate(uint32_t i, const Permutation& p) {
  const uint64_t rotated = static_cast<uint64_t>(i) + p.key_mod_n;
  return static_cast<uint32_t>(rotated >= p.n ? rotated - p.n : rotated);
}

// Position i of a pseudo-random permutation of [0, n): permute_round on the next power of two
// with cycle walking, then a rotation by the key. Computing it per element lets a kernel find its
// own batch members: no shuffled array, no sort.
CE_HD uint32_t permute_index(uint32_t i, const Permutation& p) {
  do {
    i = permute_round(i, p.key, p.mask);
  } while (i >= p.n);
  return permute_rotate(i, p);
}

// The same for one element, the permutation made on the spot.
CE_HD uint32_t permute_index(uint32_t i, uint32_t n, uint32_t key) { return permute_index(i, make_permutation(n, key)); }

// ---- Searching a sorted list ----

// The first position in sorted[0, count) whose value is not below key: std::lower_bound, for device
// code too. Index is the caller's: 32 bits in a kernel's shared-memory list, 64 in a host table.
template <class Index>
CE_HD Index lower_bound_in(const uint32_t* sorted, Index count, uint32_t key) {
  Index lo = 0, hi = count;
  while (lo < hi) {
    const Index mid = lo + (hi - lo) / 2;
    if (sorted[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// ---- Loss ----
// Templated on the scalar so tests can run the same code in double against finite differences;
// training uses float.

template <class T>
struct LogitLoss {
  T prob;    // sigmoid(z)
  T loss;    // binary cross-entropy
  T dlogit;  // d loss / d z = prob - label
};

// ---- exp and log in float, vectorisable ----
// glibc's expf and logf are calls, which a compiler vectorises only under -ffast-math; these are
// Cephes's single-precision algorithms written with arithmetic and bit operations alone, so the
// CPU's loop over a batch vectorises. Within 2 ulp of the correctly rounded result (tested against
// double). The GPU uses its own expf and logf.

// e^x; clamped to the normal float range.
CE_HD float exp_float(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;
  const float fx = x * 1.44269504088896341f + 0.5f;  // x / ln 2, rounded below by the floor
  int n = static_cast<int>(fx);
  n -= static_cast<float>(n) > fx ? 1 : 0;  // floor, for negative fx too
  const float nf = static_cast<float>(n);
  const float r = (x - nf * 0.693359375f) - nf * -2.12194440e-4f;  // x - n ln 2 in two parts
  const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                    1.6666665459e-1f) *
                       r +
                   5.0000001201e-1f) *
                      (r * r) +
                  r + 1.0f;
  return p * std::bit_cast<float>((n + 127) << 23);
#endif
}

// ln(x) for a positive, normal x.
CE_HD float log_float(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  const int bits = std::bit_cast<int>(x);
  int e = ((bits >> 23) & 0xff) - 126;
  float m = std::bit_cast<float>((bits & 0x7fffff) | 0x3f000000);  // x = m 2^e, m in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e -= small ? 1 : 0;
  m = small ? m + m - 1.0f : m - 1.0f;  // m in [sqrt(1/2) - 1, sqrt(2) - 1)
  const float z = m * m;
  float y = ((((((((7.0376836292e-2f * m - 1.1514610310e-1f) * m + 1.1676998740e-1f) * m - 1.2420140846e-1f) * m +
                 1.4249322787e-1f) *
                    m -
                1.6668057665e-1f) *
                   m +
               2.0000714765e-1f) *
                  m -
              2.4999993993e-1f) *
                 m +
             3.3333331174e-1f) *
            m * z;
  const float ef = static_cast<float>(e);
  y += ef * -2.12194440e-4f;
  y += -0.5f * z;
  return m + y + ef * 0.693359375f;
#endif
}

template <class T>
CE_HD T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>)
    return exp_float(x);
  else
    return std::exp(x);
}

template <class T>
CE_HD T log_of(T x) {
  if constexpr (std::is_same_v<T, float>)
    return log_float(x);
  else
    return std::log(x);
}

// log1p(t) for t in [0, 1] through log, to within a few ulps (Goldberg, "What every computer
// scientist should know about floating-point arithmetic", Thm. 4): glibc's log1pf took 29% of the
// CPU training time, its logf is several times faster.
template <class T>
CE_HD T log1p_unit(T t) {
  const T u = T(1) + t;
  return u == T(1) ? t : log_of(u) * (t / (u - T(1)));
}

// arcosh(1 + t) for t >= 0, stable near t = 0 where arcosh(x) = log(x + sqrt(x^2 - 1)) cancels:
// log1p(t + sqrt(t (t + 2))). (log1p_unit's identity holds for any t >= 0, not only t <= 1.)
template <class T>
CE_HD T arcosh_1p(T t) {
  return log1p_unit(t + std::sqrt(t * (t + T(2))));
}

// Binary cross-entropy from the logit, the stable form tf.nn.sigmoid_cross_entropy_with_logits
// uses (and tf.keras uses for a sigmoid output): max(z,0) - z*y + log1p(exp(-|z|)).
template <class T>
CE_HD LogitLoss<T> bce_from_logit(T z, T label) {
  const T t = exp_of(-std::fabs(z));
  // 1 / (1 + t) for z >= 0, t / (1 + t) below: the numerator chosen first, so that a vectorised
  // loop divides once rather than computing both quotients and choosing.
  const T prob = (z >= T(0) ? T(1) : t) / (T(1) + t);
  const T loss = (z > T(0) ? z : T(0)) - z * label + log1p_unit(t);
  return {prob, loss, prob - label};
}

// ---- Forward and backward of one pair ----

// What compares two rows. The cosine head is `dot` on L2-normalised rows.
enum class Head : int {
  euclidean,  // squared Euclidean distance: the tutorial's
  dot,        // dot product (word2vec's)
  poincare,   // Poincaré distance in the open unit ball (Nickel & Kiela 2017), for hierarchies
};

// The Poincaré ball's margin: rows are kept at |x| <= 1 - kBallEpsilon (the retraction), and the
// forward floors 1 - |x|^2 at kBallEpsilon, which only a row placed outside by hand can reach.
constexpr float kBallEpsilon = 1e-5f;
// Floor on t (t + 2) under arcosh(1 + t)'s derivative 1 / sqrt(t (t + 2)): at u = v (t = 0) the
// distance has no gradient direction; with the floor the pair's gradient there is exactly zero.
constexpr float kArcoshFloor = 1e-30f;

// tf.math.l2_normalize's floor on the squared norm: rows shorter than this are scaled, not projected.
constexpr float kNormalizeEpsilon = 1e-12f;

// What the backward of a pair needs from its forward.
template <class T>
struct PairForward {
  T score;         // the head's output: squared distance or dot product of the (normalised) rows
  T inv_a, inv_b;  // 1 / max(||e||, sqrt(eps)) when normalising, else 1
  T dot_a, dot_b;  // <n_x, dL/dn_x> / dL/dscore where the projection applies, else 0
  // 0 where a row's gradient is exactly zero, else 1 (see head_finish).
  T live_a = 1, live_b = 1;
  // Poincaré: d distance / d(1 + t) times 4 / (alpha beta), t = 2 |u - v|^2 / (alpha beta), alpha = 1 - |u|^2,
  // beta = 1 - |v|^2; then dot_a, dot_b hold |u - v|^2 / alpha and |u - v|^2 / beta.
  T factor = 0;
};

// One element's share of the forward sums: na, nb are element k of the (normalised) rows.
template <class T>
CE_HD void head_accumulate(Head head, T na, T nb, PairForward<T>& f) {
  if (head == Head::poincare) {  // |u - v|^2, |u|^2, |v|^2; head_finish turns them into the distance
    const T diff = na - nb;
    f.score += diff * diff;
    f.dot_a += na * na;
    f.dot_b += nb * nb;
  } else if (head == Head::euclidean) {
    const T diff = na - nb;
    f.score += diff * diff;
    f.dot_a += na * diff;
    f.dot_b += nb * diff;
  } else {
    f.score += na * nb;
  }
}

// Completes the sums: for the dot head, <n_a, n_b> is both rows' projection term. At D = 1 a
// projected row is n = +-1 whatever e is, so its gradient (g - n <n, g>) / ||e|| is exactly zero;
// computed in float it is rounding noise that differs with FMA contraction (GPU against CPU) and
// that Adam's division by sqrt(v) amplifies to steps of order lr. So it is zeroed outright.
template <class T>
CE_HD void head_finish(Head head, int dims, bool project_a, bool project_b, PairForward<T>& f) {
  if (head == Head::poincare) {  // never normalised (parse_head refuses it)
    const T alpha = std::fmax(T(1) - f.dot_a, T(kBallEpsilon)), beta = std::fmax(T(1) - f.dot_b, T(kBallEpsilon));
    const T sq = f.score;
    const T t = T(2) * sq / (alpha * beta);
    f.score = arcosh_1p(t);
    f.factor = T(4) / (alpha * beta * std::sqrt(std::fmax(t * (t + T(2)), T(kArcoshFloor))));
    f.dot_a = sq / alpha;
    f.dot_b = sq / beta;
    return;
  }
  if (head == Head::dot) f.dot_a = f.dot_b = f.score;
  if (!project_a) f.dot_a = 0;
  if (!project_b) f.dot_b = 0;
  if (dims == 1 && project_a) f.live_a = 0;
  if (dims == 1 && project_b) f.live_b = 0;
}

// The factors of both rows' gradients given dL/dscore = ds, the same for every element.
template <class T>
struct HeadScale {
  T a, b;
};

template <class T>
CE_HD HeadScale<T> head_scale(Head head, const PairForward<T>& f, T ds) {
  if (head == Head::poincare) return {ds * f.factor, ds * f.factor};
  if (head == Head::euclidean) return {T(2) * ds * f.inv_a * f.live_a, T(-2) * ds * f.inv_b * f.live_b};
  return {ds * f.inv_a * f.live_a, ds * f.inv_b * f.live_b};
}

// Element k of both rows' gradients. dL/dn_a is 2 ds (n_a - n_b) for the distance and ds n_b for
// the dot product; through n = e / ||e|| it becomes (g - n <n, g>) / ||e||. For the Poincaré
// distance d = arcosh(1 + t): dd/du = factor ((u - v) + |u - v|^2 / alpha u), and the same for v
// with the roles swapped (Nickel & Kiela 2017, eq. 4): the Euclidean gradient, which the
// Riemannian optimizers rescale.
template <class T>
CE_HD void head_gradient(Head head, T na, T nb, const PairForward<T>& f, const HeadScale<T>& scale, T& ga, T& gb) {
  if (head == Head::poincare) {
    const T diff = na - nb;
    ga = scale.a * (diff + na * f.dot_a);
    gb = scale.b * (nb * f.dot_b - diff);
  } else if (head == Head::euclidean) {
    const T diff = na - nb;
    ga = scale.a * (diff - na * f.dot_a);
    gb = scale.b * (diff - nb * f.dot_b);
  } else {
    ga = scale.a * (nb - na * f.dot_a);
    gb = scale.b * (na - nb * f.dot_b);
  }
}

// The head on rows ea, eb (dims values each), L2-normalised first when `normalize`.
template <class T>
CE_HD PairForward<T> pair_forward(const T* ea, const T* eb, int dims, bool normalize, Head head = Head::euclidean) {
  PairForward<T> f{0, 1, 1, 0, 0};
  bool project_a = false, project_b = false;  // false where the norm floor is active (no gradient through it)
  if (normalize) {
    T ss_a = 0, ss_b = 0;
    for (int k = 0; k < dims; ++k) {
      ss_a += ea[k] * ea[k];
      ss_b += eb[k] * eb[k];
    }
    const T eps = kNormalizeEpsilon;
    project_a = ss_a > eps;
    project_b = ss_b > eps;
    f.inv_a = T(1) / std::sqrt(std::fmax(ss_a, eps));
    f.inv_b = T(1) / std::sqrt(std::fmax(ss_b, eps));
  }
  for (int k = 0; k < dims; ++k) head_accumulate(head, ea[k] * f.inv_a, eb[k] * f.inv_b, f);
  head_finish(head, dims, project_a, project_b, f);
  return f;
}

// Row gradients of a pair given dL/dscore, sent to add_a(k, g) and add_b(k, g): plain += on the
// CPU, atomicAdd on the GPU.
template <class T, class AddA, class AddB>
CE_HD void pair_backward(const T* ea, const T* eb, int dims, const PairForward<T>& f, T dscore, AddA&& add_a,
                         AddB&& add_b, Head head = Head::euclidean) {
  const HeadScale<T> scale = head_scale(head, f, dscore);
  for (int k = 0; k < dims; ++k) {
    T ga, gb;
    head_gradient(head, ea[k] * f.inv_a, eb[k] * f.inv_b, f, scale, ga, gb);
    add_a(k, ga);
    add_b(k, gb);
  }
}

template <class T>
struct PairResult {
  T score;   // the head's output
  T prob;    // sigmoid(w * score + b)
  T loss;    // BCE against the label
  T dlogit;  // (prob - label) * grad_scale: this pair's gradient wrt the logit
};

// One pair through the whole model and back: Dense(1) weight w and bias b, label in [0, 1].
// grad_scale is the pair's weight / batch size (the loss is a batch mean). The caller accumulates
// the Dense gradients: dL/dw += dlogit * score, dL/db += dlogit.
template <class T, class AddA, class AddB>
CE_HD PairResult<T> pair_forward_backward(const T* ea, const T* eb, int dims, bool normalize, T w, T b, T label,
                                          T grad_scale, AddA&& add_a, AddB&& add_b, Head head = Head::euclidean) {
  const PairForward<T> f = pair_forward(ea, eb, dims, normalize, head);
  const LogitLoss<T> out = bce_from_logit(w * f.score + b, label);
  const T dlogit = out.dlogit * grad_scale;
  pair_backward(ea, eb, dims, f, dlogit * w, add_a, add_b, head);
  return {f.score, out.prob, out.loss, dlogit};
}

// ---- Negative sampling ----

// Row of the negative drawn for sample `slot` of step `step`: uniform over [0, rows), a pure
// function of its arguments, so the CPU and the GPU draw the same negatives without sharing state.
CE_HD uint32_t negative_row(uint64_t seed, int64_t step, uint32_t slot, uint32_t rows) {
  const uint64_t h = mix64(seed ^ 0x6e65676174697665ull ^ mix64((static_cast<uint64_t>(step) << 32) | slot));
  return index_from_bits(static_cast<uint32_t>(h >> 32), rows);
}

// ---- Adam, as tf.keras implements it ----

struct AdamHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-7f;  // added to sqrt(v), Keras-style
};

// Step size for Adam step t (1-based): lr * sqrt(1 - beta2^t) / (1 - beta1^t), in double so the
// host and the device agree after rounding to float.
CE_HD float adam_step_size(const AdamHyper& h, int64_t t) {
  const double td = static_cast<double>(t);
  return static_cast<float>(h.lr * std::sqrt(1.0 - std::pow(static_cast<double>(h.beta2), td)) /
                            (1.0 - std::pow(static_cast<double>(h.beta1), td)));
}

// Keras feeds Adam the embedding gradient as IndexedSlices, one slice per lookup, and squares the
// slices before summing them: a row's v sees sum_k g_k^2 over its lookups in the batch, where
// textbook Adam (and PyTorch) sees (sum_k g_k)^2. Measured against real Keras 3.15 in
// tests/golden/. Both are offered; `lookups` is the default because it is what Keras trains.
enum class SecondMoment {
  lookups,  // v += (sum over lookups of g^2 - v)(1 - b2): Keras
  rows,     // v += ((sum over lookups of g)^2 - v)(1 - b2): textbook Adam
};

// One parameter's Adam update in Keras 3's form: m += (g - m)(1 - b1); v += (g2 - v)(1 - b2);
// p -= m * step / (sqrt(v) + eps), where g2 is g^2 or the per-lookup sum above.
// one_minus_beta1/2 are computed once in double (as Python does).
struct AdamCoefficients {
  float one_minus_beta1;
  float one_minus_beta2;
  float epsilon;
};

inline AdamCoefficients adam_coefficients(const AdamHyper& h) {
  return {static_cast<float>(1.0 - static_cast<double>(h.beta1)),
          static_cast<float>(1.0 - static_cast<double>(h.beta2)), h.epsilon};
}

CE_HD void adam_update(float& param, float& m, float& v, float g, float g2, float step_size,
                       const AdamCoefficients& c) {
  m += (g - m) * c.one_minus_beta1;
  v += (g2 - v) * c.one_minus_beta2;
  param -= (m * step_size) / (std::sqrt(v) + c.epsilon);
}

// ---- The other optimizers ----

enum class Optimizer : int {
  adam,       // Keras's dense Adam: every row's moments decay every step (the tutorial's)
  lazy_adam,  // Adam on the rows a step touches only, each with its own step count
  sgd,        // p -= lr g
  adagrad,    // row-wise (FBGEMM's): one accumulator per row, of the mean squared gradient
  rsgd,       // Riemannian SGD on the Poincaré ball (Nickel & Kiela 2017)
  radam,      // Riemannian Adam on the Poincaré ball (Becigneul & Ganea 2019), lazy: per-row step counts
};

// Whether an optimizer is a Riemannian one, for the Poincaré head.
CE_HD bool is_riemannian(Optimizer optimizer) { return optimizer == Optimizer::rsgd || optimizer == Optimizer::radam; }

CE_HD void sgd_update(float& param, float g, float lr) { param -= lr * g; }

// Row-wise Adagrad: acc += mean over the row of g^2, then every element moves by lr g / (sqrt(acc) + eps).
// Returns the factor lr / (sqrt(acc) + eps) after folding in `mean_g2`.
CE_HD float adagrad_row_factor(float& acc, float mean_g2, float lr, float epsilon) {
  acc += mean_g2;
  return lr / (std::sqrt(acc) + epsilon);
}

// Adagrad for one ungrouped parameter (the Dense layer's): its own accumulator of g^2.
CE_HD void adagrad_update(float& param, float& acc, float g, float lr, float epsilon) {
  param -= g * adagrad_row_factor(acc, g * g, lr, epsilon);
}

// ---- Riemannian optimization on the Poincaré ball ----
// The ball's metric is lambda_x^2 times the Euclidean one, lambda_x = 2 / (1 - |x|^2). A row's
// Riemannian gradient is its Euclidean gradient times 1 / lambda_x^2 = (1 - |x|^2)^2 / 4, taken at
// the row before the step; after the step the retraction puts the row back inside the ball.

// The Riemannian optimizers' burn-in (Nickel & Kiela 2017, sec. 3): the first epochs at this
// fraction of the learning rate, so that the initial angular layout forms before rows move outwards.
constexpr float kBurnInFactor = 0.1f;

CE_HD float burn_in_scale(int64_t epoch, int64_t burn_in_epochs) {
  return epoch < burn_in_epochs ? kBurnInFactor : 1.0f;
}

// 1 / lambda_x^2 = (1 - |x|^2)^2 / 4 from |x|^2.
CE_HD float poincare_metric_scale(float sq_norm) {
  const float alpha = std::fmax(1.0f - sq_norm, 0.0f);
  return alpha * alpha * 0.25f;
}

// The retraction's factor: 1 inside the ball of radius 1 - kBallEpsilon, else that radius / |x|.
CE_HD float ball_retraction(float sq_norm) {
  constexpr float kMaxNorm = 1.0f - kBallEpsilon;
  const float norm = std::sqrt(sq_norm);
  return norm > kMaxNorm ? kMaxNorm / norm : 1.0f;
}

// One element of Riemannian Adam in geoopt's RiemannianAdam form: the first moment of the
// Riemannian gradient s g, the second of its squared Riemannian norm per element, lambda^2 (s g)^2 =
// s g^2 (g2 is g^2 or the per-lookup sum, as adam_update's), then a Euclidean step that the caller
// retracts. s = poincare_metric_scale(|x|^2).
CE_HD void radam_update(float& param, float& m, float& v, float g, float g2, float s, float step_size,
                        const AdamCoefficients& c) {
  adam_update(param, m, v, s * g, s * g2, step_size, c);
}

}  // namespace cudaembed
