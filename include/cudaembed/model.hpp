// Model parameters and Adam state: Embedding(N, D) -> squared distance -> Dense(1) -> sigmoid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudaembed/math.hpp"

namespace cudaembed {

enum class InitScheme {
  robust,  // Keras's, but with the Dense weight's sign drawn to fit the head, so training starts in
           // the right basin: <= 0 for a distance (euclidean, poincare), >= 0 for a similarity (dot, cosine)
  keras,   // exactly Keras's defaults: Dense weight glorot-uniform, either sign
};

InitScheme parse_init_scheme(const std::string& name);
const char* to_string(InitScheme scheme);

struct ModelState {
  int64_t rows = 0;
  int dims = 0;
  std::vector<float> table;  // (N, D) embedding
  float dense[2] = {0, 0};   // Dense(1): weight, bias
  // Optimizer state, sized for the optimizer in use (empty where it has none):
  //   adam, lazy-adam, radam: moments table_m, table_v (N, D) and dense_m, dense_v;
  //   lazy-adam, radam also row_step (N,), each row's own update count;
  //   adagrad: row_acc (N,), and dense_v as the Dense layer's accumulators.
  std::vector<float> table_m, table_v;
  std::vector<float> row_acc;
  std::vector<int64_t> row_step;
  float dense_m[2] = {0, 0}, dense_v[2] = {0, 0};
  int64_t step = 0;  // steps taken
};

struct InitSpec {
  InitScheme scheme = InitScheme::robust;
  float embedding_range = 0.05f;  // Embedding ~ U(-r, r), Keras's default uniform initializer
  uint64_t seed = 42;
  Head head = Head::euclidean;  // what the Dense weight multiplies: sets the robust draw's sign
};

// Fresh parameters, zero optimizer state for `optimizer`. Draws from cuRAND's host Philox generator
// (its own stream of the seed), so an initial state does not depend on the backend.
ModelState init_model(int64_t rows, int dims, const InitSpec& spec, Optimizer optimizer = Optimizer::adam);
// Row sharding: the rows of init_model(rows, ...) that `placement` puts on its rank, drawn alone
// (the same values, from the same stream at their offsets), with their optimizer state.
struct RowPlacement;
ModelState init_model_shard(int64_t rows, int dims, const InitSpec& spec, Optimizer optimizer,
                            const RowPlacement& placement);

// Bytes of the table and its optimizer state, as a checkpoint holds them.
uint64_t state_bytes(const ModelState& state);

// Whether the table and the Dense layer hold no NaN or Inf (the optimizer state is not looked at).
bool parameters_finite(const ModelState& state);

}  // namespace cudaembed
