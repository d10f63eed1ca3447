// NPY and text outputs, each written to "<path>.tmp" then renamed.
#include "cudaembed/outputs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "cudaembed/error.hpp"

namespace cudaembed {
namespace fs = std::filesystem;

namespace {

std::FILE* open_for_write(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  return f;
}

void write_all(std::FILE* f, const void* data, std::size_t bytes, const std::string& path) {
  if (bytes && std::fwrite(data, 1, bytes, f) != bytes)
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
}

void close_and_rename(std::FILE* f, const std::string& temp, const std::string& path) {
  const bool ok = std::fflush(f) == 0;
  std::fclose(f);
  if (!ok) throw Error(fmt::format("{}: write failed: {}", temp, std::strerror(errno)));
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) throw Error(fmt::format("{}: cannot rename into place: {}", path, ec.message()));
}

// The first `n` bytes of a file (fewer if it is shorter).
std::string read_prefix(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

}  // namespace

std::string npy_header(const std::vector<uint64_t>& shape, const char* descr) {
  // Python tuple syntax: "(646, 2)", and "(646,)" for one dimension.
  std::string dims;
  for (std::size_t i = 0; i < shape.size(); ++i) dims += fmt::format("{}{}", i ? ", " : "", shape[i]);
  if (shape.size() == 1) dims += ',';
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
  const std::size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict += '\n';
  std::string header("\x93NUMPY\x01\x00", 8);
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

void write_npy(const std::string& path, std::span<const float> data, const std::vector<uint64_t>& shape) {
  NpyStreamWriter writer(path, shape);
  writer.append(data);
  writer.finish();
}

void write_npy(const std::string& path, std::span<const uint32_t> data, const std::vector<uint64_t>& shape) {
  const std::string header = npy_header(shape, "<u4");
  std::string bytes(header);
  bytes.append(reinterpret_cast<const char*>(data.data()), data.size_bytes());
  write_text_file(path, bytes);
}

NpyStreamWriter::NpyStreamWriter(std::string path, std::vector<uint64_t> shape)
    : path_(std::move(path)), temp_path_(path_ + ".tmp") {
  expected_ = 1;
  for (const uint64_t d : shape) expected_ *= d;
  file_ = open_for_write(temp_path_);
  const std::string header = npy_header(shape);
  write_all(file_, header.data(), header.size(), temp_path_);
}

NpyStreamWriter::NpyStreamWriter(std::string path, std::vector<uint64_t> shape, uint64_t values)
    : path_(std::move(path)), temp_path_(path_ + ".tmp") {
  expected_ = 1;
  for (const uint64_t d : shape) expected_ *= d;
  const std::string header = npy_header(shape);
  const uint64_t bytes = header.size() + values * sizeof(float);
  // Where a file's data starts, if it is an NPY file holding at least `values` values.
  auto data_start = [&](const std::string& file) -> std::optional<uint64_t> {
    std::ifstream in(file, std::ios::binary);
    char start[10];
    std::error_code ec;
    if (!in.read(start, sizeof start) || std::memcmp(start, "\x93NUMPY\x01\x00", 8) != 0) return std::nullopt;
    const uint64_t offset = 10 + (static_cast<unsigned char>(start[8]) | static_cast<unsigned>(static_cast<unsigned char>(start[9])) << 8);
    const auto size = fs::file_size(file, ec);
    if (ec || size < offset + values * sizeof(float)) return std::nullopt;
    return offset;
  };
  std::error_code ec;
  // The interrupted run's own temporary file: cut back to the checkpoint, its header rewritten for
  // the shape asked for (--resume --epochs changes the number of epochs).
  if (const auto offset = data_start(temp_path_); offset && *offset == header.size()) {
    fs::resize_file(temp_path_, bytes, ec);
    if (ec) throw Error(fmt::format("{}: cannot cut back to the checkpoint: {}", temp_path_, ec.message()));
    file_ = std::fopen(temp_path_.c_str(), "r+b");
    if (!file_) throw Error(fmt::format("{}: cannot reopen: {}", temp_path_, std::strerror(errno)));
    write_all(file_, header.data(), header.size(), temp_path_);
    if (std::fseek(file_, 0, SEEK_END) != 0)
      throw Error(fmt::format("{}: cannot seek: {}", temp_path_, std::strerror(errno)));
    written_ = values;
    return;
  }
  const auto offset = data_start(path_);
  if (!offset)
    throw Error(
        fmt::format("{}: the partial snapshots of the interrupted run are missing or short (the checkpoint needs {} "
                    "bytes)",
                    temp_path_, bytes));
  written_ = values;
  // The finished file, killed after it was renamed into place: nothing to append.
  if (values == expected_ && fs::file_size(path_, ec) == bytes && read_prefix(path_, header.size()) == header) return;
  // A finished run trained further: its values under the new header into the temporary file; the
  // finished file stays as it is until finish() replaces it.
  file_ = open_for_write(temp_path_);
  write_all(file_, header.data(), header.size(), temp_path_);
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(*offset));
  std::vector<char> buffer(std::size_t{1} << 20);
  for (uint64_t left = values * sizeof(float); left > 0;) {
    const auto n = static_cast<std::size_t>(std::min<uint64_t>(left, buffer.size()));
    if (!in.read(buffer.data(), static_cast<std::streamsize>(n)))
      throw Error(fmt::format("{}: cannot read the snapshots to extend them", path_));
    write_all(file_, buffer.data(), n, temp_path_);
    left -= n;
  }
}

void NpyStreamWriter::sync() {
  if (!file_) return;
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw Error(fmt::format("{}: cannot sync: {}", temp_path_, std::strerror(errno)));
}

void NpyStreamWriter::keep_partial() {
  if (!file_) return;
  std::fflush(file_);
  std::fclose(std::exchange(file_, nullptr));
}

NpyStreamWriter::~NpyStreamWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(temp_path_.c_str());
}

void NpyStreamWriter::append(std::span<const float> data) {
  if (written_ + data.size() > expected_)
    throw Error(fmt::format("{}: more data than the declared shape holds", path_));
  write_all(file_, data.data(), data.size_bytes(), temp_path_);
  written_ += data.size();
}

void NpyStreamWriter::finish() {
  if (written_ != expected_) throw Error(fmt::format("{}: {} of {} values written", path_, written_, expected_));
  if (!file_) return;  // already complete on disk (a resumed run that had renamed it)
  std::FILE* f = std::exchange(file_, nullptr);
  close_and_rename(f, temp_path_, path_);
}

double json_number(float x) { return std::stod(fmt::format("{}", x)); }

void write_text_file(const std::string& path, const std::string& content) {
  const std::string temp = path + ".tmp";
  std::FILE* f = open_for_write(temp);
  try {
    write_all(f, content.data(), content.size(), temp);
  } catch (...) {
    std::fclose(f);
    std::remove(temp.c_str());
    throw;
  }
  close_and_rename(f, temp, path);
}

namespace {

// Whether a directory can be made inside `dir`: tried for real, since access(W_OK) says yes to root
// even on read-only or virtual filesystems.
std::string cannot_write_in(const fs::path& dir) {
  std::string probe = (dir / ".cudaembed-probe-XXXXXX").string();
  if (!mkdtemp(probe.data())) return std::strerror(errno);
  rmdir(probe.c_str());
  return {};
}

}  // namespace

void check_run_dir(const std::string& path, bool force) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (!fs::is_directory(path, ec)) throw Error(fmt::format("--out {}: exists and is not a directory", path));
    if (!force && !fs::is_empty(path, ec))
      throw Error(
          fmt::format("--out {}: a run already exists there; pass --force to overwrite it, or choose "
                      "another --out",
                      path));
    if (const auto why = cannot_write_in(path); !why.empty())
      throw Error(fmt::format("--out {}: directory is not writable: {}", path, why));
    return;
  }
  fs::path parent = fs::absolute(path, ec).parent_path();
  while (!fs::exists(parent, ec) && parent != parent.root_path()) parent = parent.parent_path();
  if (!fs::is_directory(parent, ec))
    throw Error(fmt::format("--out {}: cannot create it: {} is not a directory", path, parent.string()));
  if (const auto why = cannot_write_in(parent); !why.empty())
    throw Error(fmt::format("--out {}: cannot create it inside {}: {}", path, parent.string(), why));
}

void prepare_run_dir(const std::string& path, bool force) {
  check_run_dir(path, force);
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error(fmt::format("--out {}: cannot create the directory: {}", path, ec.message()));
}

namespace {

// Every file name cudaembed writes into a run directory. A new output gets its line here, or a
// --force run over an older run keeps that file beside its own outputs.
constexpr const char* kRunOutputNames[] = {
    "embedding.npy",  "snapshots.npy", "pair_ids.npy", "pair_labels.npy", "metadata.tsv",
    "metrics.csv",    "run.json",      "vocab.tsv",    "vectors.tsv",     "word2vec.txt",
    "checkpoint.bin", "plot.png",      "plot.svg",     "animation.mp4",   "animation.gif",
    "validation_pairs.csv",      // the held-out pairs of `train --validation`
    "checkpoint.prev.bin",       // K > 1: rank 0's committed shard while it writes the next
    "checkpoint.manifest.json",  // K > 1: the step every rank's shard is committed at
};

// Names the writers use on the way: "<name>.tmp" (every atomic write, the partial snapshots of an
// interrupted run), and ffmpeg's own temporary file and log beside animation.mp4.
std::vector<std::string> run_file_names() {
  std::vector<std::string> names;
  for (const char* name : kRunOutputNames) names.insert(names.end(), {name, std::string(name) + ".tmp"});
  names.insert(names.end(), {"animation.mp4.tmp.mp4", "animation.mp4.ffmpeg.log"});
  return names;
}

}  // namespace

bool is_rank_checkpoint_name(const std::string& name) {
  static const std::regex pattern(R"(checkpoint\.rank[1-9][0-9]*(\.prev)?\.bin(\.tmp)?)");
  return std::regex_match(name, pattern);
}

bool is_run_file_name(const std::string& name) {
  const auto names = run_file_names();
  return std::find(names.begin(), names.end(), name) != names.end() || is_rank_checkpoint_name(name);
}

std::size_t remove_run_outputs(const std::string& dir) {
  std::size_t removed = 0;
  std::vector<std::string> names = run_file_names();
  std::error_code listing;
  for (const auto& entry : fs::directory_iterator(dir, listing))  // the other ranks' checkpoints
    if (is_rank_checkpoint_name(entry.path().filename().string())) names.push_back(entry.path().filename().string());
  for (const std::string& name : names) {
    const fs::path file = fs::path(dir) / name;
    std::error_code ec;
    const auto status = fs::symlink_status(file, ec);
    if (ec || !(fs::is_regular_file(status) || fs::is_symlink(status))) continue;  // absent, or not ours
    if (!fs::remove(file, ec) || ec)
      throw Error(fmt::format("--force: cannot remove {} of the previous run: {}", file.string(), ec.message()));
    ++removed;
  }
  return removed;
}

std::string default_run_dir(const std::string& prefix) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("runs/{}{}", prefix, stamp);
}

}  // namespace cudaembed
