// The plain CPU reference of one training step: the truth the CUDA kernels are checked against.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cudaembed/backend.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

// The epoch's pairs in its shuffled order: out[i] = pairs[permute_index(i, P, key(seed, epoch))].
// Batch k is out[k*batch, min((k+1)*batch, P)); the CUDA kernels compute the same ids in place.
void shuffled_epoch(const PairSet& pairs, uint64_t seed, int64_t epoch, std::vector<LabelledPair>& out);

// Gradient scratch, (N, D) each, all zero between steps.
struct CpuWorkspace {
  std::vector<float> grad;                  // sum of the lookups' gradients
  std::vector<float> grad_sq;               // sum of their squares (SecondMoment::lookups only)
  std::vector<PairForward<float>> forward;  // (batch,) per pair: distance and what its backward needs
  std::vector<float> logit, prob, loss;     // (batch,)
  explicit CpuWorkspace(const ModelState& s, SecondMoment moment)
      : grad(s.table.size()), grad_sq(moment == SecondMoment::lookups ? s.table.size() : 0) {}
};

// One step: forward and backward of the batch (mean BCE), then Adam on every parameter (Keras's
// dense update: rows outside the batch still decay and move). Uses config's normalize, adam and
// second_moment. Adds the batch's per-sample sums to `metrics`.
void cpu_train_step(ModelState& state, std::span<const LabelledPair> batch, const TrainConfig& config,
                    CpuWorkspace& work, EpochMetrics& metrics);

}  // namespace cudaembed
