// Link-prediction metrics of an embedding on pairs (MRR, Hits@k, AUC) and graph reconstruction
// (MAP and mean rank, Nickel & Kiela 2017). docs/evaluation.md defines every number.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cudaembed/pairs.hpp"
#include "cudaembed/rank_math.hpp"

namespace cudaembed {

// A pair is a positive when its label is above 0.5 (as Keras's accuracy reads labels).
inline bool is_positive(float label) { return label > 0.5f; }

// Each row's known positives as CSR: every positive pair (a, b) of every set, in both directions
// (every head is symmetric: a pair (b, a) says as much about a as (a, b)), sorted, without
// duplicates and without the row itself.
struct KnownPositives {
  std::vector<uint64_t> offsets;  // (rows + 1,)
  std::vector<uint32_t> rows;     // (offsets.back(),)
  std::size_t count(uint32_t row) const { return offsets[row + 1] - offsets[row]; }
};
KnownPositives known_positives(uint32_t rows, std::span<const PairSet* const> sets);

// What to rank: pairs of a table by a head, with the sign of the model's Dense weight.
struct RankingInput {
  std::span<const float> table;  // (rows, dims) as the model compares them (normalised for cosine)
  int dims = 0;
  Head head = Head::euclidean;
  float dense_weight = -1.0f;                  // only its sign matters (see preference())
  std::span<const uint32_t> sources, targets;  // (Q,) each
  const KnownPositives* known = nullptr;       // filtered out of every query's candidates
  uint32_t sampled = 0;                        // 0: all rows; else this many uniform draws per query
  uint64_t seed = 0;                           // of the draws
};

// The input as rank_math.hpp's view, over its host memory (the GPU swaps in device pointers).
RankView rank_view(const RankingInput& input);

// One RankCounts per query, on the GPU when use_gpu (the same integers: rank_math.hpp).
std::vector<RankCounts> rank_counts(const RankingInput& input, bool use_gpu);
std::vector<RankCounts> cpu_rank_counts(const RankingInput& input);
// cuda/link_prediction_gpu.cpp; throws Error without a device.
std::vector<RankCounts> cuda_rank_counts(const RankingInput& input);

struct LinkPrediction {
  uint64_t queries = 0;
  uint32_t sampled = 0;  // 0: ranked against every row
  double mrr = 0, hits1 = 0, hits10 = 0, hits50 = 0, auc = 0, mean_rank = 0;
};
LinkPrediction link_prediction(std::span<const RankCounts> counts, uint32_t sampled);

struct Reconstruction {
  uint64_t nodes = 0;  // rows with at least one neighbour
  uint64_t edges = 0;  // (u, v) with v a neighbour of u: each undirected edge twice
  double map = 0, mean_rank = 0;
};
// Every row u with neighbours N(u) (the known positives) ranks every other row; mean rank of the
// neighbours among the rows that are not neighbours, and the mean over u of the average precision.
Reconstruction reconstruction(std::span<const float> table, int dims, Head head, float dense_weight,
                              const KnownPositives& neighbours, bool use_gpu);

nlohmann::json to_json(const LinkPrediction& m);
nlohmann::json to_json(const Reconstruction& m);
// One line for the log: "MRR 0.512, Hits@1 0.40, ...".
std::string summary(const LinkPrediction& m);
std::string summary(const Reconstruction& m);

// The sampled candidates when --eval-candidates is not given: every row up to this many rows.
constexpr uint32_t kRankAllRowsUpTo = 100000;
constexpr uint32_t kDefaultSampledCandidates = 10000;
// --eval-candidates as given (-1: not given) for a table of `rows`: 0 (all rows) or a draw count.
uint32_t eval_candidates_for(int64_t requested, int64_t rows);

}  // namespace cudaembed
