// cudaembed._core: the nanobind module under the Python package (python/cudaembed). It converts
// arrays, names and errors, releases the GIL while training and runs Python callbacks after each
// epoch; every behaviour is the library's (include/cudaembed/api.hpp), tested in C++ once.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <spdlog/spdlog.h>

#include "cudaembed/api.hpp"
#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/neighbours.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/version.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace cudaembed {
namespace {

// A model as Python sees it: a run directory read back, or a trained model.
struct PyModel {
  RunDir run;  // the rows as the model compares them (L2-normalised under normalize), names, colours, head
  std::optional<TrainedModel> trained;  // after fit: what save() writes (its optimizer state dropped)
};

using FloatMatrix = nb::ndarray<nb::numpy, const float, nb::ndim<2>, nb::c_contig>;

// A read-only (rows, cols) view of `data`, without a copy; nanobind ties its life to the owner.
FloatMatrix matrix_view(const std::vector<float>& data, std::size_t rows, std::size_t cols) {
  return FloatMatrix(data.data(), {rows, cols});
}

// A (rows, cols) array that takes over `data` (moved, not copied).
FloatMatrix matrix_owning(std::vector<float> data, std::size_t rows, std::size_t cols) {
  auto* held = new std::vector<float>(std::move(data));
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return FloatMatrix(held->data(), {rows, cols}, owner);
}

PyModel load_model(const std::string& path) {
  PyModel model{read_run_dir(path)};
  RunDir& run = model.run;
  if (run.normalize && !run.rows_l2_normalized) {  // a run written before embedding.npy held normalised rows
    run.embedding = run.effective_embedding();
    run.rows_l2_normalized = true;
  }
  return model;
}

// Row `query`'s k nearest rows as (row, score): the head's distance (euclidean, poincare; nearest
// first) or similarity (dot, cosine; most similar first), as `cudaembed neighbours` ranks them.
std::vector<std::pair<int64_t, float>> nearest(const PyModel& model, int64_t query, int k) {
  const RunDir& run = model.run;
  if (query < 0 || query >= run.rows)
    throw Error("most_similar: row " + std::to_string(query) + " is out of range: the table has " +
                std::to_string(run.rows) + " rows");
  if (k < 0) throw Error("most_similar: topn " + std::to_string(k) + " is negative");
  const bool by_similarity = run.head == "dot" || run.head == "cosine";
  std::vector<std::pair<int64_t, float>> out;
  for (const Neighbour& n : nearest_neighbours(run, static_cast<std::size_t>(query), k, false))
    out.emplace_back(static_cast<int64_t>(n.row), by_similarity ? n.similarity : n.embedding_distance);
  return out;
}

void plot(const PyModel& model, const std::string& out_prefix, const std::vector<std::string>& labels,
          const std::string& title, int size) {
  PlotOptions options;
  options.out_prefix = out_prefix;
  options.labels = labels;
  options.title = title;
  options.size = size;
  write_plot(model.run, options);
}

// The run directory `cudaembed train` writes, from a fitted model; returns the names written.
std::vector<std::string> save(PyModel& model, const std::string& path, bool force, bool plot) {
  if (!model.trained)
    throw Error(fmt::format("save: this model was loaded from {}, which holds it already", model.run.path));
  prepare_run_dir(path, force);
  if (force) remove_run_outputs(path);
  RunDirOptions options;
  options.path = path;
  options.plot = plot;
  std::vector<std::string> written = write_run_dir(*model.trained, options);
  model.run.path = path;
  return written;
}

using IdArray = nb::ndarray<const uint32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using FloatArray = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

template <typename T, typename Array>
std::vector<T> to_vector(const Array& array) {
  return std::vector<T>(array.data(), array.data() + array.shape(0));
}

// fit()'s data: the pairs, as Python has checked and converted them.
void set_pairs(TrainingRequest& r, const IdArray& a, const IdArray& b, std::optional<FloatArray> labels,
               std::optional<FloatArray> weights, int64_t rows, std::vector<std::string> names) {
  PairArrays arrays;
  arrays.pairs.a = to_vector<uint32_t>(a);
  arrays.pairs.b = to_vector<uint32_t>(b);
  if (labels) arrays.pairs.label = to_vector<float>(*labels);
  if (weights) arrays.pairs.weight = to_vector<float>(*weights);
  arrays.rows = rows;
  arrays.names = std::move(names);
  r.data = std::move(arrays);
}

// fit_colours()'s data: `pairs` random pairs of the colours in `csv`, drawn from the request's seed.
void set_colours(TrainingRequest& r, const std::string& csv, uint64_t pairs) {
  ColoursSource source;
  source.csv = csv;
  source.pairs.count = pairs;
  r.data = std::move(source);
}

// The settings; optimizer, epochs, batch and lr None leave them to apply_defaults (the Poincaré
// head's own; the optimizer's rate), as the CLI does for flags not given.
void configure(TrainingRequest& r, int dims, bool normalize, const std::string& head,
               std::optional<std::string> optimizer, int negatives, std::optional<int64_t> epochs,
               std::optional<int64_t> batch, std::optional<float> lr, uint64_t seed, const std::string& device,
               double validation, int threads) {
  TrainConfig& t = r.train;
  t.threads = threads;
  t.dims = dims;
  parse_head(head, t);
  t.normalize = t.normalize || normalize;
  UnsetSettings unset;
  unset.optimizer = !optimizer;
  if (optimizer) t.optimizer = parse_optimizer(*optimizer);
  unset.lr = !lr;
  if (lr) t.adam.lr = *lr;
  t.negatives = negatives;
  unset.epochs = !epochs;
  if (epochs) t.epochs = *epochs;
  unset.batch = !batch;
  if (batch) t.batch = *batch;
  t.seed = seed;
  parse_device_choice(device);  // an unknown name is an error now, before any data is read
  r.device = device;
  r.validation = validation;
  apply_defaults(t, r.init, unset);
}

// Ctrl-C while training: Python's own SIGINT handler only marks the signal for the interpreter,
// which is not running while the GIL is released. This one also sets the training's stop flag (so
// it ends after the current step on the CPU, the current epoch on CUDA) and passes the signal on
// to Python's handler, so that PyErr_CheckSignals raises KeyboardInterrupt once training is back.
std::atomic<bool>* g_sigint_stop = nullptr;
struct sigaction g_python_sigint;

void on_sigint(int sig, siginfo_t* info, void* context) {
  if (g_sigint_stop) g_sigint_stop->store(true);
  if (g_python_sigint.sa_flags & SA_SIGINFO)
    g_python_sigint.sa_sigaction(sig, info, context);
  else if (g_python_sigint.sa_handler != SIG_DFL && g_python_sigint.sa_handler != SIG_IGN)
    g_python_sigint.sa_handler(sig);
}

// Installs on_sigint for its lifetime where Python handles SIGINT itself (not where it is ignored
// or left to its default, which ends the process); only from the main thread, where Python runs
// signal handlers.
class SigintStops {
 public:
  SigintStops(std::atomic<bool>& stop, bool main_thread) {
    struct sigaction current {};
    // Not again for a fit() inside a callback: the outer one's handler stays, and stops both.
    if (!main_thread || g_sigint_stop || sigaction(SIGINT, nullptr, &current) != 0) return;
    const bool handled =
        (current.sa_flags & SA_SIGINFO) || (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
    if (!handled) return;
    g_python_sigint = current;
    g_sigint_stop = &stop;
    struct sigaction ours {};
    ours.sa_sigaction = on_sigint;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    installed_ = sigaction(SIGINT, &ours, nullptr) == 0;
  }
  ~SigintStops() {
    if (!installed_) return;
    sigaction(SIGINT, &g_python_sigint, nullptr);
    g_sigint_stop = nullptr;
  }
  SigintStops(const SigintStops&) = delete;
  SigintStops& operator=(const SigintStops&) = delete;

 private:
  bool installed_ = false;
};

// A fitted model: as_run_dir for the queries, plots and vectors; the model itself for save(),
// less the optimizer state, which nothing in Python reads.
PyModel from_trained(TrainedModel trained) {
  PyModel model{as_run_dir(trained)};
  ModelState& s = trained.state;
  s.table_m = {};
  s.table_v = {};
  s.row_acc = {};
  s.row_step = {};
  model.trained = std::move(trained);
  return model;
}

// Trains with the GIL released. After each epoch `on_epoch` (None, or a callable taking the epoch,
// its metrics and the table) runs with the GIL; False from it stops training after that epoch.
// An exception in it, or a signal (Ctrl-C), stops training too and is raised once it has stopped.
PyModel fit_model(TrainingRequest& request, nb::object on_epoch, bool main_thread) {
  std::atomic<bool> stop{false};
  std::optional<nb::python_error> raised;
  const bool has_callback = !on_epoch.is_none();
  const TrainConfig config = request.train;
  Callbacks callbacks;
  callbacks.stop = &stop;
  callbacks.weights_wanted = [has_callback](int64_t) { return has_callback; };
  callbacks.on_epoch = [&](const EpochView& v) {
    nb::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (!has_callback) return true;
      const EpochMetrics& e = v.record.metrics;
      nb::dict logs;
      logs["loss"] = e.loss();
      logs["mse"] = e.mse();
      logs["accuracy"] = e.accuracy();
      logs["seconds"] = v.record.seconds;
      if (v.val_loss) logs["val_loss"] = *v.val_loss;
      const auto rows = static_cast<std::size_t>(v.state.rows);
      nb::object result =
          on_epoch(v.record.epoch, logs, matrix_owning(compared_rows(v.state.table, config), rows, config.dims));
      return !result.is(nb::bool_(false));
    } catch (nb::python_error& e) {
      raised.emplace(std::move(e));
      return false;
    }
  };
  std::optional<TrainedModel> trained;
  {
    SigintStops sigint(stop, main_thread);
    nb::gil_scoped_release release;
    trained.emplace(fit(std::move(request), callbacks));  // the request is spent
  }
  if (raised) throw std::move(*raised);
  if (PyErr_CheckSignals() != 0) throw nb::python_error();  // a Ctrl-C that stopped training mid-epoch
  return from_trained(std::move(*trained));
}

// Keras's History.history: per-epoch lists.
nb::dict history(const PyModel& model) {
  nb::dict out;
  if (!model.trained) return out;
  nb::list epoch, loss, mse, accuracy, seconds, val_loss;
  for (const EpochRecord& r : model.trained->history) {
    epoch.append(r.epoch);
    loss.append(r.metrics.loss());
    mse.append(r.metrics.mse());
    accuracy.append(r.metrics.accuracy());
    seconds.append(r.seconds);
  }
  for (const double v : model.trained->val_loss) val_loss.append(v);
  out["epoch"] = epoch;
  out["loss"] = loss;
  out["mse"] = mse;
  out["accuracy"] = accuracy;
  out["seconds"] = seconds;
  if (!model.trained->val_loss.empty()) out["val_loss"] = val_loss;
  return out;
}

}  // namespace
}  // namespace cudaembed

NB_MODULE(_core, m) {
  using namespace cudaembed;
  m.doc() = "cudaembed's C++ library; the package cudaembed wraps it";
  nb::exception<Error> error(m, "Error", PyExc_ValueError);
  nb::exception<Divergence>(m, "Divergence", error);
  m.attr("__version__") = kVersion;
  m.attr("with_cuda") = kWithCuda;
  // The library logs through spdlog to stderr; Python users see warnings and errors unless they ask.
  spdlog::set_level(spdlog::level::warn);
  m.def(
      "set_log_level",
      [](const std::string& level) {
        const auto parsed = spdlog::level::from_str(level);
        if (parsed == spdlog::level::off && level != "off")
          throw Error(fmt::format("set_log_level: unknown level '{}' (allowed: debug, info, warn, error, off)", level));
        spdlog::set_level(parsed);
      },
      "level"_a, "The library's log lines on stdout: 'info' (training progress), 'warn' (the default), 'error', 'off'");

  m.def("default_colours_csv", &default_colours_csv,
        "The library's bundled colours: an installed CLI's, or the source tree's");
  m.def(
      "colours",
      [](const std::string& csv) {
        ColourTable table = read_colours_csv(csv);
        const std::size_t n = table.size();
        return std::make_pair(std::move(table.names), matrix_owning(std::move(table.rgb), n, 3));
      },
      "csv"_a, "The colours of a colour CSV: (names, rgb (N, 3) float32 in [0, 1])");

  nb::class_<PyModel>(m, "Model")
      .def_prop_ro(
          "vectors", [](const PyModel& p) { return matrix_view(p.run.embedding, p.run.rows, p.run.dims); },
          nb::rv_policy::reference_internal, "(N, D) float32, read-only: the rows as the model compares them")
      .def_prop_ro("names", [](const PyModel& p) { return p.run.names; })
      .def_prop_ro(
          "rgb",
          [](const PyModel& p) -> std::optional<FloatMatrix> {
            if (!p.run.has_colours) return std::nullopt;
            return matrix_view(p.run.rgb, p.run.rows, 3);
          },
          nb::rv_policy::reference_internal)
      .def_prop_ro("head", [](const PyModel& p) { return p.run.head; })
      .def_prop_ro("normalize", [](const PyModel& p) { return p.run.normalize; })
      .def_prop_ro("noun", [](const PyModel& p) { return std::string(p.run.noun()); })
      .def("find_row",
           [](const PyModel& p, const std::string& name) {
             return static_cast<int64_t>(find_row(p.run.names, name, "most_similar:", p.run.noun()));
           })
      .def("nearest", &nearest, "row"_a, "k"_a)
      .def("plot", &plot, "out_prefix"_a, "labels"_a, "title"_a, "size"_a)
      .def("save", &save, "path"_a, "force"_a, "plot"_a)
      .def_prop_ro("fitted", [](const PyModel& p) { return p.trained.has_value(); })
      .def_prop_ro("history", &history)
      .def_prop_ro("backend", [](const PyModel& p) {
        return p.trained ? p.trained->backend.name + " (" + p.trained->backend.device + ")" : std::string();
      });

  nb::class_<TrainingRequest>(m, "Request")
      .def(nb::init<>())
      .def("set_pairs", &set_pairs, "a"_a, "b"_a, "labels"_a.none(), "weights"_a.none(), "rows"_a, "names"_a)
      .def("set_colours", &set_colours, "csv"_a, "pairs"_a)
      .def("configure", &configure, "dims"_a, "normalize"_a, "head"_a, "optimizer"_a.none(), "negatives"_a,
           "epochs"_a.none(), "batch"_a.none(), "lr"_a.none(), "seed"_a, "device"_a, "validation"_a, "threads"_a);
  m.def("fit", &fit_model, "request"_a, "on_epoch"_a.none(), "main_thread"_a,
        "Trains a request with the GIL released; on_epoch(epoch, logs, vectors) after each epoch");

  m.def("load", &load_model, "path"_a, "Reads a run directory (embedding.npy, metadata.tsv, run.json)");
}
