// The held-out split of a pairs file and the validation loss, on the CPU (a forward pass only).
#include "cudaembed/validation.hpp"

#include <cmath>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/link_prediction.hpp"
#include "cudaembed/math.hpp"

namespace cudaembed {
namespace {

// Marks round(fraction * ids.size()) of `ids` as held out: the first positions of a seeded permutation.
uint64_t hold_out(const std::vector<uint32_t>& ids, double fraction, uint32_t key, std::vector<char>& held) {
  const auto count = static_cast<uint64_t>(std::llround(fraction * static_cast<double>(ids.size())));
  const Permutation perm = make_permutation(static_cast<uint32_t>(ids.size()), key);
  for (uint32_t i = 0; i < count; ++i) held[ids[permute_index(i, perm)]] = 1;
  return count;
}

void append(PairSet& to, const PairSet& from, std::size_t i) {
  to.a.push_back(from.a[i]);
  to.b.push_back(from.b[i]);
  to.label.push_back(from.label[i]);
  if (!from.weight.empty()) to.weight.push_back(from.weight[i]);
}

}  // namespace

ValidationSplit split_validation(const PairSet& pairs, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1))
    throw Error(fmt::format("--validation {}: expected a fraction in (0, 1)", fraction));
  if (pairs.size() >= 0xFFFFFFFFu) throw Error("--validation: at most 2^32 - 2 pairs");
  std::vector<uint32_t> positives, others;
  for (uint32_t i = 0; i < pairs.size(); ++i) (is_positive(pairs.label[i]) ? positives : others).push_back(i);
  std::vector<char> held(pairs.size(), 0);
  ValidationSplit split;
  split.held_positives = hold_out(positives, fraction, static_cast<uint32_t>(mix64(seed ^ 0x76616c2d706f73ull)), held);
  split.held_negatives = hold_out(others, fraction, static_cast<uint32_t>(mix64(seed ^ 0x76616c2d6e6567ull)), held);
  if (split.held_positives == 0)
    throw Error(fmt::format("--validation {}: holds out none of the {} positive pairs; use a larger fraction", fraction,
                            positives.size()));
  if (split.held_positives == positives.size())
    throw Error(fmt::format("--validation {}: holds out all {} positive pairs, leaving none to train on", fraction,
                            positives.size()));
  for (std::size_t i = 0; i < pairs.size(); ++i) append(held[i] ? split.held_out : split.train, pairs, i);
  return split;
}

std::vector<PairRecord> validation_samples(const PairSet& held_out, int negatives, uint64_t seed, uint32_t rows) {
  const uint64_t draws = mix64(seed ^ 0x76616c2d6e656773ull);
  std::vector<PairRecord> samples;
  samples.reserve(held_out.size() * (static_cast<std::size_t>(negatives) + 1));
  for (std::size_t i = 0; i < held_out.size(); ++i) {
    const float weight = held_out.weight.empty() ? 1.0f : held_out.weight[i];
    samples.push_back({held_out.a[i], held_out.b[i], held_out.label[i], weight});
    for (int k = 1; k <= negatives; ++k)
      samples.push_back(
          {held_out.a[i], negative_row(draws, static_cast<int64_t>(i), static_cast<uint32_t>(k), rows), 0.0f, weight});
  }
  return samples;
}

double validation_loss(std::span<const PairRecord> samples, const ModelState& state, const TrainConfig& config) {
  if (samples.empty()) return 0.0;
  const int dims = state.dims;
  double sum = 0;
  for (const PairRecord& x : samples) {
    const float* ea = &state.table[static_cast<std::size_t>(x.a) * dims];
    const float* eb = &state.table[static_cast<std::size_t>(x.b) * dims];
    const PairForward<float> f = pair_forward(ea, eb, dims, config.normalize, config.head);
    sum += x.weight * bce_from_logit(state.dense[0] * f.score + state.dense[1], x.label).loss;
  }
  return sum / static_cast<double>(samples.size());
}

}  // namespace cudaembed
