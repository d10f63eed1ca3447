// `cudaembed train`: colours -> pairs -> training -> outputs in the run directory.
#include "train_command.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/trainer.hpp"
#include "cudaembed/version.hpp"

namespace cudaembed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string vectors_tsv(const ModelState& s) {
  std::string out;
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int k = 0; k < s.dims; ++k)
      out += fmt::format("{}{:.9g}", k ? "\t" : "", s.table[static_cast<std::size_t>(r) * s.dims + k]);
    out += '\n';
  }
  return out;
}

// word2vec's text format: "N D", then one row per line, name first. Names may hold spaces
// ("gray50, grey50"), which the format uses as separators: they become underscores.
std::string word2vec_text(const ModelState& s, const std::vector<std::string>& names) {
  std::string out = fmt::format("{} {}\n", s.rows, s.dims);
  for (int64_t r = 0; r < s.rows; ++r) {
    std::string name = names[static_cast<std::size_t>(r)];
    std::replace_if(
        name.begin(), name.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }, '_');
    out += name;
    for (int k = 0; k < s.dims; ++k) out += fmt::format(" {:.9g}", s.table[static_cast<std::size_t>(r) * s.dims + k]);
    out += '\n';
  }
  return out;
}

// TensorBoard projector metadata: a header row, then name and colour per row. Tabs and newlines
// in names would break the columns, so they become spaces.
std::string metadata_tsv(const ColourTable& colours) {
  std::string out = "name\thex\n";
  for (std::size_t i = 0; i < colours.size(); ++i) {
    std::string name = colours.names[i];
    std::replace_if(
        name.begin(), name.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
    out += fmt::format("{}\t{}\n", name, colours.hex(i));
  }
  return out;
}

std::string metrics_csv(const std::vector<EpochRecord>& history) {
  std::string out = "epoch,loss,mse,accuracy,seconds\n";
  for (const auto& r : history)
    out += fmt::format("{},{:.9g},{:.9g},{:.9g},{:.6f}\n", r.epoch, r.metrics.loss(), r.metrics.mse(),
                       r.metrics.accuracy(), r.seconds);
  return out;
}

// A float as the shortest decimal that reads back as it: 0.9, not 0.8999999761581421.
double json_number(float x) { return std::stod(fmt::format("{}", x)); }

int64_t log_interval(const TrainOptions& o) {
  if (o.log_every > 0) return o.log_every;
  return std::max<int64_t>(1, o.train.epochs / 25);  // about 25 progress lines
}

}  // namespace

int run_train(const TrainOptions& o) {
  const auto start = Clock::now();
  const TrainConfig& cfg = o.train;
  check_run_dir(o.out, o.force);

  const ColourTable colours = read_colours_csv(o.data);
  const double parse_s = seconds_since(start);
  spdlog::info("{}: {} colours", o.data, colours.size());

  auto backend = make_backend(parse_device_choice(o.device), cfg);
  const BackendInfo info = backend->info();
  spdlog::info("backend {} on {} (kernel {})", info.name, info.device, info.kernel);

  const auto pairs_start = Clock::now();
  PairSpec spec = o.pairs;
  spec.seed = cfg.seed;
  const PairSet pairs = backend->generate_pairs(colours.rgb, spec);
  const double pairs_s = seconds_since(pairs_start);
  spdlog::info("{} pairs (seed {}), {:.1f}% positive", pairs.size(), cfg.seed, 100.0 * pairs.positive_fraction());

  // Only now, with the input read and the backend up, does the run directory get made: a run that
  // fails on bad input leaves nothing behind.
  prepare_run_dir(o.out, o.force);

  InitSpec init = o.init;
  init.seed = cfg.seed;
  ModelState state = init_model(static_cast<int64_t>(colours.size()), cfg.dims, init);
  const float initial_dense[2] = {state.dense[0], state.dense[1]};

  const int64_t spe = steps_per_epoch(pairs.size(), cfg.batch);
  spdlog::info("training {} epochs x {} steps (batch {}), D={}{}, init {}", cfg.epochs, spe, cfg.batch, cfg.dims,
               cfg.normalize ? " normalised" : "", to_string(init.scheme));

  namespace fs = std::filesystem;
  auto path = [&](const char* name) { return (fs::path(o.out) / name).string(); };
  const std::vector<uint64_t> row_shape{static_cast<uint64_t>(state.rows), static_cast<uint64_t>(state.dims)};
  NpyStreamWriter snapshots(path("snapshots.npy"), {static_cast<uint64_t>(cfg.epochs) + 1, row_shape[0], row_shape[1]});
  snapshots.append(state.table);

  const int64_t every = log_interval(o);
  double interval_s = 0;
  const auto train_start = Clock::now();
  const auto history = train(*backend, pairs, state, cfg.epochs, [&](const EpochRecord& r, const ModelState& s) {
    snapshots.append(s.table);
    interval_s += r.seconds;
    if (r.epoch % every == 0 || r.epoch == cfg.epochs) {
      const double steps = static_cast<double>(std::min(every, r.epoch) * spe);
      spdlog::info("epoch {:>{}}/{}  loss {:.4f}  mse {:.4f}  accuracy {:.4f}  {:.0f} steps/s", r.epoch,
                   fmt::formatted_size("{}", cfg.epochs), cfg.epochs, r.metrics.loss(), r.metrics.mse(),
                   r.metrics.accuracy(), steps / std::max(interval_s, 1e-9));
      interval_s = 0;
    }
  });
  const double train_s = seconds_since(train_start);
  snapshots.finish();

  write_npy(path("embedding.npy"), state.table, row_shape);
  if (o.save_pairs) {
    std::vector<uint32_t> ids(2 * pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      ids[2 * i] = pairs.a[i];
      ids[2 * i + 1] = pairs.b[i];
    }
    write_npy(path("pair_ids.npy"), ids, {pairs.size(), 2});
    write_npy(path("pair_labels.npy"), pairs.label, {pairs.size()});
  }
  write_text_file(path("vectors.tsv"), vectors_tsv(state));
  write_text_file(path("metadata.tsv"), metadata_tsv(colours));
  write_text_file(path("metrics.csv"), metrics_csv(history));

  write_text_file(path("word2vec.txt"), word2vec_text(state, colours.names));

  const std::vector<float> compared = cfg.normalize ? l2_normalized_rows(state.table, cfg.dims) : state.table;
  const EmbeddingQuality quality = evaluate_embedding(compared, cfg.dims, colours.rgb, 3, 10, info.name == "cuda");
  const EpochMetrics& last = history.back().metrics;
  spdlog::info(
      "done in {:.2f} s (training {:.2f} s): loss {:.4f}, accuracy {:.4f}; against RGB: Spearman {:.3f}, 10-NN "
      "overlap {:.3f}",
      seconds_since(start), train_s, last.loss(), last.accuracy(), quality.spearman, quality.knn_overlap);

  nlohmann::json run = {
      {"cudaembed_version", kVersion},
      {"command", "train"},
      {"config",
       {{"data", o.data},
        {"pairs", spec.count},
        {"label_threshold", json_number(spec.threshold)},
        {"dims", cfg.dims},
        {"normalize", cfg.normalize},
        {"epochs", cfg.epochs},
        {"batch", cfg.batch},
        {"steps_per_epoch", spe},
        {"lr", json_number(cfg.adam.lr)},
        {"beta1", json_number(cfg.adam.beta1)},
        {"beta2", json_number(cfg.adam.beta2)},
        {"epsilon", json_number(cfg.adam.epsilon)},
        {"adam_v", to_string(cfg.second_moment)},
        {"init", to_string(init.scheme)},
        {"embedding_init_range", json_number(init.embedding_range)},
        {"device", o.device},
        {"kernel", cfg.kernel}}},
      {"initial_dense", {json_number(initial_dense[0]), json_number(initial_dense[1])}},
      {"seed", cfg.seed},
      {"backend", {{"name", info.name}, {"device", info.device}, {"kernel", info.kernel}}},
      {"versions", {{"cuda", cuda_versions()}, {"compiler", kCompiler}, {"build_type", kBuildType}}},
      {"data",
       {{"colours", colours.size()}, {"pairs", pairs.size()}, {"positive_fraction", pairs.positive_fraction()}}},
      {"timings_s", {{"parse", parse_s}, {"pairs", pairs_s}, {"train", train_s}, {"total", seconds_since(start)}}},
      {"final",
       {{"loss", last.loss()},
        {"mse", last.mse()},
        {"accuracy", last.accuracy()},
        {"dense_weight", json_number(state.dense[0])},
        {"dense_bias", json_number(state.dense[1])},
        {"spearman_rgb", quality.spearman},
        {"knn10_overlap_rgb", quality.knn_overlap}}},
  };
  write_text_file(path("run.json"), run.dump(2) + "\n");
  if (!o.no_plot) write_plot(o.out);  // last: it reads the run directory back
  spdlog::info(
      "wrote {}/{{embedding.npy, snapshots.npy, vectors.tsv, metadata.tsv, word2vec.txt, metrics.csv, run.json{}}}",
      o.out, o.no_plot ? "" : ", plot.png, plot.svg");
  return 0;
}

}  // namespace cudaembed
