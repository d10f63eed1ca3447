// Checkpoint files: written atomically and durably, read back with every field checked.
#include "cudaembed/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

constexpr char kMagic[8] = {'C', 'E', 'M', 'B', 'C', 'K', 'P', 'T'};

uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

void put_floats(std::string& out, const float* data, std::size_t count) {
  if (count == 0) return;  // an absent optimizer array: data() may be null
  out.append(reinterpret_cast<const char*>(data), count * sizeof(float));
}

// Reads fixed-size pieces of a checkpoint, naming the file when it runs out.
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  template <class T>
  T get(const char* what) {
    T value;
    std::memcpy(&value, take(sizeof value, what).data(), sizeof value);
    return value;
  }
  void get_floats(float* data, std::size_t count, const char* what) {
    if (count == 0) return;
    std::memcpy(data, take(count * sizeof(float), what).data(), count * sizeof(float));
  }
  std::string_view take(std::size_t n, const char* what) {
    if (bytes_.size() - pos_ < n) throw Error(fmt::format("{}: truncated checkpoint (ends inside {})", path_, what));
    const auto piece = bytes_.substr(pos_, n);
    pos_ += n;
    return piece;
  }
  std::size_t pos() const { return pos_; }

 private:
  std::string_view bytes_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw Error(fmt::format("{}: cannot open to sync: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(fmt::format("{}: fsync failed: {}", path, std::strerror(errno)));
}

// A temporary file, fsync, rename over `path`, fsync of the directory: `path` holds the old bytes
// or the new ones, whenever the process dies.
void write_durably(const std::string& path, const std::string& bytes) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(fmt::format("{}: cannot write the checkpoint: {}", temp, std::strerror(errno)));
  }
  fsync_path(temp, O_RDONLY);
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) throw Error(fmt::format("{}: cannot rename the checkpoint into place: {}", path, ec.message()));
  // The rename itself is durable only once the directory is synced.
  fsync_path(std::filesystem::absolute(path).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

// The header's fields other than the arrays' lengths.
void read_header_fields(const nlohmann::json& header, Checkpoint& c) {
  c.config_json = header.at("config").dump();
  c.epoch = header.at("epoch").get<int64_t>();
  c.state.step = header.at("step").get<int64_t>();
  c.state.rows = header.at("rows").get<int64_t>();
  c.state.dims = header.at("dims").get<int>();
  for (const auto& h : header.at("history")) {
    EpochRecord record;
    record.epoch = h.at(0).get<int64_t>();
    record.metrics = {h.at(1).get<double>(), h.at(2).get<double>(), h.at(3).get<double>(), h.at(4).get<int64_t>()};
    record.seconds = h.at(5).get<double>();
    c.history.push_back(record);
  }
  const auto& p = header.at("in_progress");
  c.in_progress = {p.at(0).get<double>(), p.at(1).get<double>(), p.at(2).get<double>(), p.at(3).get<int64_t>()};
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& c) {
  const ModelState& s = c.state;
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : c.history)
    history.push_back(
        {r.epoch, r.metrics.loss_sum, r.metrics.squared_error_sum, r.metrics.correct, r.metrics.samples, r.seconds});
  const std::string header = nlohmann::json{
      {"config", nlohmann::json::parse(c.config_json)},
      {"epoch", c.epoch},
      {"step", s.step},
      {"rows", s.rows},
      {"dims", s.dims},
      {"optimizer_arrays",
       {{"table_m", s.table_m.size()},
        {"table_v", s.table_v.size()},
        {"row_acc", s.row_acc.size()},
        {"row_step", s.row_step.size()}}},
      {"history", history},
      {"in_progress",
       {c.in_progress.loss_sum, c.in_progress.squared_error_sum, c.in_progress.correct,
        c.in_progress.samples}}}.dump();
  std::string bytes(kMagic, sizeof kMagic);
  put(bytes, kCheckpointVersion);
  put(bytes, static_cast<uint64_t>(header.size()));
  bytes += header;
  put_floats(bytes, s.table.data(), s.table.size());
  put_floats(bytes, s.table_m.data(), s.table_m.size());
  put_floats(bytes, s.table_v.data(), s.table_v.size());
  put_floats(bytes, s.row_acc.data(), s.row_acc.size());
  put_floats(bytes, s.dense, 2);
  put_floats(bytes, s.dense_m, 2);
  put_floats(bytes, s.dense_v, 2);
  if (!s.row_step.empty())
    bytes.append(reinterpret_cast<const char*>(s.row_step.data()), s.row_step.size() * sizeof(int64_t));
  put(bytes, fnv1a(bytes));

  write_durably(path, bytes);
}

Checkpoint read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(fmt::format("{}: no checkpoint to resume from (was the run started with --checkpoint-every?)", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() < sizeof kMagic + sizeof(uint64_t) || bytes.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0)
    throw Error(fmt::format("{}: not a cudaembed checkpoint", path));
  const std::string_view body(bytes.data(), bytes.size() - sizeof(uint64_t));
  uint64_t stored_hash;
  std::memcpy(&stored_hash, bytes.data() + body.size(), sizeof stored_hash);
  if (fnv1a(body) != stored_hash) throw Error(fmt::format("{}: checkpoint is corrupt (checksum mismatch)", path));

  Reader r(body, path);
  r.take(sizeof kMagic, "the magic");
  const auto version = r.get<uint32_t>("the version");
  if (version != 1 && version != kCheckpointVersion)
    throw Error(fmt::format("{}: checkpoint format version {}, this build reads versions 1 to {}", path, version,
                            kCheckpointVersion));
  const auto header_size = r.get<uint64_t>("the header length");
  Checkpoint c;
  std::size_t m_size = 0, v_size = 0, acc_size = 0, step_size = 0;
  try {
    const auto header = nlohmann::json::parse(r.take(header_size, "the header"));
    read_header_fields(header, c);
    m_size = v_size = static_cast<std::size_t>(c.state.rows) * static_cast<std::size_t>(c.state.dims);
    if (version >= 2) {
      const auto& arrays = header.at("optimizer_arrays");
      m_size = arrays.at("table_m").get<std::size_t>();
      v_size = arrays.at("table_v").get<std::size_t>();
      acc_size = arrays.at("row_acc").get<std::size_t>();
      step_size = arrays.at("row_step").get<std::size_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: bad checkpoint header: {}", path, e.what()));
  }
  const auto n = static_cast<std::size_t>(c.state.rows) * static_cast<std::size_t>(c.state.dims);
  const std::size_t expected = (n + m_size + v_size + acc_size + 6) * sizeof(float) + step_size * sizeof(int64_t);
  if (body.size() - r.pos() != expected)
    throw Error(
        fmt::format("{}: checkpoint holds {} bytes of parameters and optimizer state, its {} x {} table needs {}", path,
                    body.size() - r.pos(), c.state.rows, c.state.dims, expected));
  c.state.table.resize(n);
  c.state.table_m.resize(m_size);
  c.state.table_v.resize(v_size);
  c.state.row_acc.resize(acc_size);
  c.state.row_step.resize(step_size);
  r.get_floats(c.state.table.data(), n, "the table");
  r.get_floats(c.state.table_m.data(), m_size, "Adam's m");
  r.get_floats(c.state.table_v.data(), v_size, "Adam's v");
  r.get_floats(c.state.row_acc.data(), acc_size, "Adagrad's accumulators");
  r.get_floats(c.state.dense, 2, "the Dense weights");
  r.get_floats(c.state.dense_m, 2, "the Dense m");
  r.get_floats(c.state.dense_v, 2, "the Dense v");
  if (step_size > 0)
    std::memcpy(c.state.row_step.data(), r.take(step_size * sizeof(int64_t), "the row step counts").data(),
                step_size * sizeof(int64_t));
  return c;
}

std::optional<Checkpoint> read_checkpoint_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char start[sizeof kMagic + sizeof(uint32_t) + sizeof(uint64_t)];
  if (!in.read(start, sizeof start) || std::memcmp(start, kMagic, sizeof kMagic) != 0) return std::nullopt;
  uint64_t header_size = 0;
  std::memcpy(&header_size, start + sizeof kMagic + sizeof(uint32_t), sizeof header_size);
  if (header_size > (uint64_t{1} << 30)) return std::nullopt;
  std::string header(header_size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_size))) return std::nullopt;
  Checkpoint c;
  try {
    read_header_fields(nlohmann::json::parse(header), c);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return c;
}

namespace {

// RUN/checkpoint[.rank<r>]<kind>.bin: rank 0 keeps the name a run of one process has.
std::string shard_file(const std::string& run_dir, int rank, const char* kind) {
  const std::string name = rank == 0 ? fmt::format("checkpoint{}.bin", kind)
                                     : fmt::format("checkpoint.rank{}{}.bin", rank, kind);
  return (std::filesystem::path(run_dir) / name).string();
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int rank) { return shard_file(run_dir, rank, ""); }

std::string previous_checkpoint_path(const std::string& run_dir, int rank) {
  return shard_file(run_dir, rank, ".prev");
}

std::string shard_manifest_path(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / "checkpoint.manifest.json").string();
}

void keep_previous_checkpoint(const std::string& run_dir, int rank, int64_t committed_step) {
  const std::string current = checkpoint_path(run_dir, rank), previous = previous_checkpoint_path(run_dir, rank);
  const std::optional<Checkpoint> header = read_checkpoint_header(current);
  // A current shard past the committed step was written by a run killed before the commit: the
  // previous shard is the committed one, and stays.
  if (!header || header->state.step != committed_step) return;
  std::error_code ec;
  std::filesystem::remove(previous, ec);
  // A hard link costs nothing; the new shard then replaces `current` by rename, leaving the link.
  std::filesystem::create_hard_link(current, previous, ec);
  if (!ec) return;
  ec.clear();
  std::filesystem::copy_file(current, previous, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) throw Error(fmt::format("{}: cannot keep the committed checkpoint: {}", previous, ec.message()));
}

void write_shard_manifest(const std::string& run_dir, const ShardManifest& m) {
  nlohmann::json shards = nlohmann::json::array();
  for (int r = 0; r < m.ranks; ++r) shards.push_back(std::filesystem::path(checkpoint_path(run_dir, r)).filename());
  const nlohmann::json manifest = {{"format", "cudaembed checkpoint manifest 1"},
                                   {"ranks", m.ranks},
                                   {"parallel", m.parallel},
                                   {"rows", m.rows_rule},
                                   {"epoch", m.epoch},
                                   {"step", m.step},
                                   {"shards", shards}};
  write_durably(shard_manifest_path(run_dir), manifest.dump(2) + "\n");
}

std::optional<ShardManifest> read_shard_manifest(const std::string& run_dir) {
  const std::string path = shard_manifest_path(run_dir);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    return ShardManifest{j.at("ranks").get<int>(), j.at("parallel").get<std::string>(),
                         j.at("rows").get<std::string>(), j.at("epoch").get<int64_t>(), j.at("step").get<int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: unreadable checkpoint manifest: {}", path, e.what()));
  }
}

Checkpoint read_committed_checkpoint(const std::string& run_dir, int rank) {
  const std::optional<ShardManifest> manifest = read_shard_manifest(run_dir);
  const std::string current = checkpoint_path(run_dir, rank);
  if (!manifest) {
    const std::optional<Checkpoint> header = read_checkpoint_header(current);
    const int ranks = header ? nlohmann::json::parse(header->config_json).value("ranks", 1) : 1;
    if (ranks > 1)
      throw Error(fmt::format("{}: the run on {} ranks was stopped before every rank had written its first "
                              "checkpoint, so there is none to resume; start it again with --force",
                              current, ranks));
    return read_checkpoint(current);
  }
  for (const std::string& path : {current, previous_checkpoint_path(run_dir, rank)}) {
    const std::optional<Checkpoint> header = read_checkpoint_header(path);
    if (header && header->state.step == manifest->step) return read_checkpoint(path);
  }
  throw Error(fmt::format("{}: rank {} has no checkpoint at step {}, which {} commits (were files removed?)",
                          run_dir, rank, manifest->step, shard_manifest_path(run_dir)));
}

}  // namespace cudaembed
