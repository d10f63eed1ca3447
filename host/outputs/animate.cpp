// `cudaembed animate`: snapshots.npy as a clip, one cairo frame per step of an eased epoch
// schedule, piped to ffmpeg (H.264 MP4) or encoded with giflib (looping GIF).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <gif_lib.h>
#include <spdlog/spdlog.h>

#include "cudaembed/error.hpp"
#include "cudaembed/plot.hpp"
#include "text/input_text.hpp"
#include "outputs/plot_render.hpp"

namespace cudaembed {
namespace fs = std::filesystem;

namespace {

std::string tail_of_file(const std::string& path, std::size_t max_chars) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void add(const Image& frame) = 0;
  virtual void finish() = 0;  // the file is in place only after this
};

// Raw RGB frames into ffmpeg's stdin; ffmpeg writes "<out>.tmp.mp4", renamed when it exits with 0.
class Mp4Sink : public FrameSink {
 public:
  Mp4Sink(const std::string& ffmpeg, std::string out, int size, int fps)
      : out_(std::move(out)), temp_(out_ + ".tmp.mp4"), log_(out_ + ".ffmpeg.log") {
    const std::string command = fmt::format(
        "{} -hide_banner -loglevel error -y -f rawvideo -pix_fmt rgb24 -s {}x{} -r {} -i - -c:v libx264 "
        "-pix_fmt yuv420p -movflags +faststart {} 2>{}",
        shell_word(ffmpeg), size, size, fps, shell_word(temp_), shell_word(log_));
    // A dying ffmpeg must surface as a write error with its log, not kill us with SIGPIPE.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &saved_sigpipe_);
    pipe_ = ::popen(command.c_str(), "w");
    if (!pipe_) {
      sigaction(SIGPIPE, &saved_sigpipe_, nullptr);
      throw Error(fmt::format("{}: cannot start ffmpeg: {}", out_, std::strerror(errno)));
    }
    rgb_.resize(static_cast<std::size_t>(size) * size * 3);
  }

  ~Mp4Sink() override {
    if (pipe_) {
      ::pclose(pipe_);
      std::remove(temp_.c_str());
      std::remove(log_.c_str());
    }
    sigaction(SIGPIPE, &saved_sigpipe_, nullptr);
  }

  void add(const Image& frame) override {
    for (std::size_t i = 0; i < frame.argb.size(); ++i) {
      rgb_[3 * i] = static_cast<unsigned char>(frame.argb[i] >> 16);
      rgb_[3 * i + 1] = static_cast<unsigned char>(frame.argb[i] >> 8);
      rgb_[3 * i + 2] = static_cast<unsigned char>(frame.argb[i]);
    }
    if (std::fwrite(rgb_.data(), 1, rgb_.size(), pipe_) != rgb_.size()) fail("ffmpeg stopped reading frames");
  }

  void finish() override {
    const int status = ::pclose(std::exchange(pipe_, nullptr));
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const std::string log = tail_of_file(log_, 1500);
      std::remove(temp_.c_str());
      std::remove(log_.c_str());
      throw Error(fmt::format("{}: ffmpeg failed (status {}){}{}", out_, status, log.empty() ? "" : ": ", log));
    }
    std::remove(log_.c_str());
    std::error_code ec;
    fs::rename(temp_, out_, ec);
    if (ec) throw Error(fmt::format("{}: cannot rename into place: {}", out_, ec.message()));
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    ::pclose(std::exchange(pipe_, nullptr));
    const std::string log = tail_of_file(log_, 1500);
    std::remove(temp_.c_str());
    std::remove(log_.c_str());
    throw Error(fmt::format("{}: {}{}{}", out_, what, log.empty() ? "" : ": ", log));
  }

  std::string out_, temp_, log_;
  std::FILE* pipe_ = nullptr;
  std::vector<unsigned char> rgb_;
  struct sigaction saved_sigpipe_ {};
};

// The points' colours as 0-255 triples, each once (and each's veiled version on a sphere, the colour
// seen through the white veil at 60%).
std::vector<std::array<int, 3>> distinct_point_colours(const std::vector<float>& rgb, bool veiled) {
  std::vector<std::array<int, 3>> colours;
  for (std::size_t i = 0; i + 2 < rgb.size(); i += 3) {
    std::array<int, 3> c{};
    for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(std::lround(255 * rgb[i + k]));
    colours.push_back(c);
    if (veiled) {
      for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(std::lround(0.4 * c[k] + 0.6 * 255));
      colours.push_back(c);
    }
  }
  std::sort(colours.begin(), colours.end());
  colours.erase(std::unique(colours.begin(), colours.end()), colours.end());
  return colours;
}

// A range [begin, end) of the colours being cut, and its widest channel.
struct ColourBox {
  std::size_t begin, end;
  int channel = 0, range = 0;
};

void measure(ColourBox& box, const std::vector<std::array<int, 3>>& colours) {
  box.range = -1;
  for (int k = 0; k < 3; ++k) {
    const auto [lo, hi] = std::minmax_element(colours.begin() + box.begin, colours.begin() + box.end,
                                              [k](const auto& a, const auto& b) { return a[k] < b[k]; });
    if ((*hi)[k] - (*lo)[k] > box.range) box.range = (*hi)[k] - (*lo)[k], box.channel = k;
  }
}

// Median cut into at most `count` boxes: split the widest box along its widest channel, at the
// median, until there are `count` or none can be split. Reorders `colours` within the boxes.
std::vector<ColourBox> median_cut(std::vector<std::array<int, 3>>& colours, int count) {
  std::vector<ColourBox> boxes;
  if (!colours.empty()) {
    boxes.push_back({0, colours.size()});
    measure(boxes[0], colours);
  }
  while (static_cast<int>(boxes.size()) < count) {
    const auto widest = std::max_element(boxes.begin(), boxes.end(), [](const ColourBox& a, const ColourBox& b) {
      return (a.end - a.begin > 1 ? a.range : -1) < (b.end - b.begin > 1 ? b.range : -1);
    });
    if (widest->end - widest->begin < 2 || widest->range <= 0) break;
    ColourBox box = *widest;
    const int k = box.channel;
    std::sort(colours.begin() + box.begin, colours.begin() + box.end,
              [k](const auto& a, const auto& b) { return a[k] < b[k]; });
    const std::size_t middle = box.begin + (box.end - box.begin) / 2;
    ColourBox low{box.begin, middle}, high{middle, box.end};
    measure(low, colours);
    measure(high, colours);
    *widest = low;
    boxes.push_back(high);
  }
  return boxes;
}

// A palette for every frame of a clip: the points' colours (and their veiled versions on a sphere)
// cut to 224 entries by median cut, each colour counted once however many pixels it covers, plus a
// ramp of 32 greys for the background, grid, text and outlines. Pixel-count quantisers spend the
// palette on the white background and tint the grey spine; this keeps the points' colours.
std::vector<GifColorType> clip_palette(const std::vector<float>& rgb, bool veiled) {
  constexpr int kGreys = 32, kColours = 256 - kGreys;
  std::vector<std::array<int, 3>> colours = distinct_point_colours(rgb, veiled);
  const std::vector<ColourBox> boxes = median_cut(colours, kColours);
  std::vector<GifColorType> palette;
  for (const ColourBox& box : boxes) {  // each box's mean colour
    std::array<double, 3> sum{};
    for (std::size_t i = box.begin; i < box.end; ++i)
      for (int k = 0; k < 3; ++k) sum[k] += colours[i][k];
    const double n = static_cast<double>(box.end - box.begin);
    palette.push_back({static_cast<GifByteType>(std::lround(sum[0] / n)),
                       static_cast<GifByteType>(std::lround(sum[1] / n)),
                       static_cast<GifByteType>(std::lround(sum[2] / n))});
  }
  for (int g = 0; g < kGreys; ++g) {
    const auto v = static_cast<GifByteType>(std::lround(255.0 * g / (kGreys - 1)));
    palette.push_back({v, v, v});
  }
  palette.resize(256, GifColorType{255, 255, 255});
  return palette;
}

// A looping GIF89a with one global palette; each pixel becomes its nearest palette entry.
class GifSink : public FrameSink {
 public:
  GifSink(std::string out, int size, int fps, const std::vector<GifColorType>& palette)
      : out_(std::move(out)), temp_(out_ + ".tmp"), size_(size), fps_(fps), palette_(palette) {
    // Opened here rather than by EGifOpenFileName, which makes files only the owner can read.
    const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) throw Error(fmt::format("{}: cannot open for writing: {}", temp_, std::strerror(errno)));
    int error = 0;
    gif_ = EGifOpenFileHandle(fd, &error);
    if (!gif_) {
      ::close(fd);
      std::remove(temp_.c_str());
      throw Error(fmt::format("{}: cannot start the GIF: {}", temp_, GifErrorString(error)));
    }
    try {
      EGifSetGifVersion(gif_, true);
      std::unique_ptr<ColorMapObject, decltype(&GifFreeMapObject)> map(GifMakeMapObject(256, palette_.data()),
                                                                       GifFreeMapObject);
      if (!map) throw Error(fmt::format("{}: out of memory for the GIF palette", out_));
      check(EGifPutScreenDesc(gif_, size, size, 8, 0, map.get()), "screen descriptor");
      // NETSCAPE2.0 application extension: loop count 0 = forever.
      const unsigned char loop[3] = {1, 0, 0};
      check(EGifPutExtensionLeader(gif_, APPLICATION_EXT_FUNC_CODE), "loop extension");
      check(EGifPutExtensionBlock(gif_, 11, "NETSCAPE2.0"), "loop extension");
      check(EGifPutExtensionBlock(gif_, 3, loop), "loop extension");
      check(EGifPutExtensionTrailer(gif_), "loop extension");
    } catch (...) {
      EGifCloseFile(std::exchange(gif_, nullptr), &error);
      std::remove(temp_.c_str());
      throw;
    }
    indices_.resize(static_cast<std::size_t>(size) * size);
    nearest_.assign(std::size_t{1} << 24, -1);
  }

  ~GifSink() override {
    if (gif_) {
      int error = 0;
      EGifCloseFile(gif_, &error);
      std::remove(temp_.c_str());
    }
  }

  void add(const Image& frame) override {
    for (std::size_t i = 0; i < frame.argb.size(); ++i) indices_[i] = nearest(frame.argb[i] & 0xffffff);
    // Delays are in 1/100 s: frame f ends at round(100 (f + 1) / fps), so the clip keeps its length
    // (30 fps: 3, 4, 3, 3, 4, 3, ...); viewers slow down anything under 2.
    const auto ends_at = [&](int64_t f) { return std::llround(100.0 * static_cast<double>(f) / fps_); };
    GraphicsControlBlock control{};
    control.DisposalMode = DISPOSE_DO_NOT;
    control.DelayTime = static_cast<int>(std::max<int64_t>(2, ends_at(frames_ + 1) - ends_at(frames_)));
    control.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType extension[4];
    EGifGCBToExtension(&control, extension);
    check(EGifPutExtension(gif_, GRAPHICS_EXT_FUNC_CODE, 4, extension), "frame delay");
    check(EGifPutImageDesc(gif_, 0, 0, size_, size_, false, nullptr), "image descriptor");
    for (int y = 0; y < size_; ++y)
      check(EGifPutLine(gif_, indices_.data() + static_cast<std::size_t>(y) * size_, size_), "pixels");
    ++frames_;
  }

  void finish() override {
    int error = 0;
    if (EGifCloseFile(std::exchange(gif_, nullptr), &error) == GIF_ERROR) {
      std::remove(temp_.c_str());
      throw Error(fmt::format("{}: writing the GIF failed: {}", temp_, GifErrorString(error)));
    }
    std::error_code ec;
    fs::rename(temp_, out_, ec);
    if (ec) throw Error(fmt::format("{}: cannot rename into place: {}", out_, ec.message()));
  }

 private:
  GifByteType nearest(uint32_t rgb) {
    int16_t& cached = nearest_[rgb];
    if (cached >= 0) return static_cast<GifByteType>(cached);
    const int r = static_cast<int>(rgb >> 16), g = static_cast<int>(rgb >> 8 & 0xff), b = static_cast<int>(rgb & 0xff);
    int best = 0, best_distance = INT32_MAX;
    for (int i = 0; i < 256; ++i) {
      const int dr = r - palette_[i].Red, dg = g - palette_[i].Green, db = b - palette_[i].Blue;
      const int distance = 3 * dr * dr + 4 * dg * dg + 2 * db * db;  // green counts most to the eye
      if (distance < best_distance) best_distance = distance, best = i;
    }
    cached = static_cast<int16_t>(best);
    return static_cast<GifByteType>(best);
  }

  void check(int result, const char* what) {
    if (result == GIF_ERROR)
      throw Error(fmt::format("{}: writing the GIF {} failed: {}", temp_, what, GifErrorString(gif_->Error)));
  }

  std::string out_, temp_;
  int size_, fps_;
  int64_t frames_ = 0;
  std::vector<GifColorType> palette_;  // (256,)
  GifFileType* gif_ = nullptr;
  std::vector<GifByteType> indices_;  // (size, size)
  std::vector<int16_t> nearest_;      // (2^24,) palette index per 0xRRGGBB, -1 until first seen
};

}  // namespace

int64_t eased_epoch(int64_t frame, int64_t frames, int64_t epochs) {
  if (frames <= 1) return epochs;
  const double t = static_cast<double>(std::clamp<int64_t>(frame, 0, frames - 1)) / static_cast<double>(frames - 1);
  return std::llround(t * t * static_cast<double>(epochs));
}

double animation_azimuth(double end_deg, double turn_deg, int64_t frame, int64_t frames) {
  if (frames <= 1) return end_deg;
  return end_deg - turn_deg * static_cast<double>(frames - 1 - frame) / static_cast<double>(frames - 1);
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

namespace {

// Where the clip goes and how it is encoded.
struct ClipTarget {
  std::string format;  // "mp4" or "gif"
  std::string out;
  std::string ffmpeg;  // its path, empty when it is not on PATH
};

// The format: asked for, else the one --out's extension names, else mp4 when ffmpeg is there.
ClipTarget choose_target(const std::string& run_dir, const AnimateOptions& options) {
  ClipTarget target;
  target.format = options.format;
  const std::string extension = fs::path(options.out).extension().string();
  target.ffmpeg = find_on_path("ffmpeg");
  if (target.format == "auto")
    target.format = extension == ".gif" ? "gif" : extension == ".mp4" || !target.ffmpeg.empty() ? "mp4" : "gif";
  if (target.format != "mp4" && target.format != "gif")
    throw Error(fmt::format("--format {}: expected auto, mp4 or gif", options.format));
  if (target.format == "mp4" && target.ffmpeg.empty())
    throw Error(
        "--format mp4 needs ffmpeg, which is not on PATH: install it (apt-get install ffmpeg) or use "
        "--format gif");
  target.out = options.out.empty() ? (fs::path(run_dir) / ("animation." + target.format)).string() : options.out;
  if (!extension.empty() && extension != "." + target.format)
    throw Error(
        fmt::format("--out {}: the name ends in {} but the format is {}", target.out, extension, target.format));
  return target;
}

// snapshots.npy: the table after every epoch, normalised as the plot shows them.
struct Snapshots {
  NpyArray array;  // (E + 1, N, D)
  int64_t epochs = 0;
  std::size_t table = 0;  // N * D

  std::span<const float> at(int64_t epoch) const {
    return std::span<const float>(array.data).subspan(static_cast<std::size_t>(epoch) * table, table);
  }
};

// RUN_DIR/snapshots.npy, its shape checked against the run's table.
Snapshots read_snapshots(const std::string& run_dir, const RunDir& run) {
  const std::string path = (fs::path(run_dir) / "snapshots.npy").string();
  if (!fs::exists(path))
    throw Error(fmt::format(
        "{}: the run kept no snapshots (no snapshots.npy), so there is nothing to animate; train with --snapshots all "
        "to keep the table of every epoch",
        run_dir));
  Snapshots snapshots;
  snapshots.array = read_npy(path);
  const auto& shape = snapshots.array.shape;
  if (shape.size() != 3 || shape[1] != static_cast<uint64_t>(run.rows) || shape[2] != static_cast<uint64_t>(run.dims) ||
      shape[0] < 1)
    throw Error(fmt::format("{}: expected shape (epochs + 1, {}, {}) to match embedding.npy, found ({})", path,
                            run.rows, run.dims, fmt::join(shape, ", ")));
  if (run.normalize && !run.rows_l2_normalized)
    snapshots.array.data = l2_normalized_rows(snapshots.array.data, run.dims);
  snapshots.epochs = static_cast<int64_t>(shape[0]) - 1;
  snapshots.table = static_cast<std::size_t>(run.rows) * run.dims;
  return snapshots;
}

// The view of every frame. For D = 3 the camera turns towards the final view and ends on it; every
// other view is fixed. Unset angles face the final cloud, as plot's do.
struct ClipView {
  Projection final_projection;
  std::span<const float> final_rows;  // (N, D): the last snapshot
  double end_azimuth = 0, elevation = 0, turn_deg = 0;
  int64_t frames = 1;
  bool normalize = false;

  Projection at(int64_t frame) const {
    if (final_projection.kind != Projection::Kind::camera) return final_projection;
    return make_projection(final_rows, 3, animation_azimuth(end_azimuth, turn_deg, frame, frames), elevation,
                           normalize);
  }
};

ClipView clip_view(const RunDir& run, std::span<const float> final_rows, const AnimateOptions& options,
                   int64_t frames) {
  std::pair<double, double> camera{35.0, 25.0};
  if (run.dims == 3) camera = default_camera(final_rows, run.normalize);
  ClipView view;
  view.final_rows = final_rows;
  view.end_azimuth = options.azimuth_deg.value_or(camera.first);
  view.elevation = options.elevation_deg.value_or(camera.second);
  view.turn_deg = options.turn_deg;
  view.frames = frames;
  view.normalize = run.normalize;
  view.final_projection = make_projection(final_rows, run.dims, view.end_azimuth, view.elevation, run.normalize);
  return view;
}

// What every frame shares. One set of axes for the clip: the final snapshot's extent over every
// camera angle the clip uses.
PlotScene clip_scene(const RunDir& run, const ClipView& view, int size) {
  PlotScene scene;
  scene.rgb = run.rgb;
  scene.names = run.names;
  // The unit circle: where L2-normalised rows lie, or the boundary of the Poincaré disc.
  scene.unit_circle = (run.normalize && (run.dims == 2 || run.dims == 3)) || (run.head == "poincare" && run.dims == 2);
  scene.sphere = run.normalize && run.dims == 3;
  scene.x_label = view.final_projection.x_label;
  scene.y_label = view.final_projection.y_label;
  scene.size = size;
  std::array<double, 4> extent = padded_extent(project(view.final_projection, view.final_rows), scene.unit_circle);
  if (view.final_projection.kind == Projection::Kind::camera) {
    ProjectedPoints all;
    for (int64_t f = 0; f < view.frames; ++f) {
      const auto p = project(view.at(f), view.final_rows);
      all.x.insert(all.x.end(), p.x.begin(), p.x.end());
      all.y.insert(all.y.end(), p.y.begin(), p.y.end());
    }
    extent = padded_extent(all, scene.unit_circle);
  }
  scene.viewport = fit_viewport(size, extent[0], extent[1], extent[2], extent[3]);
  return scene;
}

// The GIF's one palette is made from the run's colours, with their veiled versions on a sphere.
std::unique_ptr<FrameSink> make_sink(const ClipTarget& target, int size, int fps, const RunDir& run, bool sphere) {
  if (target.format == "mp4") return std::make_unique<Mp4Sink>(target.ffmpeg, target.out, size, fps);
  return std::make_unique<GifSink>(target.out, size, fps, clip_palette(run.rgb, sphere));
}

// Draws every frame into `sink`: frame f shows the snapshot of eased_epoch(f), logging about ten times.
void render_frames(FrameSink& sink, PlotScene& scene, const Snapshots& snapshots, const ClipView& view,
                   const std::string& name) {
  const int64_t frames = view.frames, epochs = snapshots.epochs;
  const int64_t every = std::max<int64_t>(1, (frames + 9) / 10);
  for (int64_t f = 0; f < frames; ++f) {
    const int64_t epoch = eased_epoch(f, frames, epochs);
    const Projection projection = view.at(f);
    scene.points = project(projection, snapshots.at(epoch));
    scene.compass = axis_compass(projection);
    scene.title = fmt::format("{}: epoch {} / {}", name, epoch, epochs);
    scene.subtitle = projection.view;
    sink.add(render_image(scene));
    if ((f + 1) % every == 0 || f + 1 == frames)
      spdlog::info("frame {}/{} ({:.0f}%), epoch {}", f + 1, frames, 100.0 * (f + 1) / frames, epoch);
  }
}

}  // namespace

std::string write_animation(const std::string& run_dir, const AnimateOptions& options) {
  if (options.fps < 1) throw Error(fmt::format("--fps {}: must be at least 1", options.fps));
  if (!(options.seconds > 0)) throw Error(fmt::format("--seconds {}: must be greater than 0", options.seconds));
  if (options.size < 64) throw Error(fmt::format("--size {}: must be at least 64 pixels", options.size));
  const ClipTarget target = choose_target(run_dir, options);
  const RunDir run = read_run_dir(run_dir);
  const Snapshots snapshots = read_snapshots(run_dir, run);

  // H.264 in yuv420p needs even sizes.
  int size = options.size;
  if (target.format == "mp4" && size % 2) {
    ++size;
    spdlog::info("--size {}: using {} (H.264 needs an even size)", options.size, size);
  }
  const int64_t frames = std::max<int64_t>(1, std::llround(options.fps * options.seconds));
  const ClipView view = clip_view(run, snapshots.at(snapshots.epochs), options, frames);
  PlotScene scene = clip_scene(run, view, size);
  const std::unique_ptr<FrameSink> sink = make_sink(target, size, options.fps, run, scene.sphere);
  spdlog::info("animating {} epochs of {} as {} frames at {} fps ({}x{} {})", snapshots.epochs, run_dir, frames,
               options.fps, size, size, target.format);
  render_frames(*sink, scene, snapshots, view, run_name(run_dir));
  sink->finish();
  spdlog::info("wrote {}", target.out);
  return target.out;
}

}  // namespace cudaembed
