// The held-out pairs of a `train --validation F` run: the split, the per-epoch loss, the ranking.
#include "data/held_out.hpp"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "cudaembed/outputs.hpp"
#include "cudaembed/validation.hpp"

namespace cudaembed {

HeldOutPairs::HeldOutPairs(PairSet& pairs, double fraction, const TrainConfig& config, int64_t rows)
    : config_(config), fraction_(fraction) {
  ValidationSplit split = split_validation(pairs, fraction, config.seed);
  const PairSet* both[] = {&split.train, &split.held_out};
  known_ = known_positives(static_cast<uint32_t>(rows), both);
  held_out_ = std::move(split.held_out);
  held_positives_ = split.held_positives;
  held_negatives_ = split.held_negatives;
  samples_ = validation_samples(held_out_, config.negatives, config.seed, static_cast<uint32_t>(rows));
  pairs = std::move(split.train);
  train_pairs_ = pairs.size();
  spdlog::info("--validation {}: holding out {} positive and {} other pairs (seed {}); {} pairs train", fraction,
               held_positives_, held_negatives_, config.seed, train_pairs_);
}

double HeldOutPairs::loss(const ModelState& state) const { return validation_loss(samples_, state, config_); }

LinkPrediction HeldOutPairs::rank(std::span<const float> table, float dense_weight, int64_t eval_candidates,
                                  bool use_gpu) const {
  std::vector<uint32_t> sources, targets;
  for (std::size_t i = 0; i < held_out_.size(); ++i)
    if (is_positive(held_out_.label[i])) {
      sources.push_back(held_out_.a[i]);
      targets.push_back(held_out_.b[i]);
    }
  const int64_t rows = static_cast<int64_t>(table.size()) / config_.dims;
  const uint32_t sampled = eval_candidates_for(eval_candidates, rows);
  spdlog::info("ranking {} held-out positives against {} on the {}", sources.size(),
               sampled ? fmt::format("{} drawn rows each", sampled) : fmt::format("all {} rows", rows),
               use_gpu ? "GPU" : "CPU");
  const RankingInput in{table,   config_.dims, config_.head, dense_weight, sources,
                        targets, &known_,      sampled,      config_.seed};
  return link_prediction(rank_counts(in, use_gpu), sampled);
}

std::string csv_field(const std::string& name) {
  const bool plain = !name.empty() && name.find_first_of(",\"\r\n") == std::string::npos && name.front() != ' ' &&
                     name.front() != '\t' && name.back() != ' ' && name.back() != '\t';
  if (plain) return name;
  std::string out = "\"";
  for (const char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void HeldOutPairs::write_csv(const std::string& path, const std::vector<std::string>& names) const {
  const bool weighted = !held_out_.weight.empty();
  std::string out = weighted ? "a,b,label,weight\n" : "a,b,label\n";
  for (std::size_t i = 0; i < held_out_.size(); ++i) {
    out +=
        fmt::format("{},{},{}", csv_field(names[held_out_.a[i]]), csv_field(names[held_out_.b[i]]), held_out_.label[i]);
    out += weighted ? fmt::format(",{}\n", held_out_.weight[i]) : std::string("\n");
  }
  write_text_file(path, out);
}

nlohmann::json HeldOutPairs::summary() const {
  return {{"fraction", fraction_},
          {"held_out_positives", held_positives_},
          {"held_out_others", held_negatives_},
          {"training_pairs", train_pairs_},
          {"loss_samples", samples_.size()},
          {"negatives_per_pair", config_.negatives},
          {"pairs_file", "validation_pairs.csv"}};
}

}  // namespace cudaembed
