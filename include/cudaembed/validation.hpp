// Held-out validation for runs on a pairs file (`train --validation F`): the seeded split of the
// pairs and the validation loss after each epoch. docs/evaluation.md says what is held out and why.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cudaembed/config.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

struct ValidationSplit {
  PairSet train;     // the pairs that train, in the file's order
  PairSet held_out;  // the others, in the file's order: they never train
  uint64_t held_positives = 0, held_negatives = 0;
};

// Holds out round(fraction * P+) of the P+ positive pairs and round(fraction * P-) of the P- other
// pairs (a labelled file's negatives), each chosen by a permutation seeded from `seed`: the same
// seed and file give the same split. Throws Error when no positive would be held out or none left.
ValidationSplit split_validation(const PairSet& pairs, double fraction, uint64_t seed);

// What the validation loss is computed over: every held-out pair and, with negatives K > 0, K
// negatives (a, uniform row, label 0, the pair's weight) per pair, drawn once from `seed`, so every
// epoch is scored on the same samples.
std::vector<PairRecord> validation_samples(const PairSet& held_out, int negatives, uint64_t seed, uint32_t rows);

// The training loss on those samples: the mean over samples of weight * BCE(sigmoid(w s + b), label),
// as an epoch's loss is computed.
double validation_loss(std::span<const PairRecord> samples, const ModelState& state, const TrainConfig& config);

}  // namespace cudaembed
