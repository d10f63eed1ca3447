// libFuzzer target for the pairs reader (host/data/pairs_csv.cpp, the chunked CSV parser,
// and host/data/pairs_binary.cpp, CEPAIRS1).
// Built and run by tests/fuzz/run_fuzz.sh with ASan and UBSan. A finding is: a crash or sanitizer
// report, an exception other than cudaembed::Error escaping, a hang (-timeout), or a broken invariant
// below (reported through abort() with the reason on stderr).
//
// Input: two control bytes, then the file's bytes (tests/fuzz/pairs_seeds/README.md).
//   byte 0: the CSV chunk size, 1 + byte % 64, so that chunk boundaries land everywhere
//   byte 1: bits 0-1 the id kind (0, 3 auto, 1 names, 2 ints); bits 2-3 --rows (0, 0, 3, 1000);
//           bit 4: rewrite a CEPAIRS1 header's checksum to match, so that mutations reach the
//           checks behind it (records, names) instead of stopping at the checksum;
//           bit 5: read a CSV with read_pairs_file too (CEPAIRS1 always is). Its 8 MiB buffer costs
//           ~8 ms a run under ASan (fresh pages), so only some inputs pay for it.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cudaembed/error.hpp"
#include "cudaembed/pairs_file.hpp"
#include "text/input_text.hpp"

namespace {

using cudaembed::IdKind;
using cudaembed::PairsData;
using cudaembed::PairsFileOptions;

constexpr std::string_view kMagic = "CEPAIRS1";
constexpr std::size_t kHeaderBytes = 64;
constexpr uint64_t kMaxRows = 0xFFFFFFFFull;  // ids are below 2^32 - 1
// Larger than any input (run_fuzz.sh passes -max_len=4096): the file is read in one go, as the
// default 8 MiB chunk reads any file up to 8 MiB. (1 MiB would cost ~1 ms a run in page faults.)
constexpr std::size_t kLargeChunk = 64u << 10;

// `index`: the pair or name at fault, or for check_same which difference.
[[noreturn]] void broken(const char* what, std::size_t index = 0) {
  std::fprintf(stderr, "fuzz_pairs_file: invariant broken: %s (index %zu)\n", what, index);
  std::abort();
}

// The input lives in one anonymous in-memory file, rewritten for every run; the reader opens it by
// the path /proc/self/fd/N (a fresh open starts at offset 0).
class InputFile {
 public:
  InputFile() : fd_(::memfd_create("fuzz_pairs", MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("fuzz_pairs_file: memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void write(std::string_view bytes) const {
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      std::perror("fuzz_pairs_file: writing the input");
      std::abort();
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// FNV-1a 64 over the bytes after the header, written into the header (docs/pairs-format.md).
void fix_checksum(std::string& file) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = kHeaderBytes; i < file.size(); ++i)
    h = (h ^ static_cast<unsigned char>(file[i])) * 0x100000001b3ull;
  std::memcpy(file.data() + 48, &h, sizeof h);
}

// What one read gave: the data, or the error's message.
struct Outcome {
  std::optional<PairsData> data;
  std::string error;
};

template <class Read>
Outcome attempt(Read&& read) {
  Outcome out;
  try {
    out.data = read();
  } catch (const cudaembed::Error& e) {
    out.error = e.what();
  }
  // Anything else thrown escapes to libFuzzer as a crash (std::terminate).
  return out;
}

// One line, naming the file (or the option at fault), with no NUL to cut it short.
void check_error(const std::string& msg, const std::string& path) {
  if (msg.empty()) broken("empty error message");
  if (msg.find('\0') != std::string::npos) broken("NUL byte in an error message", msg.find('\0'));
  if (msg.find_first_of("\r\n") != std::string::npos)
    broken("line break in an error message", msg.find_first_of("\r\n"));
  if (!msg.starts_with(path + ":") && !msg.starts_with("--rows "))
    broken("error message names neither the file nor --rows");
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
}

bool same(const PairsData& x, const PairsData& y) {
  return x.pairs.a == y.pairs.a && x.pairs.b == y.pairs.b && same_bits(x.pairs.label, y.pairs.label) &&
         same_bits(x.pairs.weight, y.pairs.weight) && x.names == y.names && x.rows == y.rows &&
         x.labelled == y.labelled && x.ids == y.ids;
}

// The check for NUL bytes that tells a CSV from binary data looks at the bytes buffered first, so
// its error may stand in for a later one that a smaller chunk reaches first.
bool nul_sniffed(const Outcome& o) {
  return !o.data && o.error.find(": holds a NUL byte at offset ") != std::string::npos;
}

void check_same(const Outcome& x, const Outcome& y, const char* what) {
  if (x.data.has_value() != y.data.has_value()) broken(what, 0);  // one read fails, the other does not
  if (x.data && !same(*x.data, *y.data)) broken(what, 1);         // both succeed, with different data
  if (!x.data && x.error != y.error && !nul_sniffed(x) && !nul_sniffed(y)) broken(what, 2);  // different errors
}

void check_data(const PairsData& d, const PairsFileOptions& options, bool csv) {
  const auto& p = d.pairs;
  const std::size_t n = p.size();
  if (n == 0) broken("no pairs returned instead of an error");
  if (p.b.size() != n || p.label.size() != n) broken("a, b and label differ in length");
  if (!p.weight.empty() && p.weight.size() != n) broken("weight is neither empty nor one per pair");
  if (d.ids != IdKind::names && d.ids != IdKind::ints) broken("the id kind is neither names nor ints");
  if (options.ids != IdKind::automatic && d.ids != options.ids) broken("the id kind differs from the one asked for");
  if (d.rows == 0 || d.rows > kMaxRows) broken("rows outside [1, 2^32 - 1]");
  if (options.rows != 0 && d.rows != options.rows) broken("rows differs from --rows");
  if (!d.labelled && !p.weight.empty()) broken("a weight column without a label column");
  for (std::size_t i = 0; i < n; ++i) {
    if (p.a[i] >= d.rows || p.b[i] >= d.rows) broken("an id not below rows", i);
    if (!(p.label[i] >= 0.0f && p.label[i] <= 1.0f)) broken("label outside [0, 1]", i);
    if (!d.labelled && p.label[i] != 1.0f) broken("label other than 1 without a label column", i);
    if (!p.weight.empty() && !(std::isfinite(p.weight[i]) && p.weight[i] >= 0.0f)) broken("weight not finite >= 0", i);
  }
  if (d.ids == IdKind::ints) {
    if (!d.names.empty()) broken("names returned for integer ids");
    if (csv && options.rows == 0) {
      uint32_t largest = 0;
      for (std::size_t i = 0; i < n; ++i) largest = std::max({largest, p.a[i], p.b[i]});
      if (d.rows != uint64_t{largest} + 1) broken("rows is not the largest id + 1");
    }
    return;
  }
  if (d.names.size() != d.rows) broken("names.size() != rows");
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < d.names.size(); ++i) {
    const std::string& name = d.names[i];
    if (name.empty()) broken("empty name", i);
    if (!seen.insert(name).second) broken("duplicate name", i);
    if (name.find('\0') != std::string::npos) broken("NUL byte in a name", i);
    if (cudaembed::invalid_utf8_at(name) != std::string_view::npos) broken("invalid UTF-8 in a name", i);
  }
  if (csv) {
    // Ids in order of first appearance, a before b on each line, and every name used.
    uint64_t next_new = 0;
    for (std::size_t i = 0; i < 2 * n; ++i) {
      const uint32_t id = i % 2 ? p.b[i / 2] : p.a[i / 2];
      if (id > next_new) broken("a name's id is not in order of first appearance", i / 2);
      if (id == next_new) ++next_new;
    }
    if (next_new != d.rows) broken("a name that no pair uses");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const InputFile input;
  if (size < 2) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  PairsFileOptions options;
  constexpr IdKind kKinds[4] = {IdKind::automatic, IdKind::names, IdKind::ints, IdKind::automatic};
  constexpr uint64_t kRows[4] = {0, 0, 3, 1000};
  options.ids = kKinds[data[1] & 3];
  options.rows = kRows[(data[1] >> 2) & 3];
  std::string file(reinterpret_cast<const char*>(data) + 2, size - 2);
  const bool binary = file.starts_with(kMagic);
  if (binary && (data[1] & 0x10) && file.size() >= kHeaderBytes) fix_checksum(file);
  input.write(file);
  const std::string& path = input.path();

  std::optional<Outcome> whole;
  if (binary || (data[1] & 0x20)) {
    whole = attempt([&] { return cudaembed::read_pairs_file(path, options); });
    if (whole->data)
      check_data(*whole->data, options, !binary);
    else
      check_error(whole->error, path);
  }

  const Outcome small = attempt([&] { return cudaembed::read_pairs_csv(path, options, chunk); });
  if (binary) {
    if (small.data) broken("read_pairs_csv accepted a CEPAIRS1 file");
    check_error(small.error, path);
    return 0;
  }
  if (small.data)
    check_data(*small.data, options, true);
  else
    check_error(small.error, path);
  // Chunking changes nothing: the same pairs, or the same error.
  const Outcome large = attempt([&] { return cudaembed::read_pairs_csv(path, options, kLargeChunk); });
  check_same(small, large, "a small chunk and one large chunk read the CSV differently");
  if (whole) check_same(large, *whole, "read_pairs_csv and read_pairs_file read the CSV differently");
  return 0;
}
