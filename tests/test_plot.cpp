// Tests of `cudaembed plot` and `cudaembed animate` on tiny run directories written here with
// cudaembed's own writers: pixels where the points should be, SVG text, projections, the eased
// schedule, MP4 frame counts (when ffprobe exists), GIF frames, and the errors.
#include <sys/wait.h>

#include <cairo.h>
#include <gif_lib.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/plot.hpp"
#include "outputs/plot_render.hpp"
#include "test_support.hpp"

using cudaembed::test::cudaembed_binary;
using cudaembed::test::run_shell;
using cudaembed::test::RunResult;
using cudaembed::test::shell_quote;
using cudaembed::test::TempDir;

namespace {

namespace fs = std::filesystem;
using namespace cudaembed;
using Catch::Matchers::Contains;

struct TinyPoint {
  const char* name;
  std::vector<float> row;  // (D,)
  const char* hex;
};

// A run directory as `train` leaves it: the final rows, `epochs + 1` snapshots growing linearly
// from 10% of them, metadata.tsv and the run.json fields the readers use.
std::string write_run(const TempDir& tmp, const std::string& name, const std::vector<TinyPoint>& points, bool normalize,
                      int epochs = 4) {
  const fs::path dir = tmp.path / name;
  fs::create_directories(dir);
  const int dims = static_cast<int>(points[0].row.size());
  std::vector<float> table;
  std::string metadata = "name\thex\n";
  for (const auto& p : points) {
    table.insert(table.end(), p.row.begin(), p.row.end());
    metadata += fmt::format("{}\t{}\n", p.name, p.hex);
  }
  const uint64_t n = points.size(), d = static_cast<uint64_t>(dims);
  write_npy((dir / "embedding.npy").string(), table, {n, d});
  std::vector<float> snapshots;
  for (int e = 0; e <= epochs; ++e)
    for (const float x : table) snapshots.push_back(x * (0.1f + 0.9f * static_cast<float>(e) / epochs));
  write_npy((dir / "snapshots.npy").string(), snapshots, {static_cast<uint64_t>(epochs) + 1, n, d});
  write_text_file((dir / "metadata.tsv").string(), metadata);
  write_text_file((dir / "run.json").string(),
                  fmt::format("{{\"config\": {{\"normalize\": {}, \"dims\": {}}}}}\n", normalize, dims));
  return dir.string();
}

// Five well-separated 2-D points in five distinct colours, white and black included.
const std::vector<TinyPoint> kFive2d = {
    {"red", {0.0f, 0.0f}, "#FF0000"},     {"SkyBlue", {1.0f, 0.0f}, "#87CEEB"}, {"gold", {0.0f, 1.0f}, "#FFD700"},
    {"white", {-1.0f, -1.0f}, "#FFFFFF"}, {"black", {2.0f, 1.0f}, "#000000"},
};

// "#RRGGBB" as integers in [0, 255].
std::array<int, 3> hex_rgb(const char* hex) {
  unsigned r = 0, g = 0, b = 0;
  std::sscanf(hex, "#%2x%2x%2x", &r, &g, &b);
  return {static_cast<int>(r), static_cast<int>(g), static_cast<int>(b)};
}

struct Png {
  int width = 0, height = 0;
  std::vector<uint32_t> xrgb;  // (height, width)
  std::array<int, 3> rgb(double x, double y) const {
    const uint32_t p = xrgb[static_cast<std::size_t>(std::floor(y)) * width + static_cast<std::size_t>(std::floor(x))];
    return {static_cast<int>(p >> 16 & 0xff), static_cast<int>(p >> 8 & 0xff), static_cast<int>(p & 0xff)};
  }
};

Png decode_png(const std::string& path) {
  cairo_surface_t* surface = cairo_image_surface_create_from_png(path.c_str());
  INFO(path);
  REQUIRE(cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS);
  Png png;
  png.width = cairo_image_surface_get_width(surface);
  png.height = cairo_image_surface_get_height(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  for (int y = 0; y < png.height; ++y)
    for (int x = 0; x < png.width; ++x)
      png.xrgb.push_back(reinterpret_cast<const uint32_t*>(data + static_cast<std::size_t>(y) * stride)[x]);
  cairo_surface_destroy(surface);
  return png;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().string().find(".tmp") != std::string::npos) found.push_back(entry.path().string());
  return found;
}

// Each point's pixel, as the scene maps it, has that point's colour.
void check_point_colours(const std::vector<std::array<int, 3>>& expected, const PlotScene& scene,
                         const std::function<std::array<int, 3>(double, double)>& pixel, int tolerance) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto [px, py] = scene.viewport.to_pixel(scene.points.x[i], scene.points.y[i]);
    const auto got = pixel(px, py);
    INFO("point " << scene.names[i] << " at pixel (" << px << ", " << py << "): got " << got[0] << "," << got[1] << ","
                  << got[2] << ", expected " << expected[i][0] << "," << expected[i][1] << "," << expected[i][2]);
    for (int k = 0; k < 3; ++k) CHECK(std::abs(got[k] - expected[i][k]) <= tolerance);
  }
}

}  // namespace

TEST_CASE("plot: the PNG has the requested size and each point's colour where it should be", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false);
  PlotOptions options;
  options.size = 400;
  options.out_prefix = tmp / "picture";
  write_plot(dir, options);

  const Png png = decode_png(tmp / "picture.png");
  CHECK(png.width == 400);
  CHECK(png.height == 400);
  const PlotScene scene = make_plot_scene(read_run_dir(dir), options);
  std::vector<std::array<int, 3>> expected;
  for (const auto& p : kFive2d) expected.push_back(hex_rgb(p.hex));
  check_point_colours(
      expected, scene, [&](double x, double y) { return png.rgb(x, y); }, 6);

  // D = 2 is drawn as is: x0 to the right, x1 up, the same pixels per unit on both axes.
  const auto origin = scene.viewport.to_pixel(0, 0), right = scene.viewport.to_pixel(1, 0),
             up = scene.viewport.to_pixel(0, 1);
  CHECK(scene.points.x[1] == Approx(1.0));
  CHECK(scene.points.y[2] == Approx(1.0));
  CHECK(right[0] - origin[0] > 50);
  CHECK(origin[1] - up[1] == Approx(right[0] - origin[0]));
  CHECK(right[1] == Approx(origin[1]));
  // Every point inside the axes box.
  for (std::size_t i = 0; i < kFive2d.size(); ++i) {
    const auto [px, py] = scene.viewport.to_pixel(scene.points.x[i], scene.points.y[i]);
    CHECK(px > scene.viewport.left);
    CHECK(px < scene.viewport.left + scene.viewport.width);
    CHECK(py > scene.viewport.top);
    CHECK(py < scene.viewport.top + scene.viewport.height);
  }
  // The background is white, far from any point (the top-right corner of the picture).
  CHECK(png.rgb(396, 3) == std::array<int, 3>{255, 255, 255});
  CHECK(temp_files(tmp.path.string()).empty());
}

TEST_CASE("plot: the SVG is SVG and carries the title; the default title names the run", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false);
  PlotOptions options;
  options.size = 300;
  options.title = "A tiny test run";
  options.labels = {"SkyBlue", "GOLD"};  // names match exactly, else ignoring case
  options.out_prefix = tmp / "titled";
  write_plot(dir, options);
  const std::string svg = slurp(tmp / "titled.svg");
  CHECK((svg.rfind("<?xml", 0) == 0 || svg.rfind("<svg", 0) == 0));
  CHECK_THAT(svg, Contains("<title>A tiny test run</title>"));
  CHECK_THAT(svg, Contains("width=\"300"));

  write_plot(dir);  // as train calls it: <run>/plot.png and <run>/plot.svg
  CHECK(fs::exists(fs::path(dir) / "plot.png"));
  CHECK_THAT(slurp((fs::path(dir) / "plot.svg").string()), Contains("tiny2d: 5 colours, D = 2"));
  CHECK(decode_png((fs::path(dir) / "plot.png").string()).width == 900);
}

TEST_CASE("plot: D = 3 normalised lies in the unit circle and is drawn back to front", "[plot]") {
  TempDir tmp;
  // Unnormalised rows; the plot shows them scaled to unit length.
  const std::vector<TinyPoint> points = {
      {"red", {3.0f, 0.0f, 0.0f}, "#FF0000"},   {"green", {0.0f, 2.0f, 0.0f}, "#00FF00"},
      {"blue", {0.0f, 0.0f, 5.0f}, "#0000FF"},  {"grey", {-1.0f, -1.0f, -1.0f}, "#808080"},
      {"white", {1.0f, 1.0f, 0.2f}, "#FFFFFF"},
  };
  const std::string dir = write_run(tmp, "tiny3d", points, true);
  PlotOptions options;
  options.size = 360;
  options.azimuth_deg = 0;  // camera on the x0 axis: x1 to the right, x2 up
  options.elevation_deg = 0;
  options.out_prefix = tmp / "sphere";
  write_plot(dir, options);
  CHECK(decode_png(tmp / "sphere.png").width == 360);

  const PlotScene scene = make_plot_scene(read_run_dir(dir), options);
  CHECK(scene.unit_circle);
  CHECK(scene.sphere);
  CHECK_THAT(scene.subtitle, Contains("unit sphere"));
  CHECK(scene.x_label == "view x");
  for (std::size_t i = 0; i < points.size(); ++i) CHECK(std::hypot(scene.points.x[i], scene.points.y[i]) <= 1.0 + 1e-9);
  CHECK(scene.points.depth[0] == Approx(1.0));  // red faces the camera
  CHECK(scene.points.x[1] == Approx(1.0));      // green to the right
  CHECK(scene.points.y[2] == Approx(1.0));      // blue at the top
  CHECK(scene.points.depth[3] < 0);             // grey behind the sphere
  // The front points show their own colours (the far half sits behind a veil).
  const Png png = decode_png(tmp / "sphere.png");
  check_point_colours(
      {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}}, scene, [&](double x, double y) { return png.rgb(x, y); }, 6);
}

TEST_CASE("plot: D = 5 is the PCA plane, which keeps distances of points in a plane", "[plot]") {
  TempDir tmp;
  // Points in a 2-D plane of R^5 spanned by two orthonormal vectors u, v, offset from the origin.
  const double u[5] = {0.6, 0.8, 0, 0, 0}, v[5] = {0, 0, 0.28, 0.96, 0}, offset[5] = {1, 2, 3, 4, 5};
  const double plane[6][2] = {{0, 0}, {3, 0}, {0, 1}, {-2, 0.5}, {1, -1}, {2, 2}};
  std::vector<TinyPoint> points;
  const char* hexes[6] = {"#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#00FFFF", "#FF00FF"};
  const char* names[6] = {"a", "b", "c", "d", "e", "f"};
  for (int i = 0; i < 6; ++i) {
    std::vector<float> row(5);
    for (int k = 0; k < 5; ++k) row[k] = static_cast<float>(offset[k] + plane[i][0] * u[k] + plane[i][1] * v[k]);
    points.push_back({names[i], row, hexes[i]});
  }
  const std::string dir = write_run(tmp, "tiny5d", points, false);
  PlotOptions options;
  options.size = 300;
  options.out_prefix = tmp / "pca";
  write_plot(dir, options);
  const Png png = decode_png(tmp / "pca.png");
  CHECK(png.width == 300);

  const PlotScene scene = make_plot_scene(read_run_dir(dir), options);
  CHECK_THAT(scene.subtitle, Contains("PCA of D = 5"));
  CHECK(scene.x_label == "PC1 (75% of variance)");  // the plane holds all of it
  CHECK(scene.y_label == "PC2 (25% of variance)");
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < i; ++j) {
      const double planar = std::hypot(plane[i][0] - plane[j][0], plane[i][1] - plane[j][1]);
      const double shown = std::hypot(scene.points.x[i] - scene.points.x[j], scene.points.y[i] - scene.points.y[j]);
      CHECK(shown == Approx(planar).epsilon(1e-5));
    }
  std::vector<std::array<int, 3>> expected;
  for (const auto* hex : hexes) expected.push_back(hex_rgb(hex));
  check_point_colours(
      expected, scene, [&](double x, double y) { return png.rgb(x, y); }, 6);
}

TEST_CASE("plot: D = 1 against a fixed jitter", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(
      tmp, "tiny1d", {{"red", {-1.0f}, "#FF0000"}, {"green", {0.5f}, "#00FF00"}, {"blue", {2.0f}, "#0000FF"}}, false);
  PlotOptions options;
  options.size = 200;
  options.out_prefix = tmp / "line";
  write_plot(dir, options);
  const PlotScene scene = make_plot_scene(read_run_dir(dir), options);
  CHECK_THAT(scene.subtitle, Contains("jitter"));
  CHECK(scene.points.x == std::vector<double>{-1.0, 0.5, 2.0});
  for (const double y : scene.points.y) CHECK(std::abs(y) <= 0.08 * 3.0);
  CHECK(make_plot_scene(read_run_dir(dir), options).points.y == scene.points.y);  // deterministic
  CHECK(decode_png(tmp / "line.png").height == 200);
}

TEST_CASE("plot: an unknown --label is an Error naming close matches", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false);
  PlotOptions options;
  options.labels = {"gold", "SkyBlu"};
  options.out_prefix = tmp / "never";
  try {
    write_plot(dir, options);
    FAIL("no Error for an unknown name");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains("--label SkyBlu"));
    CHECK_THAT(e.what(), Contains("closest: SkyBlue"));
  }
  CHECK_FALSE(fs::exists(tmp / "never.png"));
  CHECK(find_names({"snow", "SkyBlue", "gold"}, {"sky blue", "gold"}) == std::vector<int64_t>{1, 2});
  // A label with commas is one name when a row has it (a merged row), else a list of names.
  const std::vector<std::string> merged = {"snow", "gray, grey", "gold"};
  CHECK(find_names(merged, {"gray, grey"}) == std::vector<int64_t>{1});
  CHECK(find_names(merged, {"gold,snow"}) == std::vector<int64_t>{2, 0});
  CHECK(find_names(merged, {"grey"}) == std::vector<int64_t>{1});
  CHECK_THAT(test::error_of([&] { find_names(merged, {"gold,snwo"}, "item"); }),
             Contains("--label snwo: no item of that name"));
}

TEST_CASE("plot: a pairs-file run says items, and --colour-by gives each value a colour and a legend", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "items", kFive2d, false);
  // As a pairs-file run writes it: names only.
  write_text_file((fs::path(dir) / "metadata.tsv").string(), "name\nred\nSkyBlue\ngold\nwhite\nblack\n");
  const RunDir run = read_run_dir(dir);
  CHECK(default_title(run) == "items: 5 items, D = 2");
  CHECK_THAT(test::error_of([&] { find_row(run.names, "nosuch", "NAME", run.noun()); }),
             Contains("no item of that name"));

  // Two clusters of two, and one item the table does not list.
  const std::string table = tmp / "items.tsv";
  write_text_file(table, "name\tcluster\tkind\nred\twarm\tx\ngold\twarm\ty\nSkyBlue\tcool\tx\nblack\tcool\ty\n");
  const ColourBy by = colour_by_column(run, table, "cluster");
  REQUIRE(by.legend.size() == 3);
  CHECK(by.legend[0].text == "cool");  // equal sizes: by name
  CHECK(by.legend[1].text == "warm");
  CHECK(by.legend[2].text == "(none)");
  auto rgb = [&](std::size_t row) { return std::array<float, 3>{by.rgb[3 * row], by.rgb[3 * row + 1], by.rgb[3 * row + 2]}; };
  CHECK(rgb(0) == by.legend[1].rgb);  // red: warm
  CHECK(rgb(2) == by.legend[1].rgb);  // gold: warm
  CHECK(rgb(1) == by.legend[0].rgb);  // SkyBlue: cool
  CHECK(rgb(3) == by.legend[2].rgb);  // white: not in the table
  CHECK(by.legend[0].rgb != by.legend[1].rgb);

  CHECK_THAT(test::error_of([&] { colour_by_column(run, table, "colour"); }),
             Contains("--colour-by colour") && Contains("its columns are cluster, kind"));
  CHECK_THAT(test::error_of([&] { colour_by_column(run, (fs::path(dir) / "metadata.tsv").string(), "cluster"); }),
             Contains("its header names only the item column 'name'"));

  // The picture: each point in its category's colour.
  PlotOptions options;
  options.size = 400;
  options.colour_by = "cluster";
  options.vocab = table;
  const PlotScene scene = make_plot_scene(run, options);
  CHECK(scene.legend_title == "cluster");
  const Image image = render_image(scene);
  std::vector<std::array<int, 3>> expected;
  for (std::size_t i = 0; i < 5; ++i) {
    const auto c = rgb(i);
    expected.push_back({static_cast<int>(std::lround(c[0] * 255)), static_cast<int>(std::lround(c[1] * 255)),
                        static_cast<int>(std::lround(c[2] * 255))});
  }
  check_point_colours(
      expected, scene,
      [&](double x, double y) {
        const uint32_t p = image.argb[static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)];
        return std::array<int, 3>{static_cast<int>(p >> 16 & 0xff), static_cast<int>(p >> 8 & 0xff),
                                  static_cast<int>(p & 0xff)};
      },
      2);
}

TEST_CASE("plot: animate, the 3-D camera turns and ends on the plot's view", "[plot]") {
  for (const int64_t frames : {2, 3, 240}) {
    INFO(frames << " frames");
    CHECK(animation_azimuth(35.0, 60.0, frames - 1, frames) == 35.0);  // the last frame is plot.png's view
    CHECK(animation_azimuth(35.0, 60.0, 0, frames) == Approx(-25.0));   // it turned 60 degrees to get there
    for (int64_t f = 1; f < frames; ++f)
      CHECK(animation_azimuth(35.0, 60.0, f, frames) > animation_azimuth(35.0, 60.0, f - 1, frames));
  }
  CHECK(animation_azimuth(35.0, 60.0, 0, 1) == 35.0);  // a single frame shows the end
}

TEST_CASE("plot: animate, the eased schedule starts at 0, ends at E and never goes back", "[plot]") {
  for (const int64_t frames : {2, 3, 10, 240, 241}) {
    for (const int64_t epochs : {1, 7, 500, 100000}) {
      INFO(frames << " frames, " << epochs << " epochs");
      CHECK(eased_epoch(0, frames, epochs) == 0);
      CHECK(eased_epoch(frames - 1, frames, epochs) == epochs);
      for (int64_t f = 1; f < frames; ++f) CHECK(eased_epoch(f, frames, epochs) >= eased_epoch(f - 1, frames, epochs));
    }
  }
  CHECK(eased_epoch(5, 11, 100) == 25);  // (5 / 10)^2 * 100
  CHECK(eased_epoch(0, 1, 9) == 9);      // a single frame shows the end
}

TEST_CASE("plot: animate, GIF has fps * seconds frames of the requested size, looping", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false, 6);
  AnimateOptions options;
  options.format = "gif";
  options.fps = 4;
  options.seconds = 2;
  options.size = 120;
  const std::string out = write_animation(dir, options);
  CHECK(out == (fs::path(dir) / "animation.gif").string());
  CHECK(temp_files(dir).empty());

  int error = 0;
  GifFileType* gif = DGifOpenFileName(out.c_str(), &error);
  REQUIRE(gif);
  REQUIRE(DGifSlurp(gif) == GIF_OK);
  CHECK(gif->ImageCount == 8);
  CHECK(gif->SWidth == 120);
  CHECK(gif->SHeight == 120);
  bool loops = false;
  int total_delay = 0;
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& image = gif->SavedImages[i];
    CHECK(image.ImageDesc.Width == 120);
    for (int b = 0; b < image.ExtensionBlockCount; ++b) {
      const ExtensionBlock& block = image.ExtensionBlocks[b];
      if (block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 &&
          std::string(reinterpret_cast<const char*>(block.Bytes), 11) == "NETSCAPE2.0")
        loops = true;
    }
    GraphicsControlBlock control;
    REQUIRE(DGifSavedExtensionToGCB(gif, i, &control) == GIF_OK);
    total_delay += control.DelayTime;
  }
  CHECK(loops);
  CHECK(total_delay == 200);  // 2 s in 1/100 s

  // The last frame is the final epoch on the final snapshot's axes: each point in its colour.
  const SavedImage& last = gif->SavedImages[gif->ImageCount - 1];
  const ColorMapObject* map = last.ImageDesc.ColorMap ? last.ImageDesc.ColorMap : gif->SColorMap;
  PlotOptions same_view;
  same_view.size = 120;
  const PlotScene scene = make_plot_scene(read_run_dir(dir), same_view);
  std::vector<std::array<int, 3>> expected;
  for (const auto& p : kFive2d) expected.push_back(hex_rgb(p.hex));
  check_point_colours(
      expected, scene,
      [&](double x, double y) {
        const GifColorType c = map->Colors[last.RasterBits[static_cast<int>(y) * 120 + static_cast<int>(x)]];
        return std::array<int, 3>{c.Red, c.Green, c.Blue};
      },
      8);
  DGifCloseFile(gif, &error);
}

TEST_CASE("plot: animate, MP4 has fps * seconds frames (when ffmpeg and ffprobe exist)", "[plot]") {
  if (find_on_path("ffmpeg").empty() || find_on_path("ffprobe").empty()) {
    WARN("ffmpeg or ffprobe not on PATH: MP4 check skipped");
    return;
  }
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny3d",
                                    {{"red", {1.0f, 0.0f, 0.0f}, "#FF0000"},
                                     {"green", {0.0f, 1.0f, 0.0f}, "#00FF00"},
                                     {"blue", {0.0f, 0.0f, 1.0f}, "#0000FF"}},
                                    true);
  AnimateOptions options;
  options.format = "mp4";
  options.fps = 6;
  options.seconds = 1.5;
  options.size = 101;  // odd: rounded up to 102 for H.264
  options.out = tmp / "clip.mp4";
  CHECK(write_animation(dir, options) == tmp / "clip.mp4");
  CHECK(temp_files(tmp.path.string()).empty());
  const auto [status, frames] = run_shell(fmt::format(
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames,width,height -of "
      "csv=p=0 '{}'",
      options.out));
  CHECK(status == 0);
  CHECK(frames == "102,102,9\n");
}

TEST_CASE("plot: animate, errors name the problem", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false, 3);
  AnimateOptions options;
  options.format = "gif";
  options.fps = 2;
  options.seconds = 1;
  options.size = 64;

  SECTION("a truncated snapshots.npy") {
    const fs::path snapshots = fs::path(dir) / "snapshots.npy";
    fs::resize_file(snapshots, fs::file_size(snapshots) - 12);
    REQUIRE_THROWS_WITH(write_animation(dir, options), Contains("snapshots.npy") && Contains("truncated or corrupt"));
    CHECK_FALSE(fs::exists(fs::path(dir) / "animation.gif"));
  }
  SECTION("snapshots of another shape") {
    write_npy((fs::path(dir) / "snapshots.npy").string(), std::vector<float>(4 * 3 * 2), {4, 3, 2});
    REQUIRE_THROWS_WITH(write_animation(dir, options), Contains("snapshots.npy") && Contains("(epochs + 1, 5, 2)"));
  }
  SECTION("mp4 without ffmpeg") {
    const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", tmp.path.c_str(), 1);
    options.format = "mp4";
    std::string message;
    try {
      write_animation(dir, options);
    } catch (const Error& e) {
      message = e.what();
    }
    ::setenv("PATH", saved.c_str(), 1);
    CHECK_THAT(message, Contains("install") && Contains("ffmpeg") && Contains("--format gif"));
  }
  SECTION("--out whose extension contradicts --format") {
    options.out = tmp / "clip.mp4";
    REQUIRE_THROWS_WITH(write_animation(dir, options), Contains("clip.mp4") && Contains("gif"));
  }
}

TEST_CASE("plot: the plot and animate subcommands", "[plot]") {
  TempDir tmp;
  const std::string dir = write_run(tmp, "tiny2d", kFive2d, false, 3);
  const std::string exe = shell_quote(cudaembed_binary());
  const RunResult plot =
      run_shell(fmt::format("{} plot '{}' --size 200 --label SkyBlue,gold --title T 2>&1", exe, dir));
  INFO(plot.output);
  CHECK(plot.status == 0);
  CHECK(decode_png((fs::path(dir) / "plot.png").string()).width == 200);
  const RunResult unknown = run_shell(fmt::format("{} plot '{}' --label nosuch 2>&1", exe, dir));
  CHECK(unknown.status == 1);
  CHECK_THAT(unknown.output, Contains("--label nosuch") && Contains("closest"));
  const RunResult gif = run_shell(fmt::format(
      "{} animate '{}' --format gif --fps 2 --seconds 1 --size 64 --out '{}' 2>&1", exe, dir, tmp / "a.gif"));
  CHECK(gif.status == 0);
  CHECK(fs::exists(tmp / "a.gif"));
}

TEST_CASE("plot: the default 3-D camera faces the cloud", "[plot]") {
  // Normalised points in a cap around +x1: the camera looks from azimuth 90, elevation 0.
  std::vector<float> cap;
  for (int i = -3; i <= 3; ++i)
    for (int j = -3; j <= 3; ++j) {
      const float x = 0.05f * i, z = 0.05f * j, y = std::sqrt(1.0f - x * x - z * z);
      cap.insert(cap.end(), {x, y, z});
    }
  const auto [az, el] = default_camera(cap, true);
  CHECK(az == Approx(90.0).margin(1e-6));
  CHECK(el == Approx(0.0).margin(1e-6));
  // Unnormalised points spread in the x0-x1 plane: the camera looks straight down the x2 axis.
  std::vector<float> plane;
  for (int i = 0; i < 50; ++i) plane.insert(plane.end(), {std::cos(0.3f * i) * i, std::sin(0.7f * i) * 0.5f * i, 0.0f});
  CHECK(default_camera(plane, false).second == Approx(90.0).margin(1e-3));
}
