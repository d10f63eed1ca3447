// `cudaembed evaluate RUN --pairs FILE`: link prediction (filtered MRR, Hits@k, AUC) and graph
// reconstruction (MAP, mean rank) of any pairs file, its names resolved through the run's vocabulary.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cudaembed/error.hpp"
#include "cudaembed/link_prediction.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/run_dir.hpp"
#include "cli/query_commands.hpp"

namespace cudaembed {
namespace {

namespace fs = std::filesystem;

// What evaluate needs of run.json beyond read_run_dir: the model's Dense weight (its sign orders the
// scores), the seed, and how the run's pairs file named rows.
struct RunModel {
  float dense_weight = -1.0f;
  uint64_t seed = 0;
  IdKind ids = IdKind::names;  // colour runs: the colour names
};

RunModel read_run_model(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "run.json").string();
  std::ifstream in(path, std::ios::binary);
  try {
    const nlohmann::json run = nlohmann::json::parse(in);
    RunModel m;
    m.dense_weight = run.at("final").at("dense_weight").get<float>();
    m.seed = run.at("seed").get<uint64_t>();
    if (run.at("data").value("ids", std::string("names")) == "ints") m.ids = IdKind::ints;
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
}

// A pairs file over the run's rows. Pairs that name a row the run does not have are skipped and
// counted (a held-out file may well name items the run never saw), with a few of the names.
struct RunPairs {
  PairSet pairs;
  uint64_t read = 0, skipped = 0;
  std::vector<std::string> unknown;  // up to 3 names (or ids) of rows the run lacks
};

RunPairs read_run_pairs(const std::string& path, const RunDir& run, const RunModel& model) {
  PairsFileOptions options;
  options.ids = model.ids;
  const PairsData file = read_pairs_file(path, options);
  // row_of[file id]: the run's row, or -1.
  std::vector<int64_t> row_of;
  if (model.ids == IdKind::ints) {
    for (uint64_t id = 0; id < file.rows; ++id)
      row_of.push_back(id < static_cast<uint64_t>(run.rows) ? static_cast<int64_t>(id) : int64_t{-1});
  } else {
    const fs::path vocab = fs::path(run.path) / "vocab.tsv";
    const std::vector<std::string> names = fs::exists(vocab) ? read_vocab_tsv(vocab.string()) : run.names;
    std::unordered_map<std::string, uint32_t> row;
    for (uint32_t r = 0; r < names.size(); ++r) row.emplace(names[r], r);
    for (const std::string& name : file.names) {
      const auto found = row.find(name);
      row_of.push_back(found == row.end() ? int64_t{-1} : int64_t{found->second});
    }
  }
  RunPairs out;
  out.read = file.pairs.size();
  auto note_unknown = [&](uint32_t id) {
    if (row_of[id] >= 0 || out.unknown.size() >= 3) return;
    const std::string name = model.ids == IdKind::ints ? std::to_string(id) : file.names[id];
    if (std::find(out.unknown.begin(), out.unknown.end(), name) == out.unknown.end()) out.unknown.push_back(name);
  };
  for (std::size_t i = 0; i < file.pairs.size(); ++i) {
    const uint32_t a = file.pairs.a[i], b = file.pairs.b[i];
    if (row_of[a] < 0 || row_of[b] < 0) {
      ++out.skipped;
      note_unknown(a);
      note_unknown(b);
      continue;
    }
    out.pairs.a.push_back(static_cast<uint32_t>(row_of[a]));
    out.pairs.b.push_back(static_cast<uint32_t>(row_of[b]));
    out.pairs.label.push_back(file.pairs.label[i]);
  }
  if (out.skipped == out.read)
    throw Error(
        fmt::format("{}: none of its {} pairs names two rows of the run {} (for example {}); is it the run's "
                    "data?",
                    path, out.read, run.path, fmt::join(out.unknown, ", ")));
  if (out.skipped)
    spdlog::warn("{}: skipped {} of {} pairs that name rows the run does not have (for example {})", path, out.skipped,
                 out.read, fmt::join(out.unknown, ", "));
  return out;
}

}  // namespace

int run_evaluate_pairs(const EvaluateOptions& o) {
  const RunDir run = read_run_dir(o.run_dir);
  const RunModel model = read_run_model(o.run_dir);
  const bool use_gpu = use_gpu_for(o.device);
  const RunPairs file = read_run_pairs(o.pairs, run, model);
  std::vector<RunPairs> filters;
  for (const std::string& path : o.filters) filters.push_back(read_run_pairs(path, run, model));

  std::vector<const PairSet*> known_sets{&file.pairs};
  for (const RunPairs& f : filters) known_sets.push_back(&f.pairs);
  const auto rows = static_cast<uint32_t>(run.rows);
  const KnownPositives known = known_positives(rows, known_sets);
  std::vector<uint32_t> sources, targets;
  for (std::size_t i = 0; i < file.pairs.size(); ++i)
    if (is_positive(file.pairs.label[i])) {
      sources.push_back(file.pairs.a[i]);
      targets.push_back(file.pairs.b[i]);
    }
  if (sources.empty()) throw Error(fmt::format("{}: no positive pairs (label above 0.5) to rank", o.pairs));

  const std::vector<float> table = run.effective_embedding();  // (N, D), normalised for a cosine head
  const Head head = run.head == "euclidean" ? Head::euclidean : run.head == "poincare" ? Head::poincare : Head::dot;
  const uint32_t sampled = eval_candidates_for(o.eval_candidates, run.rows);
  const RankingInput in{table,   run.dims, head,    model.dense_weight,         sources,
                        targets, &known,   sampled, o.seed.value_or(model.seed)};
  const LinkPrediction lp = link_prediction(rank_counts(in, use_gpu), sampled);
  // Reconstruction ranks every row against every neighbour: with drawn candidates it is not defined.
  std::optional<Reconstruction> rec;
  if (sampled == 0) {
    const PairSet* only_file[] = {&file.pairs};
    rec = reconstruction(table, run.dims, head, model.dense_weight, known_positives(rows, only_file), use_gpu);
  }

  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"run", o.run_dir},
                                      {"pairs", o.pairs},
                                      {"filters", o.filters},
                                      {"pairs_read", file.read},
                                      {"pairs_skipped", file.skipped},
                                      {"link_prediction", to_json(lp)},
                                      {"reconstruction", rec ? to_json(*rec) : nlohmann::json()}}
                           .dump());
    return 0;
  }
  fmt::print("{} on {} ({} pairs{}), head {}:\n", o.run_dir, o.pairs, file.read,
             file.skipped ? fmt::format(", {} skipped", file.skipped) : std::string(), run.head);
  fmt::print("  link prediction: {}\n", summary(lp));
  if (rec)
    fmt::print("  {}\n", summary(*rec));
  else
    fmt::print("  reconstruction: not computed with drawn candidates (--eval-candidates 0 ranks every row)\n");
  return 0;
}

}  // namespace cudaembed
