// Pair generation on the CPU: cuRAND's Philox stream (philox_host.hpp), then the labels of math.hpp.
#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/pairs.hpp"
#include "data/philox_host.hpp"

namespace cudaembed {

double PairSet::positive_fraction() const {
  double positives = 0;
  for (float y : label) positives += y;
  return label.empty() ? 0.0 : positives / static_cast<double>(label.size());
}

std::vector<uint32_t> pair_random_bits_host(uint64_t count, uint64_t seed) { return philox_bits_host(3 * count, seed); }

PairSet pairs_from_bits(std::span<const uint32_t> bits, std::span<const float> rgb, float threshold) {
  const uint64_t count = bits.size() / 3;
  const auto colours = static_cast<uint32_t>(rgb.size() / 3);
  if (colours == 0) throw Error("cannot draw pairs from an empty colour table");
  PairSet pairs;
  pairs.a.resize(count);
  pairs.b.resize(count);
  pairs.label.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t a = index_from_bits(bits[i], colours);
    const uint32_t b = index_from_bits(bits[count + i], colours);
    const float u = unit_from_bits(bits[2 * count + i]);
    pairs.a[i] = a;
    pairs.b[i] = b;
    pairs.label[i] = colour_pair_label(&rgb[3 * a], &rgb[3 * b], u, threshold);
  }
  return pairs;
}

PairSet generate_pairs_host(std::span<const float> rgb, const PairSpec& spec) {
  return pairs_from_bits(pair_random_bits_host(spec.count, spec.seed), rgb, spec.threshold);
}

}  // namespace cudaembed
