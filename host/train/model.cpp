// Initial parameters: Keras's initialisers, drawn from cuRAND's host generator.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "cudaembed/distributed.hpp"
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

namespace {

// A stream of its own: the pairs use `seed` itself.
uint64_t init_stream(const InitSpec& spec) { return mix64(spec.seed ^ 0x1a17ull); }

float table_value(const InitSpec& spec, uint32_t bits) {
  return spec.embedding_range * (2.0f * unit_from_bits(bits) - 1.0f);
}

// The Dense layer from the number after the table's. Glorot-uniform for a 1x1 kernel: limit
// sqrt(6 / (fan_in + fan_out)) = sqrt(3). The robust draw keeps the half where a similar pair's
// logit rises as its score moves the way similar rows move: a distance shrinks (weight <= 0), a dot
// product grows (weight >= 0). The wrong half trains an inverted embedding that the weight rarely
// climbs out of.
void draw_dense(ModelState& s, const InitSpec& spec, uint32_t bits) {
  const float limit = std::sqrt(3.0f), u = unit_from_bits(bits);
  const float robust_limit = spec.head == Head::dot ? limit : -limit;  // euclidean and poincare are distances
  s.dense[0] = spec.scheme == InitScheme::keras ? limit * (2.0f * u - 1.0f) : robust_limit * u;
  s.dense[1] = 0.0f;
}

// Zero optimizer state for s.rows x s.dims under `optimizer`.
void zero_optimizer_state(ModelState& s, Optimizer optimizer) {
  const std::size_t n = s.table.size();
  if (optimizer == Optimizer::adam || optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam) {
    s.table_m.assign(n, 0.0f);
    s.table_v.assign(n, 0.0f);
  }
  if (optimizer == Optimizer::lazy_adam || optimizer == Optimizer::radam)
    s.row_step.assign(static_cast<std::size_t>(s.rows), 0);
  if (optimizer == Optimizer::adagrad) s.row_acc.assign(static_cast<std::size_t>(s.rows), 0.0f);
}

}  // namespace

ModelState init_model(int64_t rows, int dims, const InitSpec& spec, Optimizer optimizer) {
  ModelState s;
  s.rows = rows;
  s.dims = dims;
  const auto n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(dims);
  const auto bits = philox_bits_host(n + 1, init_stream(spec));
  s.table.resize(n);
  for (uint64_t i = 0; i < n; ++i) s.table[i] = table_value(spec, bits[i]);
  draw_dense(s, spec, bits[n]);
  zero_optimizer_state(s, optimizer);
  return s;
}

ModelState init_model_shard(int64_t rows, int dims, const InitSpec& spec, Optimizer optimizer,
                            const RowPlacement& placement) {
  ModelState s;
  s.rows = placement.local_rows(rows);
  s.dims = dims;
  const auto d = static_cast<uint64_t>(dims);
  s.table.resize(static_cast<std::size_t>(s.rows) * d);
  for (int64_t i = 0; i < s.rows; ++i) {
    const auto bits = philox_bits_host(d, init_stream(spec), placement.global(static_cast<uint64_t>(i)) * d);
    for (uint64_t k = 0; k < d; ++k) s.table[static_cast<std::size_t>(i) * d + k] = table_value(spec, bits[k]);
  }
  draw_dense(s, spec, philox_bits_host(1, init_stream(spec), static_cast<uint64_t>(rows) * d)[0]);
  zero_optimizer_state(s, optimizer);
  return s;
}

uint64_t state_bytes(const ModelState& s) {
  return (s.table.size() + s.table_m.size() + s.table_v.size() + s.row_acc.size()) * sizeof(float) +
         s.row_step.size() * sizeof(int64_t);
}

bool parameters_finite(const ModelState& state) {
  return std::all_of(state.table.begin(), state.table.end(), [](float x) { return std::isfinite(x); }) &&
         std::isfinite(state.dense[0]) && std::isfinite(state.dense[1]);
}

}  // namespace cudaembed
