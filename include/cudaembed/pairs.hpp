// Labelled pairs (a, b, label): what the model trains on.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cudaembed {

struct PairSet {
  std::vector<uint32_t> a;   // (P,) row ids
  std::vector<uint32_t> b;   // (P,)
  std::vector<float> label;  // (P,) 1 = similar, 0 = not
  std::vector<float> weight;  // (P,) each pair's weight in the loss; empty: every pair weighs 1

  std::size_t size() const { return a.size(); }
  double positive_fraction() const;
};

// One training example, packed so that a step reads it in one cache line.
struct LabelledPair {
  uint32_t a, b;
  float label;
};

// One example as the sorted path reads it: 16 bytes, one vector load on the GPU.
// 16-byte aligned so that the GPU reads a record with one 16-byte load, not four 4-byte ones.
struct alignas(16) PairRecord {
  uint32_t a, b;
  float label, weight;
};
static_assert(sizeof(PairRecord) == 16 && alignof(PairRecord) == 16);

struct PairSpec {
  uint64_t count = 100000;
  uint64_t seed = 42;
  float threshold = 0.2f;  // label 1 when |rgb_a - rgb_b|^2 / 3 < threshold * U^2
};

// The random stream behind a pair set: 3 * count uint32 from cuRAND's Philox4x32-10 with `seed`,
// laid out as [a bits | b bits | U bits]. The host and device generators produce the same stream.
std::vector<uint32_t> pair_random_bits_host(uint64_t count, uint64_t seed);

// Turns the stream into pairs over the colours' rgb (N, 3): the CPU twin of the device kernel.
PairSet pairs_from_bits(std::span<const uint32_t> bits, std::span<const float> rgb, float threshold);

// Both steps on the CPU.
PairSet generate_pairs_host(std::span<const float> rgb, const PairSpec& spec);

}  // namespace cudaembed
