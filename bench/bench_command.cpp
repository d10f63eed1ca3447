// `cudaembed bench`: times every kernel variant (or the CPU backend) on the default run and on
// larger shapes; writes bench.json and bench.md naming the device.
#include "bench_command.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cudaembed/api.hpp"
#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "cudaembed/version.hpp"

namespace cudaembed {
namespace {

struct Shape {
  std::string name;
  int64_t rows;  // 0: the bundled colours
  int dims;
  bool normalize;
  uint64_t pairs;
  int64_t batch;
  int64_t epochs;  // timed per repeat
  Optimizer optimizer = Optimizer::adam;
  bool powerlaw = false;  // synthetic power-law pairs with hot rows (synthetic.hpp), else uniform ones
};

// The default run first, then the sizes the speed issue asks for (rows up to 100k, D up to 256,
// batches up to 65536). "tiny" is for smoke tests of the harness itself.
std::vector<Shape> shapes_for(const std::string& set) {
  const std::vector<Shape> standard = {
      {"colours-2d", 0, 2, false, 100000, 512, 500},
      {"colours-3d-normalized", 0, 3, true, 100000, 512, 100},
  };
  const std::vector<Shape> large = {
      {"rows10k-d16-b4096", 10000, 16, false, 1000000, 4096, 3},
      {"rows100k-d64-b8192", 100000, 64, false, 1000000, 8192, 2},
      {"rows100k-d256-b65536", 100000, 256, false, 1000000, 65536, 2},
  };
  // The scaling issue's configurations: millions of rows, batch 65536, power-law rows, sparse optimizers.
  const std::vector<Shape> sparse = {
      {"rows1m-d64-lazy-adam", 1000000, 64, false, 4000000, 65536, 1, Optimizer::lazy_adam, true},
      {"rows1m-d128-lazy-adam", 1000000, 128, false, 4000000, 65536, 1, Optimizer::lazy_adam, true},
      {"rows10m-d64-lazy-adam", 10000000, 64, false, 4000000, 65536, 1, Optimizer::lazy_adam, true},
      {"rows10m-d128-lazy-adam", 10000000, 128, false, 4000000, 65536, 1, Optimizer::lazy_adam, true},
      {"rows10m-d128-sgd", 10000000, 128, false, 4000000, 65536, 1, Optimizer::sgd, true},
      {"rows10m-d128-adagrad", 10000000, 128, false, 4000000, 65536, 1, Optimizer::adagrad, true},
  };
  if (set == "default") return standard;
  if (set == "large") return large;
  if (set == "sparse") return sparse;
  if (set == "all") {
    auto all = standard;
    all.insert(all.end(), large.begin(), large.end());
    all.insert(all.end(), sparse.begin(), sparse.end());
    return all;
  }
  if (set == "tiny")
    return {{"tiny", 64, 4, false, 2000, 256, 2},
            {"tiny-sparse", 2000, 8, false, 20000, 1024, 2, Optimizer::lazy_adam, true}};
  throw Error(fmt::format("--shapes: unknown set '{}' (allowed: default, large, sparse, all, tiny)", set));
}

// Random pairs over `rows` ids with about a quarter positive, from the same Philox stream layout.
PairSet synthetic_pairs(uint64_t count, uint32_t rows, uint64_t seed) {
  const auto bits = pair_random_bits_host(count, seed);
  PairSet p;
  p.a.resize(count);
  p.b.resize(count);
  p.label.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    p.a[i] = index_from_bits(bits[i], rows);
    p.b[i] = index_from_bits(bits[count + i], rows);
    p.label[i] = unit_from_bits(bits[2 * count + i]) < 0.25f ? 1.0f : 0.0f;
  }
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Bytes an epoch of the sorted path must move at the least: each lookup's row read, its gradient
// written and read back, the pair records, and every touched row's parameters and optimizer state
// read and written once per step. The sort's own traffic is not counted.
double sorted_epoch_bytes(const Shape& shape, const PairSet& pairs) {
  const double row = 4.0 * shape.dims, lookups = 2.0 * static_cast<double>(pairs.size());
  const double touched = static_cast<double>(touched_rows_per_epoch(pairs, shape.batch, 42, 0));
  double per_row = 2 * row;  // the parameters, read and written
  if (shape.optimizer == Optimizer::lazy_adam) per_row += 4 * row + 2 * 8;
  if (shape.optimizer == Optimizer::adagrad) per_row += 2 * 4;
  return lookups * 3 * row + 16.0 * static_cast<double>(pairs.size()) + touched * per_row;
}

struct Result {
  Shape shape;
  std::string variant;
  int64_t steps_per_epoch;
  std::vector<double> epoch_seconds;  // one per repeat: mean compute seconds per timed epoch
  double final_loss;
  // One per repeat: mean wall seconds per epoch of `train` itself, with the per-epoch divergence
  // check that `cudaembed train` does (and no copy back: nothing reads the weights between epochs).
  std::vector<double> train_epoch_seconds;
  std::string phase_report;  // --phase-profile
  double epoch_bytes = 0;  // sorted_epoch_bytes, for the sparse shapes
};

// Only warnings and errors while it lives.
class QuietLog {
 public:
  QuietLog() : level_(spdlog::get_level()) { spdlog::set_level(std::max(level_, spdlog::level::warn)); }
  ~QuietLog() { spdlog::set_level(level_); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;

 private:
  spdlog::level::level_enum level_;
};

Result time_variant(const Shape& shape, const std::string& variant, const BenchOptions& o, DeviceChoice device,
                    const PairSet& pairs, const std::shared_ptr<const ModelState>& init, std::string& device_name) {
  TrainingRequest request;
  request.data = PairArrays{pairs, shape.rows, {}};
  request.initial_state = init;
  request.device = o.device == "auto" ? (device == DeviceChoice::cuda ? "cuda" : "cpu") : o.device;
  TrainConfig& cfg = request.train;
  cfg.dims = shape.dims;
  cfg.normalize = shape.normalize;
  cfg.batch = shape.batch;
  cfg.kernel = variant;
  cfg.optimizer = shape.optimizer;
  cfg.adam.lr = default_learning_rate(shape.optimizer);
  const int64_t epochs = o.epochs > 0 ? o.epochs : shape.epochs;
  cfg.epochs = o.warmup + epochs;
  cfg.phase_profile = o.phase_profile;
  cfg.epochs_per_launch = o.epochs_per_launch;
  cfg.threads = o.threads;
  Result r{shape, variant, steps_per_epoch(pairs.size(), shape.batch), {}, 0};
  // The session's own lines (the data, the backend, the plan) would repeat for every repeat.
  const QuietLog quiet;
  for (int rep = 0; rep < o.repeats; ++rep) {
    // Timed as `cudaembed train` runs a big table (no snapshots): through the library's session,
    // the divergence check on the device every epoch, the weights copied back at the end; the
    // first o.warmup epochs are not counted.
    TrainingSession session(request);
    const TrainedModel model = session.run();
    double compute = 0, wall = 0;
    for (auto h = model.history.begin() + o.warmup; h != model.history.end(); ++h) compute += h->metrics.seconds;
    // The persistent kernels train many epochs a launch, and an epoch's wall time then holds its
    // launch's or nothing: the wall time counts every epoch after the first (which trains alone,
    // with the first launch's costs) when there is a warm-up.
    const auto walled = model.history.begin() + std::min(o.warmup, 1);
    for (auto h = walled; h != model.history.end(); ++h) wall += h->seconds;
    r.epoch_seconds.push_back(compute / static_cast<double>(epochs));
    r.train_epoch_seconds.push_back(wall / static_cast<double>(model.history.end() - walled));
    r.final_loss = model.history.back().metrics.loss();
    device_name = model.backend.device;
    if (rep + 1 == o.repeats) r.phase_report = session.phase_report();
  }
  return r;
}

std::string markdown(const std::vector<Result>& results, const std::string& device, const std::string& command,
                     const std::string& date, double copy_gbs) {
  std::string md = fmt::format("Device: {}. Date: {}. Command: `{}`. Measured copy bandwidth: {:.0f} GB/s.\n\n", device,
                               date, command, copy_gbs);
  md +=
      "| shape | variant | optimizer | rows x D | batch | steps/epoch | epoch ms (median) | spread (min-max) | steps/s "
      "| samples/s | GB/s (share of copy) | train ms/epoch (median) | last loss |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& r : results) {
    const double med = median(r.epoch_seconds);
    const auto [lo, hi] = std::minmax_element(r.epoch_seconds.begin(), r.epoch_seconds.end());
    const std::string gbs = r.epoch_bytes > 0 ? fmt::format("{:.0f} ({:.0f}%)", r.epoch_bytes / med / 1e9,
                                                            100 * r.epoch_bytes / med / 1e9 / copy_gbs)
                                              : "-";
    md += fmt::format(
        "| {} | {} | {} | {} x {} | {} | {} | {:.3f} | {:.3f}-{:.3f} | {:.0f} | {:.3g} | {} | {:.3f} | {:.4f} |\n",
        r.shape.name, r.variant, to_string(r.shape.optimizer), r.shape.rows, r.shape.dims, r.shape.batch,
        r.steps_per_epoch, med * 1e3, *lo * 1e3, *hi * 1e3, r.steps_per_epoch / med, r.shape.pairs / med, gbs,
        median(r.train_epoch_seconds) * 1e3, r.final_loss);
  }
  md +=
      "\nepoch ms: compute only (CUDA events around the epoch's kernels, or around a launch of many epochs over "
      "its epochs for the persistent kernels; the steady clock on the CPU). train ms/epoch: the wall time of "
      "`train` itself, with the per-epoch divergence check on the device (the weights are copied back only at the "
      "end, as `train` does without snapshots), over the epochs after the first when there is a warm-up.\n";
  for (const auto& r : results)
    if (!r.phase_report.empty()) md += fmt::format("\n```\n{} / {}\n{}\n```\n", r.shape.name, r.variant, r.phase_report);
  return md;
}

// --device, with auto resolved to cuda when a CUDA device is there.
DeviceChoice choose_device(const std::string& name) {
  DeviceChoice device = parse_device_choice(name);
  if (device == DeviceChoice::automatic) {
    device = cuda_device_count() > 0 ? DeviceChoice::cuda : DeviceChoice::cpu;
    if (device == DeviceChoice::cpu) spdlog::info("no CUDA device found ({}): timing the CPU backend", cuda_versions());
  }
  return device;
}

// The variants --kernel asks for on the Adam shapes: every CUDA kernel for "all"; the CPU backend
// has one path.
std::vector<std::string> adam_variants(bool cuda, const std::string& kernel) {
  std::vector<std::string> variants{"reference"};
  if (cuda) {
    variants = cuda_kernel_names();
    variants.erase(variants.begin());  // "auto" is one of the others
    if (kernel != "all") variants = {kernel};
  } else if (kernel != "all" && kernel != "auto") {
    throw Error(fmt::format("--kernel {}: kernel variants need a CUDA device; the CPU backend has one path", kernel));
  }
  return variants;
}

// Times each variant on one shape, appending a Result for each that can train it.
void time_shape(Shape shape, const std::vector<std::string>& variants, const ColourTable& colours,
                const BenchOptions& o, DeviceChoice device, std::vector<Result>& results, std::string& device_name) {
  const bool cuda = device == DeviceChoice::cuda;
  const bool colour_shape = shape.rows == 0;
  if (colour_shape) shape.rows = static_cast<int64_t>(colours.size());
  const PairSet pairs = colour_shape ? generate_pairs_host(colours.rgb, PairSpec{shape.pairs, 42, 0.2f})
                        : shape.powerlaw
                            ? powerlaw_pairs({static_cast<uint64_t>(shape.rows), shape.pairs, 4, 0.05f, 42})
                            : synthetic_pairs(shape.pairs, static_cast<uint32_t>(shape.rows), 42);
  const double epoch_bytes = shape.powerlaw ? sorted_epoch_bytes(shape, pairs) : 0.0;
  // Sparse optimizers run only on the sorted path.
  const std::vector<std::string> shape_variants =
      shape.optimizer != Optimizer::adam ? std::vector<std::string>{cuda ? "sorted" : "reference"} : variants;
  // Drawn once per shape: a 10M x 128 table with Adam's state is 15 GB to draw and fill.
  const auto init = std::make_shared<const ModelState>(
      init_model(shape.rows, shape.dims, InitSpec{InitScheme::robust, 0.05f, 42}, shape.optimizer));
  for (const auto& variant : shape_variants) {
    if (o.kernel != "all" && variant != o.kernel && cuda) continue;
    try {
      results.push_back(time_variant(shape, variant, o, device, pairs, init, device_name));
      results.back().epoch_bytes = epoch_bytes;
    } catch (const Error& e) {
      // A variant that cannot train this shape (persistent on a large table) is skipped, and said so.
      spdlog::warn("{} / {}: skipped: {}", shape.name, variant, e.what());
      continue;
    }
    const Result& r = results.back();
    spdlog::info("{:<22} {:<18} {:9.3f} ms/epoch  {:10.0f} steps/s  {:9.3f} ms/epoch in train", shape.name, r.variant,
                 median(r.epoch_seconds) * 1e3, r.steps_per_epoch / median(r.epoch_seconds),
                 median(r.train_epoch_seconds) * 1e3);
    if (!r.phase_report.empty()) spdlog::info("{}", r.phase_report);
  }
}

// bench.json: how it was run, then a record per result with its medians and rates.
nlohmann::json bench_json(const std::vector<Result>& results, const BenchOptions& o, const std::string& device_name,
                          const std::string& date, const std::string& command, double copy_gbs) {
  nlohmann::json json = {{"cudaembed_version", kVersion},
                         {"device", device_name},
                         {"date", date},
                         {"command", command},
                         {"repeats", o.repeats},
                         {"warmup_epochs", o.warmup},
                         {"epochs_per_launch", o.epochs_per_launch},
                         {"cuda", cuda_versions()},
                         {"copy_bandwidth_gbs", copy_gbs},
                         {"results", nlohmann::json::array()}};
  for (const auto& r : results) {
    const double med = median(r.epoch_seconds);
    json["results"].push_back({{"shape", r.shape.name},
                               {"variant", r.variant},
                               {"rows", r.shape.rows},
                               {"dims", r.shape.dims},
                               {"normalize", r.shape.normalize},
                               {"pairs", r.shape.pairs},
                               {"batch", r.shape.batch},
                               {"steps_per_epoch", r.steps_per_epoch},
                               {"epoch_seconds", r.epoch_seconds},
                               {"median_epoch_seconds", med},
                               {"train_epoch_seconds", r.train_epoch_seconds},
                               {"median_train_epoch_seconds", median(r.train_epoch_seconds)},
                               {"steps_per_second", r.steps_per_epoch / med},
                               {"samples_per_second", r.shape.pairs / med},
                               {"optimizer", to_string(r.shape.optimizer)},
                               {"epoch_bytes", r.epoch_bytes},
                               {"achieved_gbs", r.epoch_bytes / med / 1e9},
                               {"last_epoch_loss", r.final_loss}});
  }
  return json;
}

}  // namespace

int run_bench(const BenchOptions& o, const std::string& command) {
  const DeviceChoice device = choose_device(o.device);
  const std::vector<std::string> variants = adam_variants(device == DeviceChoice::cuda, o.kernel);
  check_run_dir(o.out, o.force);
  const ColourTable colours = read_colours_csv(o.data);

  std::vector<Result> results;
  std::string device_name;
  for (const Shape& shape : shapes_for(o.shapes)) time_shape(shape, variants, colours, o, device, results, device_name);

  const double copy_gbs = measured_copy_bandwidth_gbs(device);
  spdlog::info("measured copy bandwidth: {:.0f} GB/s (read + write)", copy_gbs);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const nlohmann::json json = bench_json(results, o, device_name, date, command, copy_gbs);
  prepare_run_dir(o.out, o.force);
  namespace fs = std::filesystem;
  write_text_file((fs::path(o.out) / "bench.json").string(), json.dump(2) + "\n");
  const std::string md = markdown(results, device_name, command, date, copy_gbs);
  write_text_file((fs::path(o.out) / "bench.md").string(), md);
  fmt::print("{}", md);
  spdlog::info("wrote {}/bench.json and bench.md", o.out);
  return 0;
}

}  // namespace cudaembed
