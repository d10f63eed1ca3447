// Names of configuration choices, for flags and run.json.
#include <utility>

#include <fmt/format.h>

#include "cudaembed/config.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {

SecondMoment parse_second_moment(const std::string& name) {
  if (name == "lookups") return SecondMoment::lookups;
  if (name == "rows") return SecondMoment::rows;
  throw Error(fmt::format("--adam-v: unknown mode '{}' (allowed: lookups, rows)", name));
}

const char* to_string(SecondMoment moment) { return moment == SecondMoment::lookups ? "lookups" : "rows"; }

bool needs_sorted_path(const TrainConfig& c, bool weighted_pairs) {
  return c.kernel == "sorted" || c.head != Head::euclidean || c.optimizer != Optimizer::adam || c.negatives > 0 ||
         weighted_pairs;
}

void parse_head(const std::string& name, TrainConfig& config) {
  if (name == "euclidean") {
    config.head = Head::euclidean;
  } else if (name == "dot") {
    config.head = Head::dot;
  } else if (name == "cosine") {
    config.head = Head::dot;
    config.normalize = true;
  } else if (name == "poincare") {
    config.head = Head::poincare;
  } else {
    throw Error(fmt::format("--head: unknown head '{}' (allowed: euclidean, dot, cosine, poincare)", name));
  }
}

std::string head_name(const TrainConfig& config) {
  if (config.head == Head::euclidean) return "euclidean";  // --normalize is recorded on its own
  if (config.head == Head::poincare) return "poincare";
  return config.normalize ? "cosine" : "dot";
}

namespace {
constexpr std::pair<Optimizer, const char*> kOptimizers[] = {
    {Optimizer::adam, "adam"},       {Optimizer::lazy_adam, "lazy-adam"}, {Optimizer::sgd, "sgd"},
    {Optimizer::adagrad, "adagrad"}, {Optimizer::rsgd, "rsgd"},           {Optimizer::radam, "radam"}};
}  // namespace

Optimizer parse_optimizer(const std::string& name) {
  for (const auto& [optimizer, text] : kOptimizers)
    if (name == text) return optimizer;
  throw Error(
      fmt::format("--optimizer: unknown optimizer '{}' (allowed: adam, lazy-adam, sgd, adagrad, rsgd, radam)", name));
}

const char* to_string(Optimizer optimizer) {
  for (const auto& [o, text] : kOptimizers)
    if (o == optimizer) return text;
  return "?";
}

float default_learning_rate(Optimizer optimizer) {
  if (optimizer == Optimizer::rsgd) return 1.0f;
  if (optimizer == Optimizer::radam) return 0.01f;
  return optimizer == Optimizer::sgd ? 0.01f : 0.001f;
}

void check_head_optimizer(const TrainConfig& c) {
  const bool poincare = c.head == Head::poincare, riemannian = is_riemannian(c.optimizer);
  if (poincare && c.normalize)
    throw Error("--head poincare: rows live in the unit ball, so --normalize does not apply");
  if (poincare && !riemannian)
    throw Error(
        fmt::format("--head poincare: --optimizer {} would leave the ball; use radam or rsgd", to_string(c.optimizer)));
  if (riemannian && !poincare)
    throw Error(fmt::format("--optimizer {}: a Riemannian optimizer for --head poincare only", to_string(c.optimizer)));
  if (c.burn_in > 0 && !riemannian) throw Error("--burn-in: only the Riemannian optimizers (radam, rsgd) have one");
}

}  // namespace cudaembed
