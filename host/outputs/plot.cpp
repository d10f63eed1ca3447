// `cudaembed plot`: projection of the rows to a plane, the equal-scale viewport, and the cairo
// drawing shared by the PNG, the SVG and every animation frame.
#include "cudaembed/plot.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <tuple>
#include <vector>

#include <cairo-svg.h>
#include <cairo.h>
#include <png.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "outputs/plot_render.hpp"

namespace cudaembed {
namespace fs = std::filesystem;

namespace {

constexpr double kDegree = std::numbers::pi / 180.0;
constexpr const char* kFont = "DejaVu Sans";

double dot(const double* a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t k = 0; k < b.size(); ++k) s += a[k] * b[k];
  return s;
}

// A fixed value in [-1, 1) for row i (splitmix64), the same on every machine.
double jitter_unit(uint64_t i) {
  uint64_t z = i + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0;
}

struct Pca {
  std::array<std::vector<double>, 2> axes;  // (2, D) unit vectors, by decreasing variance
  std::array<double, 2> variance{};
  double total_variance = 0;
};

// Top two principal components of `centred` (N, D): the eigenvectors of the D x D covariance
// centred^T centred / N with the two largest eigenvalues (Eigen's SelfAdjointEigenSolver). Signs are
// fixed so that each axis's largest component is positive, so that pictures do not flip between runs.
Pca top_two_components(const std::vector<double>& centred, int dims) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::size_t n = centred.size() / dims;
  const Eigen::Map<const RowMajor> x(centred.data(), static_cast<Eigen::Index>(n), dims);  // (N, D)
  Eigen::MatrixXd covariance = Eigen::MatrixXd::Zero(dims, dims);                          // (D, D)
  covariance.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose(),
                                                        1.0 / static_cast<double>(std::max<std::size_t>(n, 1)));
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance);  // eigenvalues ascending
  if (solver.info() != Eigen::Success)
    throw Error(fmt::format("PCA of D = {}: the eigensolver did not converge", dims));

  Pca pca;
  for (int j = 0; j < 2; ++j) {
    const Eigen::Index column = dims - 1 - j;
    const auto v = solver.eigenvectors().col(column);
    pca.axes[j].assign(v.data(), v.data() + dims);
    pca.variance[j] = std::max(solver.eigenvalues()(column), 0.0);  // rounding may leave a zero below 0
  }
  for (auto& axis : pca.axes) {
    const auto largest =
        std::max_element(axis.begin(), axis.end(), [](double a, double b) { return std::abs(a) < std::abs(b); });
    if (*largest < 0)
      for (double& x : axis) x = -x;
  }
  for (std::size_t i = 0; i < centred.size(); ++i) pca.total_variance += centred[i] * centred[i];
  pca.total_variance /= static_cast<double>(std::max<std::size_t>(n, 1));
  return pca;
}

// 1, 2 or 5 times a power of ten, giving about `count` steps over `range`.
double nice_step(double range, double count) {
  const double raw = range / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / magnitude;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * magnitude;
}

// A tick value with as many decimals as the step needs, and a real minus sign.
std::string tick_text(double value, double step) {
  if (std::abs(value) < step * 1e-6) value = 0;
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::string text = fmt::format("{:.{}f}", std::abs(value), decimals);
  return value < 0 ? "\u2212" + text : text;
}

enum class Align { left, centre, right };

// Text with its baseline at y; horizontal anchor by `align`.
void draw_text(cairo_t* cr, const std::string& text, double x, double y, Align align) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  const double dx = align == Align::left ? 0 : align == Align::centre ? ext.x_advance / 2 : ext.x_advance;
  cairo_move_to(cr, x - dx, y);
  cairo_show_text(cr, text.c_str());
}

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

void check_cairo(cairo_status_t status, const std::string& what) {
  if (status != CAIRO_STATUS_SUCCESS) throw Error(fmt::format("{}: cairo: {}", what, cairo_status_to_string(status)));
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void append_png_bytes(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}

// An RGB24 image surface as a PNG, through libpng with one filter (Sub) and zlib level 3. Cairo's
// own writer tries every filter on every row at level 6: the default 2-D run's plot took 350M
// instructions to encode that way, most of the plot's time, for a file of about the same size.
std::string encode_png(cairo_surface_t* surface, const std::string& what) {
  cairo_surface_flush(surface);
  const int width = cairo_image_surface_get_width(surface), height = cairo_image_surface_get_height(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const unsigned char* pixels = cairo_image_surface_get_data(surface);
  std::string out;
  std::vector<png_byte> row(static_cast<std::size_t>(width) * 3);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info || setjmp(png_jmpbuf(png))) {  // libpng reports its errors by longjmp to here
    png_destroy_write_struct(&png, &info);
    throw Error(fmt::format("{}: libpng could not encode the image", what));
  }
  png_set_write_fn(png, &out, append_png_bytes, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(png, 3);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) {
    const auto* line = reinterpret_cast<const uint32_t*>(pixels + static_cast<std::size_t>(y) * stride);
    for (int x = 0; x < width; ++x) {  // cairo's RGB24: 0xXXRRGGBB in native order
      row[3 * x] = static_cast<png_byte>(line[x] >> 16);
      row[3 * x + 1] = static_cast<png_byte>(line[x] >> 8);
      row[3 * x + 2] = static_cast<png_byte>(line[x]);
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::pair<double, double> default_camera(std::span<const float> rows, bool normalized) {
  const std::size_t n = rows.size() / 3;
  std::array<double, 3> mean{0, 0, 0};
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) mean[k] += rows[i * 3 + k] / static_cast<double>(std::max<std::size_t>(n, 1));
  std::array<double, 3> look = mean;
  if (!normalized || std::sqrt(mean[0] * mean[0] + mean[1] * mean[1] + mean[2] * mean[2]) < 1e-6) {
    // Along the least-variance axis: the cross product of the top two principal components.
    std::vector<double> centred(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) centred[i] = rows[i] - mean[i % 3];
    const Pca pca = top_two_components(centred, 3);
    const auto& u = pca.axes[0];
    const auto& v = pca.axes[1];
    look = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
    if (look[2] < 0) look = {-look[0], -look[1], -look[2]};  // keep the camera above the plane
  }
  const double len = std::sqrt(look[0] * look[0] + look[1] * look[1] + look[2] * look[2]);
  if (!(len > 0)) return {35.0, 25.0};
  return {std::atan2(look[1], look[0]) / kDegree, std::asin(std::clamp(look[2] / len, -1.0, 1.0)) / kDegree};
}

Projection make_projection(std::span<const float> rows, int dims, double azimuth_deg, double elevation_deg,
                           bool normalized) {
  if (dims < 1) throw Error(fmt::format("cannot plot an embedding of width D = {}", dims));
  Projection p;
  p.dims = dims;
  p.mean.assign(dims, 0.0);
  for (auto& axis : p.axes) axis.assign(dims, 0.0);
  if (dims == 1) {
    p.kind = Projection::Kind::jitter;
    p.axes[0][0] = 1;
    const auto [lo, hi] = std::minmax_element(rows.begin(), rows.end());
    const double range = rows.empty() ? 0.0 : static_cast<double>(*hi) - *lo;
    p.jitter = range > 0 ? 0.08 * range : 0.05;
    p.x_label = "x0";
    p.y_label = "jitter (no meaning)";
    p.view = normalized ? "L2-normalised rows (all \u00b11): x0 against a fixed random jitter"
                        : "x0 against a fixed random jitter (the vertical position means nothing)";
  } else if (dims == 2) {
    p.kind = Projection::Kind::plane;
    p.axes[0][0] = 1;
    p.axes[1][1] = 1;
    p.x_label = "x0";
    p.y_label = "x1";
    p.view = normalized ? "L2-normalised rows on the unit circle" : "the 2-D embedding as trained";
  } else if (dims == 3) {
    // Camera on the unit sphere at (azimuth, elevation), x2 up; picture x = right, y = up.
    p.kind = Projection::Kind::camera;
    const double a = azimuth_deg * kDegree, e = elevation_deg * kDegree;
    p.axes[0] = {-std::sin(a), std::cos(a), 0.0};
    p.axes[1] = {-std::sin(e) * std::cos(a), -std::sin(e) * std::sin(a), std::cos(e)};
    p.axes[2] = {std::cos(e) * std::cos(a), std::cos(e) * std::sin(a), std::sin(e)};
    p.x_label = "view x";
    p.y_label = "view y";
    p.view = fmt::format("{}orthographic view from azimuth {:g}\u00b0, elevation {:g}\u00b0",
                         normalized ? "L2-normalised rows on the unit sphere, " : "", std::round(azimuth_deg * 10) / 10,
                         std::round(elevation_deg * 10) / 10);
  } else {
    p.kind = Projection::Kind::pca;
    const std::size_t n = rows.size() / dims;
    for (std::size_t i = 0; i < n; ++i)
      for (int k = 0; k < dims; ++k) p.mean[k] += rows[i * dims + k];
    for (double& m : p.mean) m /= static_cast<double>(std::max<std::size_t>(n, 1));
    std::vector<double> centred(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) centred[i] = rows[i] - p.mean[i % dims];
    const Pca pca = top_two_components(centred, dims);
    p.axes[0] = pca.axes[0];
    p.axes[1] = pca.axes[1];
    const double total = std::max(pca.total_variance, 1e-300);
    p.x_label = fmt::format("PC1 ({:.0f}% of variance)", 100 * pca.variance[0] / total);
    p.y_label = fmt::format("PC2 ({:.0f}% of variance)", 100 * pca.variance[1] / total);
    p.view = fmt::format("PCA of D = {}: top two principal components{}", dims,
                         normalized ? " of the L2-normalised rows" : "");
  }
  return p;
}

ProjectedPoints project(const Projection& p, std::span<const float> rows) {
  const std::size_t n = rows.size() / p.dims;
  ProjectedPoints out;
  out.x.resize(n);
  out.y.resize(n);
  out.depth.resize(n);
  std::vector<double> c(p.dims);
  for (std::size_t i = 0; i < n; ++i) {
    for (int k = 0; k < p.dims; ++k) c[k] = rows[i * p.dims + k] - p.mean[k];
    out.x[i] = dot(c.data(), p.axes[0]);
    out.y[i] = p.kind == Projection::Kind::jitter ? p.jitter * jitter_unit(i) : dot(c.data(), p.axes[1]);
    out.depth[i] = dot(c.data(), p.axes[2]);
  }
  return out;
}

std::array<double, 2> Viewport::to_pixel(double x, double y) const {
  const double scale = width / (x_max - x_min);
  return {left + (x - x_min) * scale, top + (y_max - y) * scale};
}

Viewport fit_viewport(int size, double x_min, double x_max, double y_min, double y_max) {
  Viewport v;
  v.left = std::round(0.115 * size);
  v.top = std::round(0.105 * size);
  v.width = size - v.left - std::round(0.035 * size);
  v.height = size - v.top - std::round(0.085 * size);
  const double x_range = std::max(x_max - x_min, 1e-12), y_range = std::max(y_max - y_min, 1e-12);
  const double scale = std::min(v.width / x_range, v.height / y_range);  // pixels per unit
  const double x_mid = 0.5 * (x_min + x_max), y_mid = 0.5 * (y_min + y_max);
  v.x_min = x_mid - 0.5 * v.width / scale;
  v.x_max = x_mid + 0.5 * v.width / scale;
  v.y_min = y_mid - 0.5 * v.height / scale;
  v.y_max = y_mid + 0.5 * v.height / scale;
  return v;
}

std::array<double, 4> padded_extent(const ProjectedPoints& points, bool unit_circle) {
  double x0 = unit_circle ? -1 : HUGE_VAL, x1 = unit_circle ? 1 : -HUGE_VAL;
  double y0 = x0, y1 = x1;
  for (std::size_t i = 0; i < points.x.size(); ++i) {
    if (!std::isfinite(points.x[i]) || !std::isfinite(points.y[i])) continue;
    x0 = std::min(x0, points.x[i]);
    x1 = std::max(x1, points.x[i]);
    y0 = std::min(y0, points.y[i]);
    y1 = std::max(y1, points.y[i]);
  }
  if (x0 > x1) x0 = -1, x1 = 1, y0 = -1, y1 = 1;  // nothing finite
  double pad = 0.05 * std::max(x1 - x0, y1 - y0);
  if (pad <= 0) pad = std::max({std::abs(x0), std::abs(y0), 1.0}) * 0.5;
  return {x0 - pad, x1 + pad, y0 - pad, y1 + pad};
}

std::vector<int64_t> find_names(const std::vector<std::string>& names, const std::vector<std::string>& wanted,
                                std::string_view noun) {
  std::vector<int64_t> rows;
  for (const std::string& name : wanted) {
    std::vector<std::size_t> found = rows_named(names, name);
    if (found.empty() && name.find(',') != std::string::npos) {
      // No row of that whole name: a comma-separated list (--label SkyBlue,gold), each part a name.
      std::vector<int64_t> parts;
      for (std::size_t start = 0; start <= name.size();) {
        const std::size_t end = std::min(name.find(',', start), name.size());
        std::string part = name.substr(start, end - start);
        part.erase(0, part.find_first_not_of(' '));
        part.erase(part.find_last_not_of(' ') + 1);
        if (!part.empty()) parts.push_back(static_cast<int64_t>(find_row(names, part, "--label", noun)));
        start = end + 1;
      }
      rows.insert(rows.end(), parts.begin(), parts.end());
      continue;
    }
    if (found.size() != 1) throw Error(name_lookup_error(names, name, found, "--label", noun));
    rows.push_back(static_cast<int64_t>(found[0]));
  }
  return rows;
}

PlotScene make_plot_scene(const RunDir& run, const PlotOptions& options) {
  if (options.size < 64) throw Error(fmt::format("--size {}: must be at least 64 pixels", options.size));
  const std::vector<float> rows = run.effective_embedding();  // (N, D)
  std::pair<double, double> camera{35.0, 25.0};
  if (run.dims == 3) camera = default_camera(rows, run.normalize);
  camera = {options.azimuth_deg.value_or(camera.first), options.elevation_deg.value_or(camera.second)};
  const Projection projection = make_projection(rows, run.dims, camera.first, camera.second, run.normalize);
  PlotScene scene;
  scene.points = project(projection, rows);
  scene.rgb = run.rgb;
  if (!options.colour_by.empty()) {
    ColourBy by = colour_by_column(
        run, options.vocab.empty() ? (fs::path(run.path) / "metadata.tsv").string() : options.vocab, options.colour_by);
    scene.rgb = std::move(by.rgb);
    scene.legend = std::move(by.legend);
    scene.legend_title = std::move(by.title);
  }
  scene.names = run.names;
  scene.labelled = find_names(run.names, options.labels, run.noun());
  // The unit circle: where L2-normalised rows lie, or the boundary of the Poincaré disc.
  scene.unit_circle = (run.normalize && (run.dims == 2 || run.dims == 3)) || (run.head == "poincare" && run.dims == 2);
  scene.sphere = run.normalize && run.dims == 3;
  scene.compass = axis_compass(projection);
  scene.title = options.title.empty() ? default_title(run) : options.title;
  scene.subtitle = run.head == "poincare" && run.dims == 2 ? "the Poincaré disc: rows as trained, its boundary drawn"
                                                           : projection.view;
  scene.x_label = projection.x_label;
  scene.y_label = projection.y_label;
  scene.size = options.size;
  const auto [x0, x1, y0, y1] = padded_extent(scene.points, scene.unit_circle);
  scene.viewport = fit_viewport(options.size, x0, x1, y0, y1);
  return scene;
}

std::string run_name(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

std::vector<std::array<double, 2>> axis_compass(const Projection& projection) {
  std::vector<std::array<double, 2>> compass;
  if (projection.kind == Projection::Kind::camera)
    for (int k = 0; k < projection.dims; ++k) compass.push_back({projection.axes[0][k], projection.axes[1][k]});
  return compass;
}

std::string default_title(const RunDir& run) {
  return fmt::format("{}: {} {}s, D = {}", run_name(run.path), run.rows, run.noun(), run.dims);
}

namespace {

// Where the tick numbers ended up, which the axis labels are placed clear of.
struct TickLayout {
  double tick;             // tick length in pixels
  double number_height;    // the font's line height
  double widest_y_number;  // the y axis's widest tick number
};

// Grid, ticks and numbers: one step for both axes, so the grid cells are squares.
TickLayout draw_grid_and_ticks(cairo_t* cr, const Viewport& v, double size, double font) {
  const double step = nice_step(std::max(v.x_max - v.x_min, v.y_max - v.y_min), 7);
  const double tick = std::max(3.0, size * 0.006);
  set_font(cr, font);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_set_line_width(cr, 1);
  double widest_y_number = 0;
  for (int axis = 0; axis < 2; ++axis) {
    const double lo = axis == 0 ? v.x_min : v.y_min, hi = axis == 0 ? v.x_max : v.y_max;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      const auto [px, py] = v.to_pixel(axis == 0 ? t : v.x_min, axis == 0 ? v.y_min : t);
      // Lines on pixel centres for crisp 1-px strokes.
      const double x = std::round(px) + 0.5, y = std::round(py) + 0.5;
      cairo_set_source_rgb(cr, 0.91, 0.91, 0.91);
      if (axis == 0) {
        cairo_move_to(cr, x, v.top);
        cairo_line_to(cr, x, v.top + v.height);
      } else {
        cairo_move_to(cr, v.left, y);
        cairo_line_to(cr, v.left + v.width, y);
      }
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
      const std::string text = tick_text(t, step);
      if (axis == 0) {
        cairo_move_to(cr, x, v.top + v.height);
        cairo_line_to(cr, x, v.top + v.height + tick);
        cairo_stroke(cr);
        draw_text(cr, text, x, v.top + v.height + tick + fe.ascent + 1, Align::centre);
      } else {
        cairo_move_to(cr, v.left, y);
        cairo_line_to(cr, v.left - tick, y);
        cairo_stroke(cr);
        cairo_text_extents_t ext;
        cairo_text_extents(cr, text.c_str(), &ext);
        widest_y_number = std::max(widest_y_number, ext.x_advance);
        draw_text(cr, text, v.left - tick - 3, y + 0.36 * font, Align::right);
      }
    }
  }
  return {tick, fe.height, widest_y_number};
}

// The x label below the tick numbers, the y label turned upright left of them.
void draw_axis_labels(cairo_t* cr, const PlotScene& scene, const TickLayout& ticks, double font) {
  const Viewport& v = scene.viewport;
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  set_font(cr, font * 1.1);
  draw_text(cr, scene.x_label, v.left + v.width / 2, v.top + v.height + ticks.tick + ticks.number_height + font * 1.6,
            Align::centre);
  cairo_save(cr);
  cairo_translate(cr, v.left - ticks.tick - ticks.widest_y_number - font * 0.9, v.top + v.height / 2);
  cairo_rotate(cr, -std::numbers::pi / 2);
  draw_text(cr, scene.y_label, 0, 0, Align::centre);
  cairo_restore(cr);
}

// The title, and the subtitle below it, centred above the axes box.
void draw_titles(cairo_t* cr, const PlotScene& scene, double font) {
  const double top = scene.viewport.top;
  set_font(cr, font * 1.3, true);
  draw_text(cr, scene.title, scene.size / 2.0, top * 0.42, Align::centre);
  cairo_set_source_rgb(cr, 0.33, 0.33, 0.33);
  set_font(cr, font);
  draw_text(cr, scene.subtitle, scene.size / 2.0, top * 0.42 + font * 1.7, Align::centre);
}

// The circle of radius 1 around the data origin, as a path.
void unit_circle_path(cairo_t* cr, const Viewport& v) {
  const auto [ox, oy] = v.to_pixel(0, 0);
  cairo_arc(cr, ox, oy, v.width / (v.x_max - v.x_min), 0, 2 * std::numbers::pi);
}

// The points, back to front, inside the axes box.
void draw_points(cairo_t* cr, const PlotScene& scene, double radius) {
  const Viewport& v = scene.viewport;
  cairo_save(cr);
  cairo_rectangle(cr, v.left, v.top, v.width, v.height);
  cairo_clip(cr);
  if (scene.unit_circle && !scene.sphere) {
    unit_circle_path(cr, v);
    cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
    cairo_stroke(cr);
  }
  std::vector<std::size_t> order(scene.points.x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scene.points.depth[a] < scene.points.depth[b]; });
  const double outline = std::max(0.6, scene.size / 1300.0);
  bool veiled = false;
  for (const std::size_t i : order) {
    // On the sphere, the far half sits behind a white veil: nearer points read as nearer.
    if (scene.sphere && !veiled && scene.points.depth[i] >= 0) {
      unit_circle_path(cr, v);
      cairo_set_source_rgba(cr, 1, 1, 1, 0.6);
      cairo_fill_preserve(cr);
      cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
      cairo_set_line_width(cr, 1.2);
      cairo_stroke(cr);
      veiled = true;
    }
    const auto [px, py] = v.to_pixel(scene.points.x[i], scene.points.y[i]);
    if (!std::isfinite(px) || !std::isfinite(py)) continue;
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, radius, 0, 2 * std::numbers::pi);
    cairo_set_source_rgb(cr, scene.rgb[3 * i], scene.rgb[3 * i + 1], scene.rgb[3 * i + 2]);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0.1, 0.1, 0.1, 0.75);
    cairo_set_line_width(cr, outline);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

// A small compass of the data axes for the 3-D view, in the bottom left corner.
void draw_compass(cairo_t* cr, const PlotScene& scene, double font) {
  const Viewport& v = scene.viewport;
  const double len = scene.size * 0.045, cx = v.left + len * 1.4, cy = v.top + v.height - len * 1.4;
  set_font(cr, font * 0.85);
  for (std::size_t k = 0; k < scene.compass.size(); ++k) {
    const auto [dx, dy] = scene.compass[k];
    const double ex = cx + len * dx, ey = cy - len * dy;
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, cx, cy);
    cairo_line_to(cr, ex, ey);
    cairo_stroke(cr);
    // The name just beyond the tip, or below the centre for an axis that points at the viewer.
    const double length = std::hypot(dx, dy);
    const double ux = length > 0.2 ? dx / length : 0.35, uy = length > 0.2 ? dy / length : -1.0;
    const double lx = ex + ux * font, ly = ey - uy * font;
    draw_text(cr, fmt::format("x{}", k), lx, ly + 0.36 * font * 0.85, Align::centre);
  }
}

// Labels: a ring around the point, the name beside it on a white halo.
void draw_labels(cairo_t* cr, const PlotScene& scene, double font, double radius) {
  const Viewport& v = scene.viewport;
  set_font(cr, font * 1.05, true);
  for (const int64_t i : scene.labelled) {
    const auto [px, py] = v.to_pixel(scene.points.x[i], scene.points.y[i]);
    cairo_new_path(cr);
    cairo_arc(cr, px, py, radius + 2.5, 0, 2 * std::numbers::pi);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.5);
    cairo_stroke(cr);
    const std::string& name = scene.names[i];
    cairo_text_extents_t ext;
    cairo_text_extents(cr, name.c_str(), &ext);
    const double gap = radius + 6;
    const bool left = px + gap + ext.x_advance > v.left + v.width;
    const double tx = left ? px - gap - ext.x_advance : px + gap, ty = py - radius - 3;
    cairo_move_to(cr, tx, ty);
    cairo_text_path(cr, name.c_str());
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 3.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_stroke_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_fill(cr);
  }
}

// The legend of --colour-by, in the top right corner of the axes box, on a white panel: the first
// kMaxLegendEntries values, then a line counting the rest.
constexpr std::size_t kMaxLegendEntries = 12;

void draw_legend(cairo_t* cr, const PlotScene& scene, double font) {
  const Viewport& v = scene.viewport;
  const std::size_t entries = std::min(scene.legend.size(), kMaxLegendEntries);
  std::vector<std::string> lines;
  for (std::size_t k = 0; k < entries; ++k) lines.push_back(scene.legend[k].text);
  if (scene.legend.size() > kMaxLegendEntries)
    lines.push_back(fmt::format("and {} more", scene.legend.size() - kMaxLegendEntries));
  set_font(cr, font);
  double widest = 0;
  cairo_text_extents_t ext;
  for (const std::string& text : lines) {
    cairo_text_extents(cr, text.c_str(), &ext);
    widest = std::max(widest, ext.x_advance);
  }
  set_font(cr, font, true);
  cairo_text_extents(cr, scene.legend_title.c_str(), &ext);
  const double line = font * 1.5, swatch = font * 0.8, pad = font * 0.6;
  const double w = std::max(ext.x_advance, swatch + pad + widest) + 2 * pad;
  const double h = line * static_cast<double>(lines.size() + 1) + pad;
  const double x = v.left + v.width - w - pad, y = v.top + pad;
  cairo_rectangle(cr, x, y, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  draw_text(cr, scene.legend_title, x + pad, y + line, Align::left);
  set_font(cr, font);
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const double baseline = y + line * static_cast<double>(k + 2);
    if (k < entries) {
      const auto& c = scene.legend[k].rgb;
      cairo_rectangle(cr, x + pad, baseline - swatch, swatch, swatch);
      cairo_set_source_rgb(cr, c[0], c[1], c[2]);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    draw_text(cr, lines[k], x + pad + swatch + pad, baseline, Align::left);
  }
}

// The axes box last, over the points at its edges.
void draw_axes_box(cairo_t* cr, const Viewport& v) {
  cairo_rectangle(cr, v.left + 0.5, v.top + 0.5, std::round(v.width) - 1, std::round(v.height) - 1);
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
}

}  // namespace

void draw_scene(cairo_t* cr, const PlotScene& scene) {
  // Text, points and ticks scale with the picture.
  const double font = scene.size / 62.0;
  const double radius = std::max(2.0, scene.size * 0.0056);

  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const TickLayout ticks = draw_grid_and_ticks(cr, scene.viewport, scene.size, font);
  draw_axis_labels(cr, scene, ticks, font);
  draw_titles(cr, scene, font);
  draw_points(cr, scene, radius);
  if (!scene.compass.empty()) draw_compass(cr, scene, font);
  draw_labels(cr, scene, font, radius);
  if (!scene.legend.empty()) draw_legend(cr, scene, font);
  draw_axes_box(cr, scene.viewport);
}

Image render_image(const PlotScene& scene) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, scene.size, scene.size);
  cairo_t* cr = cairo_create(surface);
  draw_scene(cr, scene);
  const cairo_status_t status = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  Image image;
  image.width = scene.size;
  image.height = scene.size;
  if (status == CAIRO_STATUS_SUCCESS) {
    image.argb.resize(static_cast<std::size_t>(image.width) * image.height);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    for (int y = 0; y < image.height; ++y) {
      const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<std::size_t>(y) * stride);
      for (int x = 0; x < image.width; ++x)
        image.argb[static_cast<std::size_t>(y) * image.width + x] = row[x] | 0xff000000u;
    }
  }
  cairo_surface_destroy(surface);
  check_cairo(status, "drawing the plot");
  return image;
}

void write_plot(const RunDir& run, const PlotOptions& options) {
  const PlotScene scene = make_plot_scene(run, options);
  const std::string prefix = options.out_prefix.empty() ? (fs::path(run.path) / "plot").string() : options.out_prefix;

  // PNG and SVG from the same drawing, each collected in memory and written atomically.
  std::string png;
  {
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, scene.size, scene.size);
    cairo_t* cr = cairo_create(surface);
    draw_scene(cr, scene);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    if (status == CAIRO_STATUS_SUCCESS) {
      try {
        png = encode_png(surface, prefix + ".png");
      } catch (...) {
        cairo_surface_destroy(surface);
        throw;
      }
    }
    cairo_surface_destroy(surface);
    check_cairo(status, prefix + ".png");
  }
  std::string svg;
  {
    cairo_surface_t* surface = cairo_svg_surface_create_for_stream(append_to_string, &svg, scene.size, scene.size);
    cairo_svg_surface_set_document_unit(surface, CAIRO_SVG_UNIT_PX);
    cairo_t* cr = cairo_create(surface);
    draw_scene(cr, scene);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    check_cairo(status, prefix + ".svg");
  }
  // Cairo draws text as glyph outlines; a <title> and <desc> keep the words searchable and readable
  // by screen readers.
  const std::size_t svg_open = svg.find("<svg");
  const std::size_t insert_at = svg_open == std::string::npos ? std::string::npos : svg.find('>', svg_open);
  if (insert_at == std::string::npos) throw Error(fmt::format("{}.svg: cairo wrote no <svg> element", prefix));
  svg.insert(insert_at + 1,
             fmt::format("\n<title>{}</title>\n<desc>{}</desc>", xml_escape(scene.title), xml_escape(scene.subtitle)));

  std::error_code ec;
  const bool replacing = fs::exists(prefix + ".png", ec) || fs::exists(prefix + ".svg", ec);
  write_text_file(prefix + ".png", png);
  write_text_file(prefix + ".svg", svg);
  spdlog::info("wrote {0}.png and {0}.svg ({1}x{1}: {2}){3}", prefix, scene.size, scene.subtitle,
               replacing ? ", replacing the ones that were there" : "");
}

void write_plot(const std::string& run_dir, const PlotOptions& options) { write_plot(read_run_dir(run_dir), options); }

}  // namespace cudaembed
