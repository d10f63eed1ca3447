// Pictures of a run: `cudaembed plot` (PNG + SVG of the final embedding, drawn with cairo) and
// `cudaembed animate` (MP4 through ffmpeg, or GIF through giflib, of snapshots.npy).
//
// Train calls this at the end of a run with nothing but the run directory:
//   cudaembed::write_plot(run_dir);   // -> <run_dir>/plot.png and <run_dir>/plot.svg
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cudaembed/run_dir.hpp"

namespace cudaembed {

struct PlotOptions {
  std::string out_prefix;           // writes <prefix>.png and <prefix>.svg; empty: <run dir>/plot
  std::vector<std::string> labels;  // names to write next to their points (find_names)
  int size = 900;                   // the picture is size x size pixels
  // D = 3: camera angle around the x2 axis from the x0 axis, and above the x0-x1 plane. Unset: the
  // camera faces the cloud (see default_camera).
  std::optional<double> azimuth_deg, elevation_deg;
  std::string title;  // empty: "<run dir name>: N colours, D = d" ("items" for a pairs file)
  // A column of `vocab` (a TSV: a header line, the name first, then any columns) to colour the
  // points by: one colour per distinct value, with a legend. Empty: each colour its own RGB, a pairs
  // file's items one blue. `vocab` empty: the run's metadata.tsv.
  std::string colour_by, vocab;
};

// Point colours from a column of a table of names (plot --colour-by).
struct LegendEntry {
  std::string text;
  std::array<float, 3> rgb;
};
struct ColourBy {
  std::vector<float> rgb;            // (N, 3): each row's category colour; light grey without a value
  std::vector<LegendEntry> legend;  // the categories, largest first, then "(none)" if any row has no value
  std::string title;                 // the column's name
};
// Rows of `run` are found by their exact name in the table's first column; names the run lacks are
// skipped. Errors: an unknown column (listing the table's columns), a line whose field count differs
// from the header's, a name twice.
ColourBy colour_by_column(const RunDir& run, const std::string& table_path, const std::string& column);

// Draws the run's embedding (D = 1: x0 with a fixed jitter; D = 2: as is; D = 3: orthographic view,
// on the unit sphere when the run normalised its rows; D > 3: the top two principal components) to
// <prefix>.png and <prefix>.svg, each written to a temporary name and renamed into place.
void write_plot(const RunDir& run, const PlotOptions& options = {});
void write_plot(const std::string& run_dir, const PlotOptions& options = {});

// How rows (N, D) become points in the picture's plane, plus a depth for painter's order.
struct Projection {
  enum class Kind { jitter, plane, camera, pca };
  Kind kind = Kind::plane;
  int dims = 2;
  std::vector<double> mean;                 // (D,) subtracted first (PCA: the rows' mean; else 0)
  std::array<std::vector<double>, 3> axes;  // (3, D): picture x, picture y, depth (towards the viewer)
  double jitter = 0;                        // D = 1: half-height of the jitter band, in data units
  std::string x_label, y_label, view;       // axis labels and what the view is, for the subtitle
};

// D = 1 and D > 3 look at `rows` (N, D) for the jitter band and the principal components; D = 3
// uses the camera angles. `normalized` only changes the description.
// A camera (azimuth, elevation in degrees) that faces a 3-D cloud (N, 3): from the mean direction
// of L2-normalised rows (the part of the sphere they fill), else along the axis of least variance
// (so the plane the points spread in faces the viewer).
std::pair<double, double> default_camera(std::span<const float> rows, bool normalized);

Projection make_projection(std::span<const float> rows, int dims, double azimuth_deg, double elevation_deg,
                           bool normalized);

struct ProjectedPoints {
  std::vector<double> x, y, depth;  // (N,) each; depth grows towards the viewer
};
ProjectedPoints project(const Projection& projection, std::span<const float> rows);

// Data coordinates shown, and where they land: both axes at the same scale (pixels per unit).
struct Viewport {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;         // data range of the axes box
  double left = 0, top = 0, width = 1, height = 1;           // axes box in pixels
  std::array<double, 2> to_pixel(double x, double y) const;  // pixel (i, j) covers [i, i+1) x [j, j+1); y down
};

// A viewport of a `size` x `size` picture whose axes box shows [x_min, x_max] x [y_min, y_max],
// widened on one axis so that both have the same scale.
Viewport fit_viewport(int size, double x_min, double x_max, double y_min, double y_max);

// Everything a picture shows, in data coordinates, with the viewport it is drawn in.
struct PlotScene {
  ProjectedPoints points;                      // (N,)
  std::vector<float> rgb;                      // (N, 3) in [0, 1]
  std::vector<std::string> names;              // (N,)
  std::vector<int64_t> labelled;               // rows whose names are drawn
  std::vector<LegendEntry> legend;             // --colour-by: drawn in the top right corner (none when empty)
  std::string legend_title;
  bool unit_circle = false;                    // normalised rows, D = 2 or 3: draw the unit circle
  bool sphere = false;                         // D = 3 normalised: the far hemisphere sits behind a white veil
  std::vector<std::array<double, 2>> compass;  // D = 3: picture (x, y) of each data axis's unit vector
  std::string title, subtitle, x_label, y_label;
  Viewport viewport;
  int size = 900;
};

// The scene write_plot draws; tests use its viewport to find each point's pixel.
PlotScene make_plot_scene(const RunDir& run, const PlotOptions& options);

// Pixels of a rendered picture: (height, width) words 0xFFRRGGBB, opaque, as cairo stores them.
struct Image {
  int width = 0, height = 0;
  std::vector<uint32_t> argb;
};
Image render_image(const PlotScene& scene);

// Row of `names` for each of `wanted`, as find_row finds it (a merged row by any of its names). A
// name that finds no row whole and holds commas is a list of names ("SkyBlue,gold"). An unknown
// or ambiguous name is an Error that names the closest names or the candidates.
std::vector<int64_t> find_names(const std::vector<std::string>& names, const std::vector<std::string>& wanted,
                                std::string_view noun = "colour");

struct AnimateOptions {
  std::string out;              // empty: <run dir>/animation.mp4 (or .gif); with auto, its extension picks the format
  int fps = 30;                 // frames per second
  double seconds = 8;           // frames = round(fps * seconds)
  std::string format = "auto";  // auto (mp4 when ffmpeg is on PATH, else gif), mp4 or gif
  int size = 720;               // frames are size x size (rounded up to even for mp4)
  std::optional<double> azimuth_deg;    // D = 3: the camera ends here, plot's view (unset: default_camera) ...
  double turn_deg = 60;                 // ... after turning by this much over the clip
  std::optional<double> elevation_deg;  // D = 3: camera angle above the x0-x1 plane (unset: default_camera)
};

// Renders snapshots.npy: frame f of F shows eased_epoch(f, F, E). Returns the path written.
std::string write_animation(const std::string& run_dir, const AnimateOptions& options);

// The epoch frame f of `frames` shows: round((f / (frames - 1))^2 * epochs), so early epochs, where
// the picture changes most, get the most frames. 0 for the first frame, `epochs` for the last.
int64_t eased_epoch(int64_t frame, int64_t frames, int64_t epochs);

// Camera azimuth of frame f of `frames` (D = 3): it turns by turn_deg over the clip and ends at
// end_deg, so the last frame shows the view `plot` draws (plot.png). A single frame is the end.
double animation_azimuth(double end_deg, double turn_deg, int64_t frame, int64_t frames);

// Path of `program` in $PATH, or "" when there is none.
std::string find_on_path(const std::string& program);

}  // namespace cudaembed
