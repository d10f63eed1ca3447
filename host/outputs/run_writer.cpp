// write_run_dir: a trained model's files, in formats other tools read (docs/run-directory.md).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "cudaembed/api.hpp"
#include "cudaembed/link_prediction.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/version.hpp"
#include "data/held_out.hpp"
#include "data/philox_host.hpp"

namespace cudaembed {
namespace {

using Clock = std::chrono::steady_clock;

// Text outputs and the plot are for tables a person can look at; past these sizes they are skipped
// (embedding.npy holds the table, and `cudaembed plot` still draws it on request).
constexpr uint64_t kMaxTextValues = 10'000'000;
constexpr int64_t kMaxPlotRows = 100'000;

// One line per row of `rows` (N, D), values tab-separated.
std::string vectors_tsv(const std::vector<float>& rows, int dims) {
  std::string out;
  for (std::size_t r = 0; r * dims < rows.size(); ++r) {
    for (int k = 0; k < dims; ++k) out += fmt::format("{}{:.9g}", k ? "\t" : "", rows[r * dims + k]);
    out += '\n';
  }
  return out;
}

// word2vec's text format: "N D", then one row per line, name first. Names may hold spaces
// ("gray50, grey50"), which the format uses as separators: they become underscores.
std::string word2vec_text(const std::vector<float>& rows, int dims, const std::vector<std::string>& names) {
  std::string out = fmt::format("{} {}\n", names.size(), dims);
  for (std::size_t r = 0; r < names.size(); ++r) {
    std::string name = names[r];
    std::replace_if(
        name.begin(), name.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }, '_');
    out += name;
    for (int k = 0; k < dims; ++k) out += fmt::format(" {:.9g}", rows[r * dims + k]);
    out += '\n';
  }
  return out;
}

// With validation, a val_loss column: the loss on the held-out pairs after each epoch.
std::string metrics_csv(const std::vector<EpochRecord>& history, const std::vector<double>& val_loss) {
  std::string out =
      val_loss.empty() ? "epoch,loss,mse,accuracy,seconds\n" : "epoch,loss,mse,accuracy,seconds,val_loss\n";
  for (std::size_t i = 0; i < history.size(); ++i) {
    const EpochRecord& r = history[i];
    out += fmt::format("{},{:.9g},{:.9g},{:.9g},{:.6f}", r.epoch, r.metrics.loss(), r.metrics.mse(),
                       r.metrics.accuracy(), r.seconds);
    out += val_loss.empty() ? "\n" : fmt::format(",{:.9g}\n", val_loss[i]);
  }
  return out;
}

void write_pair_arrays(const PairSet& pairs, const std::filesystem::path& dir) {
  std::vector<uint32_t> ids(2 * pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    ids[2 * i] = pairs.a[i];
    ids[2 * i + 1] = pairs.b[i];
  }
  write_npy((dir / "pair_ids.npy").string(), ids, {pairs.size(), 2});
  write_npy((dir / "pair_labels.npy").string(), pairs.label, {pairs.size()});
}

// The table and the files other tools read; returns the names written.
std::vector<std::string> write_tables(const TrainedModel& m, const RunDirOptions& o, const std::vector<float>& rows) {
  const std::filesystem::path dir(o.path);
  std::vector<std::string> written{"embedding.npy", "metadata.tsv", "metrics.csv", "run.json"};
  const auto table_size = static_cast<uint64_t>(rows.size());
  write_npy((dir / "embedding.npy").string(), rows,
            {static_cast<uint64_t>(m.state.rows), static_cast<uint64_t>(m.state.dims)});
  if (o.save_pairs) {
    write_pair_arrays(m.data.pairs, dir);
    written.insert(written.end(), {"pair_ids.npy", "pair_labels.npy"});
  }
  if (o.snapshots_written) written.emplace_back("snapshots.npy");
  if (o.checkpoint_written) written.emplace_back("checkpoint.bin");
  write_text_file((dir / "metadata.tsv").string(), m.data.metadata);
  write_text_file((dir / "metrics.csv").string(), metrics_csv(m.history, m.val_loss));
  if (!m.data.vocab.empty()) {
    write_vocab_tsv((dir / "vocab.tsv").string(), m.data.vocab);
    written.emplace_back("vocab.tsv");
  }
  if (table_size <= kMaxTextValues) {
    write_text_file((dir / "vectors.tsv").string(), vectors_tsv(rows, m.config.dims));
    write_text_file((dir / "word2vec.txt").string(), word2vec_text(rows, m.config.dims, m.data.names));
    written.insert(written.end(), {"vectors.tsv", "word2vec.txt"});
  } else {
    spdlog::info("not writing vectors.tsv and word2vec.txt: {} values is more text than anyone reads", table_size);
  }
  return written;
}

// run.json's "final": the last epoch's metrics, the Dense layer and, for colours, the quality
// against RGB; logs the run's last line of results.
nlohmann::json final_metrics(const TrainedModel& m, const std::vector<float>& rows, double total_s) {
  nlohmann::json final_json = {{"dense_weight", json_number(m.state.dense[0])},
                               {"dense_bias", json_number(m.state.dense[1])}};
  EpochMetrics last;
  if (!m.history.empty()) {
    last = m.history.back().metrics;
    final_json.update({{"loss", last.loss()}, {"mse", last.mse()}, {"accuracy", last.accuracy()}});
  }
  std::string quality_text;
  if (!m.data.rgb.empty()) {
    const EmbeddingQuality quality = evaluate_embedding(rows, m.config.dims, m.data.rgb, 3, 10, m.backend.name == "cuda");
    final_json["spearman_rgb"] = quality.spearman;
    final_json["knn10_overlap_rgb"] = quality.knn_overlap;
    quality_text =
        fmt::format("; against RGB: Spearman {:.3f}, 10-NN overlap {:.3f}", quality.spearman, quality.knn_overlap);
  }
  spdlog::info("done in {:.2f} s (training {:.2f} s): loss {:.4f}, accuracy {:.4f}{}", total_s, m.train_s, last.loss(),
               last.accuracy(), quality_text);
  if (!m.val_loss.empty()) final_json["val_loss"] = m.val_loss.back();
  return final_json;
}

nlohmann::json run_json(const TrainedModel& m, const RunDirOptions& o, const nlohmann::json& final_json,
                        double total_s) {
  const TrainingData& data = m.data;
  return {
      {"cudaembed_version", kVersion},
      {"command", "train"},
      {"config", o.config.is_null() ? run_config_json(m) : o.config},
      {"initial_dense", {json_number(m.initial_dense[0]), json_number(m.initial_dense[1])}},
      {"rows_l2_normalized", m.config.normalize},  // embedding.npy, snapshots.npy, vectors.tsv, word2vec.txt
      {"seed", m.config.seed},
      {"pair_rng", kPairRng},  // the same bits on every backend and build
      {"backend", {{"name", m.backend.name}, {"device", m.backend.device}, {"kernel", m.backend.kernel}}},
      {"versions", {{"cuda", cuda_versions()}, {"compiler", kCompiler}, {"build_type", kBuildType}}},
      {"data", data.summary},
      {"timings_s", {{"parse", data.parse_s}, {"pairs", data.pairs_s}, {"train", m.train_s}, {"total", total_s}}},
      {"final", final_json},
  };
}

}  // namespace

nlohmann::json run_config_json(const std::string& data, const TrainConfig& t, const InitSpec& init,
                               const std::string& device) {
  return {{"data", data},
          {"dims", t.dims},
          {"normalize", t.normalize},
          {"head", head_name(t)},
          {"optimizer", to_string(t.optimizer)},
          {"negatives", t.negatives},
          {"burn_in", t.burn_in},
          {"epochs", t.epochs},
          {"batch", t.batch},
          {"lr", json_number(t.adam.lr)},
          {"beta1", json_number(t.adam.beta1)},
          {"beta2", json_number(t.adam.beta2)},
          {"epsilon", json_number(t.adam.epsilon)},
          {"adam_v", to_string(t.second_moment)},
          {"init", to_string(init.scheme)},
          {"embedding_init_range", json_number(init.embedding_range)},
          {"device", device},
          {"kernel", t.kernel}};
}

nlohmann::json run_config_json(const TrainedModel& m) {
  nlohmann::json config = run_config_json(m.data.source, m.config, m.init, m.device);
  if (m.held_out) config["validation"] = m.validation;
  config["pairs"] = m.data.pairs.size();
  config["steps_per_epoch"] = steps_per_epoch(m.data.pairs.size(), m.config.batch);
  if (m.ranks > 1) {  // each rank trained a slice of every batch
    config["ranks"] = m.ranks;
    config["parallel"] = to_string(m.parallel);
  }
  return config;
}

std::vector<std::string> write_run_dir(const TrainedModel& m, const RunDirOptions& o) {
  const auto start = Clock::now();
  const std::filesystem::path dir(o.path);
  const std::vector<float> rows = m.rows();  // (N, D), as the snapshots
  std::vector<std::string> written = write_tables(m, o, rows);
  auto total_s = [&] {
    const auto since = o.start.value_or(start);
    const double before = o.start ? 0.0 : m.data.parse_s + m.data.pairs_s + m.train_s;
    return before + std::chrono::duration<double>(Clock::now() - since).count();
  };
  const nlohmann::json final_json = final_metrics(m, rows, total_s());
  std::optional<LinkPrediction> lp;
  if (m.held_out) {
    lp = m.held_out->rank(rows, m.state.dense[0], m.eval_candidates, m.backend.name == "cuda");
    spdlog::info("held-out link prediction: {}", summary(*lp));
    m.held_out->write_csv((dir / "validation_pairs.csv").string(), m.data.names);
    written.emplace_back("validation_pairs.csv");
  }
  nlohmann::json run_doc = run_json(m, o, final_json, total_s());  // after the ranking: its timings hold it
  if (lp) {
    run_doc["data"]["validation"] = m.held_out->summary();
    run_doc["link_prediction"] = to_json(*lp);
  }
  write_text_file((dir / "run.json").string(), run_doc.dump(2) + "\n");
  if (o.plot && m.state.rows <= kMaxPlotRows) {
    write_plot(o.path);  // last: it reads the run directory back
    written.insert(written.end(), {"plot.png", "plot.svg"});
  } else if (o.plot) {
    spdlog::info("not drawing plot.png: {} rows are too many points to see (cudaembed plot {} draws it anyway)",
                 m.state.rows, o.path);
  }
  spdlog::info("wrote {}/{{{}}}", o.path, fmt::join(written, ", "));
  return written;
}

RunDir as_run_dir(const TrainedModel& m) {
  RunDir run;
  run.rows = m.state.rows;
  run.dims = m.config.dims;
  run.normalize = m.config.normalize;
  run.rows_l2_normalized = m.config.normalize;  // rows() normalised them, as embedding.npy holds them
  run.head = head_name(m.config);
  run.embedding = m.rows();
  run.names = m.data.names;
  run.has_colours = !m.data.rgb.empty();
  if (run.has_colours) {
    run.rgb = m.data.rgb;
  } else {
    run.rgb.reserve(static_cast<std::size_t>(run.rows) * 3);
    for (int64_t i = 0; i < run.rows; ++i) run.rgb.insert(run.rgb.end(), std::begin(kItemRgb), std::end(kItemRgb));
  }
  return run;
}

}  // namespace cudaembed
