// cudaembed._core: the nanobind module under the Python package (python/cudaembed). It converts
// arrays, names and errors, releases the GIL while training and runs Python callbacks after each
// epoch; every behaviour is the library's (include/cudaembed/api.hpp), tested in C++ once.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <spdlog/spdlog.h>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/neighbours.hpp"
#include "cudaembed/plot.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/version.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace cudaembed {
namespace {

// A model as Python sees it: a run directory read back, or (later) a trained model.
struct PyModel {
  RunDir run;  // the rows as the model compares them (L2-normalised under normalize), names, colours, head
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

}  // namespace
}  // namespace cudaembed

NB_MODULE(_core, m) {
  using namespace cudaembed;
  m.doc() = "cudaembed's C++ library; the package cudaembed wraps it";
  nb::exception<Error>(m, "Error", PyExc_ValueError);
  m.attr("__version__") = kVersion;
  m.attr("with_cuda") = kWithCuda;
  // The library logs through spdlog to stderr; Python users see warnings and errors unless they ask.
  spdlog::set_level(spdlog::level::warn);
  m.def(
      "set_log_level", [](const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }, "level"_a,
      "spdlog's level for the library's log lines: 'info', 'warn' (the default), 'error' or 'off'");

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
      .def("plot", &plot, "out_prefix"_a, "labels"_a, "title"_a, "size"_a);

  m.def("load", &load_model, "path"_a, "Reads a run directory (embedding.npy, metadata.tsv, run.json)");
}
