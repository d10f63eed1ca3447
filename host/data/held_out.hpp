// A run's held-out pairs (`train --validation F`): split off before training, scored after every
// epoch (val_loss) and ranked at the end (link prediction). train_command.cpp holds one per run.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cudaembed/config.hpp"
#include "cudaembed/link_prediction.hpp"
#include "cudaembed/model.hpp"
#include "cudaembed/pairs.hpp"

namespace cudaembed {

class HeldOutPairs {
 public:
  // Splits `pairs` (split_validation with the run's seed); `pairs` keeps the part that trains.
  HeldOutPairs(PairSet& pairs, double fraction, const TrainConfig& config, int64_t rows);

  // The validation loss of the model now (validation_loss on the held-out samples).
  double loss(const ModelState& state) const;
  // Each held-out positive (a, b) ranks b among the rows, filtered of a's known positives (training
  // and held out). `table` (N, D) as the model compares its rows; eval_candidates as --eval-candidates.
  LinkPrediction rank(std::span<const float> table, float dense_weight, int64_t eval_candidates, bool use_gpu) const;
  // The held-out pairs as a pairs CSV (a,b,label[,weight]) over `names`: what `evaluate --pairs` reads.
  void write_csv(const std::string& path, const std::vector<std::string>& names) const;
  // run.json's data.validation.
  nlohmann::json summary() const;

 private:
  TrainConfig config_;
  double fraction_;
  uint64_t train_pairs_;
  PairSet held_out_;
  uint64_t held_positives_, held_negatives_;
  std::vector<PairRecord> samples_;  // the held-out pairs and their fixed negatives
  KnownPositives known_;             // every positive of the file, training and held out
};

// A name as one CSV field: quoted (RFC 4180) when it holds a comma, a quote, a line break, or
// spaces or tabs at either end (which the reader would drop), or is empty.
std::string csv_field(const std::string& name);

}  // namespace cudaembed
