// The CEPAIRS1 binary pairs format (docs/pairs-format.md): its reader, which checks the header, the
// checksum and every record, and its writer, which convert-pairs and write_pairs_binary use.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "data/pairs_shared.hpp"
#include "data/vocabulary.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace pairs_detail {
namespace {

void fsync_directory_of(const std::string& path) {
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error(fmt::format("{}: cannot open to sync: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(fmt::format("{}: fsync failed: {}", dir, std::strerror(errno)));
}

// Reads the next `n` bytes, all of them.
void read_exactly(InputFile& file, char* out, std::size_t n) {
  if (file.read(out, n) != n) throw Error(fmt::format("{}: truncated while reading (the file shrank?)", file.path()));
}

template <class T>
T load(const char* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

}  // namespace

BinaryPairsWriter::BinaryPairsWriter(const std::string& path)
    : path_(path), temp_(path + ".tmp"), buffer_(std::make_unique<char[]>(kBufferBytes)) {
  file_ = std::fopen(temp_.c_str(), "wb");
  if (!file_) throw Error(fmt::format("{}: cannot open for writing: {}", temp_, std::strerror(errno)));
  const char zeros[kHeaderBytes] = {};
  write(zeros, sizeof zeros);
}

BinaryPairsWriter::~BinaryPairsWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(temp_.c_str());
}

void BinaryPairsWriter::finish(uint64_t rows, uint32_t flags) {
  flush();
  char header[kHeaderBytes] = {};
  const uint64_t names_offset = flags & kFlagNames ? kHeaderBytes + count_ * kRecordBytes : 0;
  std::memcpy(header, kMagic, sizeof kMagic);
  std::memcpy(header + 8, &kVersion, 4);
  std::memcpy(header + 12, &flags, 4);
  std::memcpy(header + 16, &count_, 8);
  std::memcpy(header + 24, &rows, 8);
  std::memcpy(header + 32, &names_offset, 8);
  std::memcpy(header + 40, &names_bytes_, 8);
  std::memcpy(header + 48, &hash_, 8);
  if (std::fseek(file_, 0, SEEK_SET) != 0)
    throw Error(fmt::format("{}: cannot seek to the header: {}", temp_, std::strerror(errno)));
  write(header, sizeof header);
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw Error(fmt::format("{}: write failed: {}", temp_, std::strerror(errno)));
  const int closed = std::fclose(std::exchange(file_, nullptr));
  if (closed != 0) {
    std::remove(temp_.c_str());
    throw Error(fmt::format("{}: write failed: {}", temp_, std::strerror(errno)));
  }
  std::error_code ec;
  std::filesystem::rename(temp_, path_, ec);
  if (ec) {
    std::remove(temp_.c_str());
    throw Error(fmt::format("{}: cannot rename into place: {}", path_, ec.message()));
  }
  fsync_directory_of(path_);  // the rename is durable only once the directory is synced
}

void BinaryPairsWriter::flush() {
  hash_ = fnv1a(hash_, buffer_.get(), used_);
  write(buffer_.get(), used_);
  used_ = 0;
}

void BinaryPairsWriter::write(const char* data, std::size_t n) {
  if (n && std::fwrite(data, 1, n, file_) != n)
    throw Error(fmt::format("{}: write failed: {}", temp_, std::strerror(errno)));
}

uint32_t flags_of(bool labelled, bool weighted, bool named) {
  return (labelled ? kFlagLabelled : 0) | (weighted ? kFlagWeighted : 0) | (named ? kFlagNames : 0);
}

namespace {

// The fields of a CEPAIRS1 header (docs/pairs-format.md), as read, before any check.
struct BinaryHeader {
  uint32_t version, flags;
  uint64_t count, rows, names_offset, names_bytes, checksum, reserved;
  bool named() const { return flags & kFlagNames; }
};

BinaryHeader load_header(const InputFile& file, std::string_view start) {
  const std::string& path = file.path();
  if (!file.regular()) throw Error(fmt::format("{}: a CEPAIRS1 pairs file must be a regular file", path));
  if (start.size() < kHeaderBytes)
    throw Error(
        fmt::format("{}: truncated: {} bytes, less than the {}-byte CEPAIRS1 header", path, file.size(), kHeaderBytes));
  const char* h = start.data();
  return {load<uint32_t>(h + 8),  load<uint32_t>(h + 12), load<uint64_t>(h + 16), load<uint64_t>(h + 24),
          load<uint64_t>(h + 32), load<uint64_t>(h + 40), load<uint64_t>(h + 48), load<uint64_t>(h + 56)};
}

// The header's own fields, the options against what the file holds, and the sizes against the
// file's length.
void check_header(const BinaryHeader& h, const InputFile& file, const PairsFileOptions& options) {
  const std::string& path = file.path();
  if (h.version != kVersion)
    throw Error(fmt::format("{}: CEPAIRS1 version {}; this build reads version {}", path, h.version, kVersion));
  if (h.flags & ~(kFlagLabelled | kFlagWeighted | kFlagNames))
    throw Error(fmt::format("{}: unknown flags 0x{:X} in the header: damaged, or a newer format", path, h.flags));
  if ((h.flags & kFlagWeighted) && !(h.flags & kFlagLabelled))  // as in a CSV: a weight column needs a label column
    throw Error(fmt::format("{}: the header's flags 0x{:X} say weights without labels; a weight needs a label: "
                            "damaged, or written by another tool",
                            path, h.flags));
  if (h.reserved != 0)
    throw Error(
        fmt::format("{}: the reserved header field is {}, not 0: damaged, or a newer format", path, h.reserved));
  if (h.count == 0) throw Error(fmt::format("{}: no pairs: the header says 0", path));
  if (h.rows > kNoId)
    throw Error(fmt::format("{}: the header says {} rows, over the limit of {}", path, h.rows, kNoId));
  const bool named = h.named();
  check_options(options);
  if (options.ids != IdKind::automatic && options.ids != (named ? IdKind::names : IdKind::ints))
    throw Error(fmt::format("{}: holds {}, but --id-kind {} was given", path, named ? "names" : "integer ids",
                            to_string(options.ids)));
  if (named && options.rows != 0)
    throw Error(fmt::format("{}: --rows {} applies to integer ids only, and the file holds names", path, options.rows));

  // 128 bits: a damaged header's count times 16 must not wrap around to the file's size.
  const unsigned __int128 expected =
      kHeaderBytes + static_cast<unsigned __int128>(h.count) * kRecordBytes + h.names_bytes;
  const uint64_t size = file.size();
  if (expected != size)
    throw Error(fmt::format("{}: {}: header says {} pairs{} ({} bytes) but the file has {} bytes", path,
                            expected > size ? "truncated" : "trailing bytes", h.count,
                            named ? fmt::format(" and {} bytes of names", h.names_bytes) : "", expected, size));
  if (named ? h.names_offset != kHeaderBytes + h.count * kRecordBytes : h.names_offset != 0 || h.names_bytes != 0)
    throw Error(fmt::format("{}: a names section at offset {} ({} bytes) does not fit the header's flags and {} pairs",
                            path, h.names_offset, h.names_bytes, h.count));
}

// Reads the records into `p` and returns the names section, both checked against the header's
// checksum. Records come in pieces through a buffer, hashed as they arrive; their values are
// checked only after this, so that damage reads as damage and not as a bad label.
std::string read_records_and_names(InputFile& file, std::string_view start, const BinaryHeader& h, PairSet& p) {
  const uint64_t count = h.count;
  p.a.resize(count);
  p.b.resize(count);
  p.label.resize(count);
  p.weight.resize(count);
  constexpr std::size_t kPiece = 1u << 16;  // records
  std::vector<char> buffer(kPiece * kRecordBytes);
  uint64_t hash = kFnvOffset;
  std::size_t have = start.size() - kHeaderBytes;  // bytes of records already read with the header
  for (uint64_t first = 0; first < count; first += kPiece) {
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kPiece, count - first));
    const std::size_t from_start = std::min(have, n * kRecordBytes);
    std::memcpy(buffer.data(), start.data() + start.size() - have, from_start);
    have -= from_start;
    read_exactly(file, buffer.data() + from_start, n * kRecordBytes - from_start);
    hash = fnv1a(hash, buffer.data(), n * kRecordBytes);
    for (std::size_t i = 0; i < n; ++i) {
      const char* r = buffer.data() + i * kRecordBytes;
      p.a[first + i] = load<uint32_t>(r);
      p.b[first + i] = load<uint32_t>(r + 4);
      p.label[first + i] = load<float>(r + 8);
      p.weight[first + i] = load<float>(r + 12);
    }
  }
  std::string names(h.names_bytes, '\0');
  const std::size_t from_start = std::min<std::size_t>(have, names.size());
  std::memcpy(names.data(), start.data() + start.size() - have, from_start);
  read_exactly(file, names.data() + from_start, names.size() - from_start);
  hash = fnv1a(hash, names.data(), names.size());
  if (hash != h.checksum)
    throw Error(fmt::format("{}: checksum mismatch (header 0x{:016X}, contents 0x{:016X}): the file is damaged",
                            file.path(), h.checksum, hash));
  return names;
}

// The names section: exactly `rows` names, each a uint32 length and its bytes, none twice.
std::vector<std::string> parse_names_section(const std::string& names, uint64_t rows, const std::string& path) {
  std::vector<std::string> out;
  NameIndex seen;
  std::size_t at = 0;
  for (uint64_t id = 0; id < rows; ++id) {
    if (names.size() - at < 4 || names.size() - at - 4 < load<uint32_t>(names.data() + at))
      throw Error(fmt::format("{}: the names section ends inside the name of id {} (of {})", path, id, rows));
    const std::string_view name(names.data() + at + 4, load<uint32_t>(names.data() + at));
    at += 4 + name.size();
    bool added = false;
    if (const uint32_t first = seen.find_or_add(name, NameIndex::hash(name), added); !added)
      throw Error(fmt::format("{}: the name '{}' belongs to ids {} and {}", path, snippet(name), first, id));
    out.emplace_back(name);
  }
  if (at != names.size())
    throw Error(fmt::format("{}: {} bytes after the last of the {} names", path, names.size() - at, rows));
  return out;
}

// Every pair's values against the header's flags and --rows; drops the weights of a file without
// a weight column (all 1).
void check_records(PairsData& data, uint32_t flags, const PairsFileOptions& options, const std::string& path) {
  PairSet& p = data.pairs;
  if (!(flags & kFlagWeighted)) {
    if (std::any_of(p.weight.begin(), p.weight.end(), [](float w) { return w != 1.0f; }))
      throw Error(fmt::format("{}: a weight other than 1, but the header says the file has no weight column", path));
    std::vector<float>().swap(p.weight);
  }
  check_pairs(data, path);
  if (options.rows != 0) {
    for (std::size_t i = 0; i < p.size(); ++i)
      if (std::max(p.a[i], p.b[i]) >= options.rows)
        throw Error(
            fmt::format("{}: pair {}: id {} is not below --rows {}", path, i, std::max(p.a[i], p.b[i]), options.rows));
    data.rows = options.rows;
  }
}

}  // namespace

PairsData read_binary(InputFile& file, std::string_view start, const PairsFileOptions& options) {
  const BinaryHeader header = load_header(file, start);
  check_header(header, file, options);
  PairsData data;
  data.rows = header.rows;
  data.labelled = header.flags & kFlagLabelled;
  data.ids = header.named() ? IdKind::names : IdKind::ints;
  const std::string names = read_records_and_names(file, start, header, data.pairs);
  if (header.named()) data.names = parse_names_section(names, header.rows, file.path());
  check_records(data, header.flags, options, file.path());
  return data;
}

}  // namespace pairs_detail

void write_pairs_binary(const std::string& path, const PairsData& data) {
  using namespace pairs_detail;
  check_pairs(data, path);
  const PairSet& p = data.pairs;
  BinaryPairsWriter out(path);
  for (std::size_t i = 0; i < p.size(); ++i) out.add(p.a[i], p.b[i], p.label[i], p.weight.empty() ? 1.0f : p.weight[i]);
  for (const auto& name : data.names) out.add_name(name);
  out.finish(data.rows, flags_of(data.labelled, !p.weight.empty(), data.ids == IdKind::names));
}

}  // namespace cudaembed
