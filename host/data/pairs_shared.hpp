// What the pairs CSV reader (pairs_csv.cpp) and the CEPAIRS1 format (pairs_binary.cpp) share: the
// input file, the binary format's constants and writer, and the checks on options and pairs.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "cudaembed/pairs_file.hpp"

namespace cudaembed::pairs_detail {

static_assert(std::endian::native == std::endian::little, "CEPAIRS1 records are written as they lie in memory");

constexpr char kMagic[8] = {'C', 'E', 'P', 'A', 'I', 'R', 'S', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 64;
constexpr uint64_t kRecordBytes = 16;
constexpr uint32_t kFlagLabelled = 1, kFlagWeighted = 2, kFlagNames = 4;
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;

inline uint64_t fnv1a(uint64_t h, const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ull;
  return h;
}

inline bool valid_label(float label) { return label >= 0.0f && label <= 1.0f; }  // false for NaN
inline bool valid_weight(float weight) { return std::isfinite(weight) && weight >= 0.0f; }

// The file read with read(2): regular files, and pipes too for the CSV (convert-pairs <(zcat ...)).
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Reads `n` bytes, fewer only at the end of the file.
  std::size_t read(char* out, std::size_t n);
  const std::string& path() const { return path_; }
  bool regular() const { return regular_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  int fd_;
  bool regular_ = false;
  uint64_t size_ = 0;
};

// An Error for --rows with names, or --rows over the limit.
void check_options(const PairsFileOptions& options);
// Every id below rows, every label and weight valid, the names matching rows. `source` names the file.
void check_pairs(const PairsData& data, const std::string& source);

// The header flags of a CEPAIRS1 file.
uint32_t flags_of(bool labelled, bool weighted, bool named);
// True when `start`, a file's first bytes, is the CEPAIRS1 magic.
inline bool is_binary(std::string_view start) { return start.starts_with(std::string_view(kMagic, sizeof kMagic)); }
// Reads a CEPAIRS1 file whose first bytes, `start` (at least the header where the file has one),
// were read already; the rest comes from `file`.
PairsData read_binary(InputFile& file, std::string_view start, const PairsFileOptions& options);

// Writes a CEPAIRS1 file to "<path>.tmp": zeros for the header, the records as they come, the names,
// then the header over the zeros. finish() syncs it and renames it into place; destroyed unfinished,
// the writer removes the temporary file.
class BinaryPairsWriter {
 public:
  explicit BinaryPairsWriter(const std::string& path);
  ~BinaryPairsWriter();
  BinaryPairsWriter(const BinaryPairsWriter&) = delete;
  BinaryPairsWriter& operator=(const BinaryPairsWriter&) = delete;

  void add(uint32_t a, uint32_t b, float label, float weight) {
    char record[kRecordBytes];
    std::memcpy(record, &a, 4);
    std::memcpy(record + 4, &b, 4);
    std::memcpy(record + 8, &label, 4);
    std::memcpy(record + 12, &weight, 4);
    put(record, sizeof record);
    ++count_;
  }

  // After the last record: the names of ids 0, 1, ... in order.
  void add_name(std::string_view name) {
    const auto length = static_cast<uint32_t>(name.size());
    put(&length, sizeof length);
    put(name.data(), name.size());
    names_bytes_ += sizeof length + name.size();
  }

  uint64_t count() const { return count_; }

  void finish(uint64_t rows, uint32_t flags);

 private:
  static constexpr std::size_t kBufferBytes = 1u << 20;

  void put(const void* data, std::size_t n) {
    const char* bytes = static_cast<const char*>(data);
    while (n > 0) {
      if (used_ == kBufferBytes) flush();
      const std::size_t piece = std::min(n, kBufferBytes - used_);
      std::memcpy(buffer_.get() + used_, bytes, piece);
      used_ += piece;
      bytes += piece;
      n -= piece;
    }
  }
  void flush();
  void write(const char* data, std::size_t n);

  std::string path_, temp_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
  uint64_t count_ = 0, names_bytes_ = 0, hash_ = kFnvOffset;
};

}  // namespace cudaembed::pairs_detail
