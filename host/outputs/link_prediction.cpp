// Link prediction and graph reconstruction: the CPU reference loop over rank_math.hpp's helpers, the
// dispatch to the GPU, and the metrics from the counts (the same code for both devices' counts).
#include "cudaembed/link_prediction.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "cudaembed/error.hpp"

namespace cudaembed {

KnownPositives known_positives(uint32_t rows, std::span<const PairSet* const> sets) {
  // A counting sort into CSR: degrees, offsets, fill; then each row's run sorted and deduplicated.
  auto each_edge = [&](auto&& visit) {
    for (const PairSet* set : sets)
      for (std::size_t i = 0; i < set->size(); ++i) {
        const uint32_t a = set->a[i], b = set->b[i];
        if (!is_positive(set->label[i]) || a == b) continue;
        if (a >= rows || b >= rows)
          throw Error(fmt::format("known positives: pair ({}, {}) of a {}-row table", a, b, rows));
        visit(a, b);
        visit(b, a);
      }
  };
  std::vector<uint64_t> fill(static_cast<std::size_t>(rows) + 1, 0);
  each_edge([&](uint32_t from, uint32_t) { ++fill[from + 1]; });
  for (std::size_t r = 1; r < fill.size(); ++r) fill[r] += fill[r - 1];
  std::vector<uint32_t> all(fill.back());
  std::vector<uint64_t> start = fill;
  each_edge([&](uint32_t from, uint32_t to) { all[fill[from]++] = to; });
  KnownPositives known;
  known.offsets.reserve(start.size());
  known.offsets.push_back(0);
  known.rows.reserve(all.size());
  for (uint32_t r = 0; r < rows; ++r) {
    const auto first = all.begin() + static_cast<std::ptrdiff_t>(start[r]);
    const auto last = all.begin() + static_cast<std::ptrdiff_t>(start[r + 1]);
    std::sort(first, last);
    known.rows.insert(known.rows.end(), first, std::unique(first, last));
    known.offsets.push_back(known.rows.size());
  }
  return known;
}

RankView rank_view(const RankingInput& in) {
  RankView v;
  v.table = in.table.data();
  v.rows = static_cast<uint32_t>(in.table.size() / static_cast<std::size_t>(in.dims));
  v.dims = in.dims;
  v.head = in.head;
  v.direction = (in.dense_weight > 0) - (in.dense_weight < 0);
  v.sources = in.sources.data();
  v.targets = in.targets.data();
  v.known_offsets = in.known->offsets.data();
  v.known_rows = in.known->rows.data();
  v.sampled = in.sampled;
  v.seed = in.seed;
  return v;
}

namespace {

void check_input(const RankingInput& in) {
  if (in.dims <= 0 || in.table.size() % static_cast<std::size_t>(in.dims) != 0)
    throw Error(fmt::format("ranking: {} values do not make rows of {}", in.table.size(), in.dims));
  const std::size_t rows = in.table.size() / static_cast<std::size_t>(in.dims);
  if (rows >= 0xFFFFFFFFu) throw Error(fmt::format("ranking: {} rows, at most 2^32 - 2", rows));
  if (in.sources.size() != in.targets.size()) throw Error("ranking: sources and targets differ in length");
  if (!in.known || in.known->offsets.size() != rows + 1)
    throw Error("ranking: the known positives are not of this table");
  for (std::size_t q = 0; q < in.sources.size(); ++q)
    if (in.sources[q] >= rows || in.targets[q] >= rows)
      throw Error(fmt::format("ranking: query ({}, {}) of a {}-row table", in.sources[q], in.targets[q], rows));
}

}  // namespace

std::vector<RankCounts> cpu_rank_counts(const RankingInput& input) {
  check_input(input);
  const RankView v = rank_view(input);
  std::vector<RankCounts> out(input.sources.size());
  for (uint64_t q = 0; q < out.size(); ++q) {
    const float target = target_preference(v, q);
    for (uint32_t s = 0; s < rank_slots(v); ++s) tally_slot(v, q, target, s, out[q]);
    for (uint64_t k = 0; k < known_count(v, q); ++k) tally_known(v, q, target, k, out[q]);
  }
  return out;
}

std::vector<RankCounts> rank_counts(const RankingInput& input, bool use_gpu) {
  if (!use_gpu) return cpu_rank_counts(input);
  check_input(input);
  return cuda_rank_counts(input);
}

LinkPrediction link_prediction(std::span<const RankCounts> counts, uint32_t sampled) {
  LinkPrediction m;
  m.queries = counts.size();
  m.sampled = sampled;
  if (counts.empty()) return m;
  for (const RankCounts& c : counts) {
    const double rank = rank_of(c);
    m.mrr += 1.0 / rank;
    m.hits1 += rank <= 1;
    m.hits10 += rank <= 10;
    m.hits50 += rank <= 50;
    m.auc += auc_of(c);
    m.mean_rank += rank;
  }
  const auto n = static_cast<double>(counts.size());
  for (double* x : {&m.mrr, &m.hits1, &m.hits10, &m.hits50, &m.auc, &m.mean_rank}) *x /= n;
  return m;
}

Reconstruction reconstruction(std::span<const float> table, int dims, Head head, float dense_weight,
                              const KnownPositives& neighbours, bool use_gpu) {
  // Every edge (u, v), u ascending and v ascending within it: the queries, grouped by u.
  std::vector<uint32_t> sources, targets;
  sources.reserve(neighbours.rows.size());
  for (uint32_t u = 0; u + 1 < neighbours.offsets.size(); ++u)
    for (uint64_t k = neighbours.offsets[u]; k < neighbours.offsets[u + 1]; ++k) {
      sources.push_back(u);
      targets.push_back(neighbours.rows[k]);
    }
  RankingInput in{table, dims, head, dense_weight, sources, targets, &neighbours, 0, 0};
  const std::vector<RankCounts> counts = rank_counts(in, use_gpu);
  Reconstruction m;
  m.edges = counts.size();
  for (std::size_t q = 0; q < counts.size();) {
    // Average precision of u (sklearn's average_precision_score, which Nickel & Kiela call): the
    // mean over its neighbours v of the precision at v's score, the rows tied with v counted above it.
    const uint32_t u = sources[q];
    double precision_sum = 0;
    const std::size_t first = q;
    for (; q < counts.size() && sources[q] == u; ++q) {
      const RankCounts& c = counts[q];
      precision_sum += static_cast<double>(c.known_at_or_above) / (c.better + c.equal + c.known_at_or_above);
      m.mean_rank += rank_of(c);
    }
    m.map += precision_sum / static_cast<double>(q - first);
    m.nodes += 1;
  }
  if (m.nodes) m.map /= static_cast<double>(m.nodes);
  if (m.edges) m.mean_rank /= static_cast<double>(m.edges);
  return m;
}

nlohmann::json to_json(const LinkPrediction& m) {
  return {{"queries", m.queries}, {"candidates", m.sampled ? nlohmann::json(m.sampled) : nlohmann::json("all")},
          {"filtered", true},     {"ties", "mean"},
          {"mrr", m.mrr},         {"hits@1", m.hits1},
          {"hits@10", m.hits10},  {"hits@50", m.hits50},
          {"auc", m.auc},         {"mean_rank", m.mean_rank}};
}

nlohmann::json to_json(const Reconstruction& m) {
  return {{"nodes", m.nodes}, {"edges", m.edges}, {"map", m.map}, {"mean_rank", m.mean_rank}};
}

std::string summary(const LinkPrediction& m) {
  return fmt::format(
      "MRR {:.4f}, Hits@1 {:.4f}, Hits@10 {:.4f}, Hits@50 {:.4f}, AUC {:.4f}, mean rank {:.1f} ({} "
      "pairs, filtered, against {})",
      m.mrr, m.hits1, m.hits10, m.hits50, m.auc, m.mean_rank, m.queries,
      m.sampled ? fmt::format("{} sampled rows", m.sampled) : std::string("all rows"));
}

std::string summary(const Reconstruction& m) {
  return fmt::format("reconstruction MAP {:.4f}, mean rank {:.2f} ({} nodes, {} edges)", m.map, m.mean_rank, m.nodes,
                     m.edges);
}

uint32_t eval_candidates_for(int64_t requested, int64_t rows) {
  if (requested >= 0) return static_cast<uint32_t>(requested);
  return rows <= kRankAllRowsUpTo ? 0 : kDefaultSampledCandidates;
}

}  // namespace cudaembed
