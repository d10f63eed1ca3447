// Initial parameters: Keras's initialisers, drawn from cuRAND's host generator.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/model.hpp"
#include "data/philox_host.hpp"

namespace cudaembed {

InitScheme parse_init_scheme(const std::string& name) {
  if (name == "robust") return InitScheme::robust;
  if (name == "keras") return InitScheme::keras;
  throw Error(fmt::format("--init: unknown scheme '{}' (allowed: robust, keras)", name));
}

const char* to_string(InitScheme scheme) { return scheme == InitScheme::robust ? "robust" : "keras"; }

ModelState init_model(int64_t rows, int dims, const InitSpec& spec, Optimizer optimizer) {
  ModelState s;
  s.rows = rows;
  s.dims = dims;
  const auto n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(dims);
  // A stream of its own: the pairs use `seed` itself.
  const auto bits = philox_bits_host(n + 1, mix64(spec.seed ^ 0x1a17ull));
  s.table.resize(n);
  for (uint64_t i = 0; i < n; ++i) s.table[i] = spec.embedding_range * (2.0f * unit_from_bits(bits[i]) - 1.0f);
  // Glorot-uniform for a 1x1 kernel: limit sqrt(6 / (fan_in + fan_out)) = sqrt(3). The robust draw
  // keeps the half where a similar pair's logit rises as its score moves the way similar rows move:
  // a distance shrinks (weight <= 0), a dot product grows (weight >= 0). The wrong half trains an
  // inverted embedding that the weight rarely climbs out of.
  const float limit = std::sqrt(3.0f), u = unit_from_bits(bits[n]);
  const float robust_limit = spec.head == Head::dot ? limit : -limit;  // euclidean and poincare are distances
  s.dense[0] = spec.scheme == InitScheme::keras ? limit * (2.0f * u - 1.0f) : robust_limit * u;
  s.dense[1] = 0.0f;
  if (optimizer == Optimizer::adam || optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam) {
    s.table_m.assign(n, 0.0f);
    s.table_v.assign(n, 0.0f);
  }
  if (optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam)
    s.row_step.assign(static_cast<std::size_t>(rows), 0);
  if (optimizer == Optimizer::adagrad) s.row_acc.assign(static_cast<std::size_t>(rows), 0.0f);
  return s;
}

bool parameters_finite(const ModelState& state) {
  return std::all_of(state.table.begin(), state.table.end(), [](float x) { return std::isfinite(x); }) &&
         std::isfinite(state.dense[0]) && std::isfinite(state.dense[1]);
}

}  // namespace cudaembed
