// Pair files: the CSV parser (streamed through a buffer a chunk at a time), the CEPAIRS1 binary
// format and the vocabulary TSV. docs/pairs-format.md describes the formats and the measured speed.
#include "cudaembed/pairs_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace {

static_assert(std::endian::native == std::endian::little, "CEPAIRS1 records are written as they lie in memory");

constexpr std::size_t kDefaultChunkBytes = 8u << 20;
// A longer line is not a pair (and would let one bad file take unbounded memory).
constexpr std::size_t kMaxRecordBytes = 1u << 20;
constexpr std::size_t kMaxColumns = 4;
constexpr std::array<std::string_view, kMaxColumns> kColumnNames = {"a", "b", "label", "weight"};
// Ids stay below this, so it marks an empty slot and a count of ids always fits in uint32.
constexpr uint32_t kNoId = 0xFFFFFFFFu;

constexpr char kMagic[8] = {'C', 'E', 'P', 'A', 'I', 'R', 'S', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 64;
constexpr uint64_t kRecordBytes = 16;
constexpr uint32_t kFlagLabelled = 1, kFlagWeighted = 2, kFlagNames = 4;
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;

uint64_t fnv1a(uint64_t h, const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ull;
  return h;
}

// A number as std::from_chars reads it, all of `s` and nothing else ("nan" and "inf" included), with
// a shortcut for "0" and "1", the usual labels and weights.
bool parse_float(std::string_view s, float& value) {
  if (s.size() == 1 && (s[0] == '0' || s[0] == '1')) {
    value = static_cast<float>(s[0] - '0');
    return true;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

bool valid_label(float label) { return label >= 0.0f && label <= 1.0f; }  // false for NaN
bool valid_weight(float weight) { return std::isfinite(weight) && weight >= 0.0f; }

// Digits only (no sign, no spaces): what IdKind::automatic takes for an integer id.
bool is_plain_integer(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The file read with read(2): regular files, and pipes too for the CSV (convert-pairs <(zcat ...)).
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || S_ISDIR(st.st_mode)) {
      const std::string why = S_ISDIR(st.st_mode) ? "is a directory, expected a pairs file" : std::strerror(errno);
      ::close(fd_);
      throw Error(fmt::format("{}: {}", path, why));
    }
    regular_ = S_ISREG(st.st_mode);
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Reads `n` bytes, fewer only at the end of the file.
  std::size_t read(char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, out + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw Error(fmt::format("{}: read failed: {}", path_, std::strerror(errno)));
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }
  const std::string& path() const { return path_; }
  bool regular() const { return regular_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  int fd_;
  bool regular_ = false;
  uint64_t size_ = 0;
};

// The records of a CSV, read into a buffer a chunk at a time; a record split by the end of the buffer
// is moved to its front and parsed again once the next chunk is in. Fields are views into the buffer
// (or, for a line with quotes, into scratch strings), valid until the next call to next().
class CsvRecords {
 public:
  // A regular file smaller than a chunk gets a buffer of its own size, not a zero-filled chunk.
  CsvRecords(InputFile& file, std::size_t chunk_bytes)
      : file_(file),
        chunk_(
            std::max<std::size_t>(file.regular() ? std::min<uint64_t>(chunk_bytes, file.size() + 1) : chunk_bytes, 1)) {
    while (end_ < sizeof kMagic && !eof_) fill();  // enough to tell the formats apart
  }

  // The bytes read but not yet parsed: at the start, the beginning of the file.
  std::string_view buffered() const { return {buf_.data() + next_, end_ - next_}; }
  void skip(std::size_t bytes) { next_ += bytes; }

  // Moves to the next record that is not a blank line; false at the end of the file.
  bool next() {
    for (;;) {
      pos_ = next_;
      line_ += lines_;
      lines_ = 0;
      if (pos_ == end_ && eof_) return false;
      if (!split()) {
        if (end_ - pos_ >= kMaxRecordBytes) fail_long();
        fill();
        continue;
      }
      if (next_ - pos_ > kMaxRecordBytes) fail_long();
      if (columns_ > 0) return true;
    }
  }

  std::size_t columns() const { return columns_; }
  std::string_view field(std::size_t i) const { return fields_[i]; }
  uint64_t line() const { return line_; }
  uint64_t bytes_read() const { return bytes_; }
  const std::string& path() const { return file_.path(); }
  [[noreturn]] void fail(const std::string& what) const { fail_at(line_, what); }
  [[noreturn]] void fail_at(uint64_t line, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", file_.path(), line, what));
  }

 private:
  [[noreturn]] void fail_long() const {
    fail(fmt::format("a line longer than {} MiB: not a pairs file, or a quoted field that is never closed",
                     kMaxRecordBytes >> 20));
  }

  // Moves the unparsed bytes to the front of the buffer and reads a chunk after them.
  void fill() {
    const std::size_t kept = end_ - pos_;
    if (pos_ > 0) std::memmove(buf_.data(), buf_.data() + pos_, kept);
    next_ -= pos_;
    pos_ = 0;
    end_ = kept;
    if (buf_.size() < end_ + chunk_) buf_.resize(end_ + chunk_);
    const std::size_t got = file_.read(buf_.data() + end_, chunk_);
    end_ += got;
    bytes_ += got;
    eof_ = got < chunk_;
  }

  // A space or a tab (one comparison for the usual printable byte).
  static bool is_blank(char c) { return static_cast<unsigned char>(c) <= ' ' && (c == ' ' || c == '\t'); }
  // An unquoted field without the spaces and tabs around it (`apple, hammer` names "hammer").
  static std::string_view trim_blanks(const char* begin, const char* end) {
    while (begin < end && is_blank(*begin)) ++begin;
    while (end > begin && is_blank(end[-1])) --end;
    return {begin, static_cast<std::size_t>(end - begin)};
  }

  // Splits the record at pos_ into fields, setting next_ and lines_; false when it runs past the
  // buffered bytes. A blank line has 0 columns.
  bool split() {
    const char* p = buf_.data() + pos_;
    const char* const end = buf_.data() + end_;
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (!nl && !eof_) return false;
    const char* line_end = nl ? nl : end;
    if (line_end > p && line_end[-1] == '\r') --line_end;
    // The fast path: one pass over the line for its commas, left at the first quote. (Lines are short:
    // a memchr call per comma costs more than it saves.)
    columns_ = 0;
    const char* field = p;
    for (const char* c = p; c < line_end; ++c) {
      if (*c == '"') return split_quoted();
      if (*c != ',') continue;
      if (columns_ < kMaxColumns) fields_[columns_] = trim_blanks(field, c);
      ++columns_;
      field = c + 1;
    }
    if (line_end > p) {
      if (columns_ < kMaxColumns) fields_[columns_] = trim_blanks(field, line_end);
      ++columns_;
    }
    next_ = nl ? nl + 1 - buf_.data() : end_;
    lines_ = 1;
    return true;
  }

  // RFC 4180: a field that starts with a quote runs to the closing quote, may hold commas and line
  // breaks, and writes a quote as "". Only spaces or tabs, then a comma or the line end, may follow
  // it. Spaces and tabs around a field are dropped, except those inside the quotes.
  bool split_quoted() {
    enum class State { start, unquoted, quoted, closed } state = State::start;
    const char* p = buf_.data() + pos_;
    const char* const end = buf_.data() + end_;
    std::size_t column = 0;
    uint64_t breaks = 0;  // line breaks inside quotes
    for (auto& s : scratch_) s.clear();
    auto append = [&](char c) {
      if (column < kMaxColumns) scratch_[column] += c;
    };
    auto end_field = [&] {
      if (state != State::unquoted || column >= kMaxColumns) return;
      std::string& s = scratch_[column];
      while (!s.empty() && is_blank(s.back())) s.pop_back();
    };
    for (;;) {
      if (p == end) {
        if (!eof_) return false;
        if (state == State::quoted) fail("unterminated quoted field (missing closing double quote)");
        end_field();
        break;
      }
      const char c = *p++;
      if (state == State::quoted) {
        if (c != '"') {
          breaks += c == '\n';
          append(c);
        } else if (p == end && !eof_) {
          return false;  // "" may continue in the next chunk
        } else if (p < end && *p == '"') {
          append('"');
          ++p;
        } else {
          state = State::closed;
        }
      } else if (c == ',') {
        end_field();
        ++column;
        state = State::start;
      } else if (c == '\n') {
        end_field();
        break;
      } else if (is_blank(c) && state != State::unquoted) {
        continue;  // before a field, or after its closing quote
      } else if (c == '\r' && (p == end || *p == '\n')) {
        if (p == end && !eof_) return false;  // the CR of a CRLF is dropped
      } else if (state == State::closed) {
        fail(fmt::format("unexpected character '{}' after a closing quote (expected a comma or the line end)",
                         snippet({&c, 1})));
      } else if (c == '"') {
        if (state != State::start)
          fail("stray double quote inside a field (quote the whole field, double inner quotes)");
        state = State::quoted;
      } else {
        state = State::unquoted;
        append(c);
      }
    }
    columns_ = column + 1;
    for (std::size_t i = 0; i < std::min(columns_, kMaxColumns); ++i) fields_[i] = scratch_[i];
    next_ = p - buf_.data();
    lines_ = breaks + 1;
    return true;
  }

  InputFile& file_;
  std::size_t chunk_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, next_ = 0, end_ = 0;  // current record, the one after it, end of the data
  uint64_t line_ = 1, lines_ = 0;             // first physical line of the record, and its line count
  uint64_t bytes_ = 0;
  bool eof_ = false;
  std::size_t columns_ = 0;
  std::array<std::string_view, kMaxColumns> fields_;
  std::array<std::string, kMaxColumns> scratch_;
};

// Names -> ids 0, 1, ... in order of first appearance. Open addressing with linear probing in a
// table at most half full whose 32-byte slots hold the name's length and first 24 bytes: in a large
// vocabulary each lookup is a cache miss, and this keeps it to one for names up to 24 bytes (names
// kept only in another array would add two more). All names also lie back to back in one string, for
// the longer ones and for names(). docs/pairs-format.md compares std::unordered_map.
class NameIndex {
 public:
  static uint64_t hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
  // Starts fetching the slot of `hash`, so that the lookups of a batch wait for memory together.
  void prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(hash, slots_.size())]);
  }

  // The id of `name` (whose hash is `hash`), adding it when new (then `added` is true); kNoId when
  // the vocabulary is full.
  uint32_t find_or_add(std::string_view name, uint64_t hash, bool& added) {
    if ((size() + 1) * 2 > slots_.size()) grow();
    const Slot key = slot_for(name, kNoId);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(hash, slots_.size());; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id == kNoId) {
        added = true;
        if (size() == kNoId) return kNoId;
        slot = key;
        slot.id = static_cast<uint32_t>(size());
        arena_.append(name);
        ends_.push_back(arena_.size());
        return slot.id;
      }
      if (slot.length == key.length && slot.head[0] == key.head[0] && slot.head[1] == key.head[1] &&
          slot.head[2] == key.head[2] &&
          (name.size() <= kHeadBytes || name_of(slot.id).substr(kHeadBytes) == name.substr(kHeadBytes))) {
        added = false;
        return slot.id;
      }
    }
  }

  std::size_t size() const { return ends_.size(); }
  std::string_view name_of(uint32_t id) const {
    const uint64_t begin = id == 0 ? 0 : ends_[id - 1];
    return std::string_view(arena_).substr(begin, ends_[id] - begin);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (uint32_t id = 0; id < size(); ++id) out.emplace_back(name_of(id));
    return out;
  }

 private:
  static constexpr std::size_t kHeadBytes = 24;
  struct alignas(32) Slot {
    uint32_t id = kNoId;
    uint32_t length = 0;
    std::array<uint64_t, kHeadBytes / 8> head = {};  // the name's first bytes, zero-padded
  };

  // Where the probe for `hash` starts in a table of `slots`: the first slot of a 64-byte line, so
  // that most lookups stay within the one line that prefetch() fetched.
  static std::size_t home(uint64_t hash, std::size_t slots) { return hash & (slots - 1) & ~std::size_t{1}; }

  static Slot slot_for(std::string_view name, uint32_t id) {
    Slot slot;
    slot.id = id;
    slot.length = static_cast<uint32_t>(name.size());
    std::memcpy(slot.head.data(), name.data(), std::min(name.size(), kHeadBytes));
    return slot;
  }

  void grow() {
    SlotTable bigger(std::max<std::size_t>(slots_.size() * 2, 1024));
    const std::size_t mask = bigger.size() - 1;
    for (uint32_t id = 0; id < size(); ++id) {
      std::size_t i = home(hash(name_of(id)), bigger.size());
      while (bigger[i].id != kNoId) i = (i + 1) & mask;
      bigger[i] = slot_for(name_of(id), id);
    }
    slots_ = std::move(bigger);
  }

  // The slots, 64-byte aligned, and in 2 MiB pages where the kernel has them (transparent huge pages
  // on madvise): with 4 KiB pages a lookup in a large table misses the TLB as well as the cache.
  class SlotTable {
   public:
    SlotTable() = default;
    explicit SlotTable(std::size_t n) : size_(n) {
      constexpr std::size_t kHugePage = 2u << 20;
      const std::size_t align = n * sizeof(Slot) >= kHugePage ? kHugePage : 64;
      const std::size_t bytes = (n * sizeof(Slot) + align - 1) / align * align;
      slots_.reset(static_cast<Slot*>(std::aligned_alloc(align, bytes)));
      if (!slots_) throw std::bad_alloc();
      if (align == kHugePage) ::madvise(slots_.get(), bytes, MADV_HUGEPAGE);  // a hint: 20% faster where taken
      std::uninitialized_fill_n(slots_.get(), n, Slot{});
    }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Slot& operator[](std::size_t i) { return slots_.get()[i]; }
    const Slot& operator[](std::size_t i) const { return slots_.get()[i]; }

   private:
    struct Free {
      void operator()(Slot* p) const { std::free(p); }
    };
    std::unique_ptr<Slot[], Free> slots_;
    std::size_t size_ = 0;
  };

  SlotTable slots_;
  std::string arena_;
  std::vector<uint64_t> ends_;  // name `id` is arena_[ends_[id - 1], ends_[id])
};

void check_options(const PairsFileOptions& options) {
  if (options.ids == IdKind::names && options.rows != 0)
    throw Error(fmt::format("--rows {}: applies to integer ids only; with --id-kind names the names are the vocabulary",
                            options.rows));
  if (options.rows > kNoId)
    throw Error(fmt::format("--rows {}: over the limit of {} rows (ids are uint32)", options.rows, kNoId));
}

// What the first lines of a CSV said, and what the whole file held.
struct CsvSummary {
  std::size_t columns = 0;
  IdKind ids = IdKind::names;
  uint64_t rows = 0;
  uint64_t pairs = 0;
};

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// The header rule of pairs_file.hpp: the column names exactly, or a third field that is not a number
// (a data line's third field is its label, which must be one).
bool is_header(const CsvRecords& in) {
  float unused;
  if (in.columns() >= 3 && !parse_float(in.field(2), unused)) return true;
  for (std::size_t i = 0; i < in.columns(); ++i) {
    const auto field = trim(in.field(i));
    if (!std::equal(field.begin(), field.end(), kColumnNames[i].begin(), kColumnNames[i].end(),
                    [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == y; }))
      return false;
  }
  return true;
}

// Rejects what cannot be told from the first bytes to be a CSV: UTF-16, binary data, the magic of
// another CEPAIRS version. Skips a UTF-8 byte-order mark.
void check_csv_start(CsvRecords& in) {
  const std::string_view start = in.buffered();
  if (start.starts_with(std::string_view(kMagic, 7)))
    throw Error(fmt::format("{}: starts with '{}', not the magic 'CEPAIRS1': a pairs file of another version?",
                            in.path(), snippet(start.substr(0, 8))));
  if (start.starts_with("\xFF\xFE") || start.starts_with("\xFE\xFF"))
    throw Error(fmt::format("{}:1: the file is UTF-16 (byte-order mark 0x{:02X} 0x{:02X}); save it as UTF-8", in.path(),
                            static_cast<unsigned char>(start[0]), static_cast<unsigned char>(start[1])));
  if (const auto nul = start.find('\0'); nul != std::string_view::npos)
    throw Error(
        fmt::format("{}: holds a NUL byte at offset {}: not a CSV, and not a CEPAIRS1 pairs file either "
                    "(it starts with '{}')",
                    in.path(), nul, snippet(start.substr(0, 8))));
  if (start.starts_with("\xEF\xBB\xBF")) in.skip(3);
}

// Parses the pairs of a CSV, handing each to add(a, b, label, weight) (label and weight are 1 when
// the file has no such column). Names go into `names`. Errors come in the order of the file.
template <class Add>
CsvSummary parse_csv(CsvRecords& in, const PairsFileOptions& options, NameIndex& names, Add&& add) {
  check_options(options);
  check_csv_start(in);
  if (!in.next()) throw Error(fmt::format("{}: no pairs: the file is empty", in.path()));
  CsvSummary summary;
  summary.columns = in.columns();
  const uint64_t first_line = in.line();
  if (summary.columns < 2 || summary.columns > kMaxColumns)
    in.fail(
        fmt::format("{} columns; a pairs file has 2 (a,b), 3 (a,b,label) or 4 (a,b,label,weight)", summary.columns));
  if (is_header(in)) {
    // Data lines reject NULs field by field; the header is skipped, so it is checked here. Without
    // this, a NUL past the first chunk would be refused or not depending on the chunk size.
    for (std::size_t i = 0; i < in.columns(); ++i)
      if (in.field(i).find('\0') != std::string_view::npos)
        in.fail(fmt::format("a NUL byte in the header's column {}: not a text file?", i + 1));
    if (!in.next()) throw Error(fmt::format("{}: no pairs: only a header line", in.path()));
  }
  const uint64_t data_line = in.line();
  // Before the id kind is read off its first two fields: a line after the header may be shorter.
  if (in.columns() != summary.columns)
    in.fail(fmt::format("{} columns, but line {} has {}", in.columns(), first_line, summary.columns));

  summary.ids = options.ids;
  if (summary.ids == IdKind::automatic)
    summary.ids = is_plain_integer(in.field(0)) && is_plain_integer(in.field(1)) ? IdKind::ints : IdKind::names;
  if (summary.ids == IdKind::names && options.rows != 0)
    in.fail(
        fmt::format("--rows {} applies to integer ids only, and this line holds names (with names, the names "
                    "are the vocabulary: drop --rows)",
                    options.rows));
  const bool labelled = summary.columns >= 3, weighted = summary.columns == 4;

  // Names are looked up a batch of lines at a time: in a large vocabulary every lookup is a cache
  // miss, and prefetching the slots of the whole batch first lets those misses overlap (2.5x faster
  // with a 1M-name vocabulary). The batch keeps copies of its names.
  struct Pending {
    uint64_t line, hash_a, hash_b;
    std::size_t a_at, b_at, b_end;  // the names in batch_names
    float label, weight;
  };
  constexpr std::size_t kBatch = 64;
  std::vector<Pending> pending;
  pending.reserve(kBatch);
  std::string batch_names;
  auto name_id = [&](std::string_view name, uint64_t hash, std::size_t column, uint64_t line) {
    bool added = false;
    const uint32_t id = names.find_or_add(name, hash, added);
    if (id == kNoId) in.fail_at(line, fmt::format("more than {} distinct names", kNoId - 1));
    if (added) {  // checked once per name, not once per pair
      if (const auto bad = invalid_utf8_at(name); bad != std::string_view::npos)
        in.fail_at(line, fmt::format("invalid UTF-8 in the name in column {} at byte {} (0x{:02X})",
                                     kColumnNames[column], bad, static_cast<unsigned char>(name[bad])));
      if (name.find('\0') != std::string_view::npos)
        in.fail_at(line, fmt::format("NUL byte in the name '{}' in column {}", snippet(name), kColumnNames[column]));
    }
    return id;
  };
  auto resolve = [&] {
    const std::string_view all = batch_names;
    for (const Pending& p : pending) {
      const uint32_t a = name_id(all.substr(p.a_at, p.b_at - p.a_at), p.hash_a, 0, p.line);
      const uint32_t b = name_id(all.substr(p.b_at, p.b_end - p.b_at), p.hash_b, 1, p.line);  // after a: ids in order
      add(a, b, p.label, p.weight);
    }
    pending.clear();
    batch_names.clear();
  };
  // Any error on this line comes after those of the batch's earlier lines.
  auto fail = [&](const std::string& what) {
    resolve();
    in.fail(what);
  };
  auto next = [&] {
    try {
      return in.next();
    } catch (const Error&) {
      resolve();
      throw;
    }
  };

  auto int_id = [&](std::size_t column) {
    const std::string_view s = in.field(column);
    uint64_t id = 0;
    bool digits = !s.empty();
    // Eleven digits are enough to tell an id (below 2^32 - 1) from one too large.
    for (std::size_t i = 0; i < s.size() && digits; ++i) {
      digits = s[i] >= '0' && s[i] <= '9';
      if (i < 11) id = id * 10 + static_cast<unsigned>(s[i] - '0');
    }
    if (!digits) {
      const std::string why =
          options.ids == IdKind::ints ? "--id-kind ints" : fmt::format("line {} held integer ids", data_line);
      in.fail(fmt::format("'{}' in column {} is not an integer id ({}); pass --id-kind names if the ids are names{}",
                          snippet(s), kColumnNames[column], why,
                          in.line() == first_line ? " (a header line must read a,b[,label[,weight]])" : ""));
    }
    if (s.size() > 10 || id >= kNoId)
      in.fail(
          fmt::format("id {} in column {} is too large (ids are below {})", snippet(s), kColumnNames[column], kNoId));
    if (options.rows != 0 && id >= options.rows)
      in.fail(fmt::format("id {} in column {} is not below --rows {}", id, kColumnNames[column], options.rows));
    summary.rows = std::max(summary.rows, id + 1);
    return static_cast<uint32_t>(id);
  };

  do {
    if (in.columns() != summary.columns)
      fail(fmt::format("{} columns, but line {} has {}", in.columns(), first_line, summary.columns));
    const bool ints = summary.ids == IdKind::ints;
    uint32_t a = 0, b = 0;
    if (ints) {
      a = int_id(0);
      b = int_id(1);
    } else {
      for (std::size_t column : {0, 1})
        if (in.field(column).empty()) fail(fmt::format("empty name in column {}", kColumnNames[column]));
    }
    float label = 1.0f, weight = 1.0f;
    if (labelled) {
      if (!parse_float(in.field(2), label) || !valid_label(label))
        fail(fmt::format("label '{}' is not a number in [0, 1]", snippet(in.field(2))));
    }
    if (weighted && (!parse_float(in.field(3), weight) || !valid_weight(weight)))
      fail(fmt::format("weight '{}' is not a finite number >= 0", snippet(in.field(3))));
    if (ints) {
      add(a, b, label, weight);
    } else {
      Pending& p = pending.emplace_back();
      p.line = in.line();
      p.hash_a = NameIndex::hash(in.field(0));
      p.hash_b = NameIndex::hash(in.field(1));
      names.prefetch(p.hash_a);
      names.prefetch(p.hash_b);
      p.a_at = batch_names.size();
      batch_names += in.field(0);
      p.b_at = batch_names.size();
      batch_names += in.field(1);
      p.b_end = batch_names.size();
      p.label = label;
      p.weight = weight;
      if (pending.size() == kBatch) resolve();
    }
    ++summary.pairs;
  } while (next());
  resolve();

  if (summary.ids == IdKind::names) summary.rows = names.size();
  if (options.rows != 0) summary.rows = options.rows;
  return summary;
}

PairsData read_csv(InputFile& file, CsvRecords& in, const PairsFileOptions& options) {
  PairsData data;
  PairSet& p = data.pairs;
  // One pair per ~24 bytes of CSV, guessed up front to spare most of the vectors' regrowth (a guess
  // too high costs address space only: pages never written are never backed).
  if (file.regular()) {
    const std::size_t guess = static_cast<std::size_t>(std::min<uint64_t>(file.size() / 24, 1ull << 30));
    p.a.reserve(guess);
    p.b.reserve(guess);
    p.label.reserve(guess);
    p.weight.reserve(guess);
  }
  NameIndex names;
  const CsvSummary s = parse_csv(in, options, names, [&](uint32_t a, uint32_t b, float label, float weight) {
    p.a.push_back(a);
    p.b.push_back(b);
    p.label.push_back(label);
    p.weight.push_back(weight);
  });
  if (s.columns < 4) std::vector<float>().swap(p.weight);
  data.names = names.names();
  data.rows = s.rows;
  data.labelled = s.columns >= 3;
  data.ids = s.ids;
  return data;
}

// Every id below rows, every label and weight valid, the names matching rows. `source` names the file.
void check_pairs(const PairsData& data, const std::string& source) {
  const PairSet& p = data.pairs;
  if (p.size() == 0) throw Error(fmt::format("{}: no pairs", source));
  if (p.b.size() != p.size() || p.label.size() != p.size() || (!p.weight.empty() && p.weight.size() != p.size()))
    throw Error(fmt::format("{}: {} a ids, {} b ids, {} labels and {} weights: the columns differ in length", source,
                            p.a.size(), p.b.size(), p.label.size(), p.weight.size()));
  if (data.rows > kNoId) throw Error(fmt::format("{}: {} rows, over the limit of {}", source, data.rows, kNoId));
  if (data.ids == IdKind::automatic) throw Error(fmt::format("{}: the id kind must be names or ints", source));
  if (data.ids == IdKind::names && data.names.size() != data.rows)
    throw Error(fmt::format("{}: {} names for {} rows", source, data.names.size(), data.rows));
  if (data.ids == IdKind::ints && !data.names.empty())
    throw Error(fmt::format("{}: integer ids, but {} names", source, data.names.size()));
  for (std::size_t i = 0; i < data.names.size(); ++i) {
    const std::string& name = data.names[i];
    if (name.empty()) throw Error(fmt::format("{}: the name of id {} is empty", source, i));
    // What the CSV reader refuses, a binary file may not bring in either.
    if (name.find('\0') != std::string::npos || invalid_utf8_at(name) != std::string_view::npos)
      throw Error(
          fmt::format("{}: the name of id {} ('{}') holds a NUL byte or invalid UTF-8", source, i, snippet(name)));
  }
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.a[i] >= data.rows || p.b[i] >= data.rows) {
      const bool in_a = p.a[i] >= data.rows;
      throw Error(fmt::format("{}: pair {}: id {} in column {} is not below the {} rows", source, i,
                              in_a ? p.a[i] : p.b[i], in_a ? "a" : "b", data.rows));
    }
    if (!valid_label(p.label[i]) || (!data.labelled && p.label[i] != 1.0f))
      throw Error(fmt::format("{}: pair {}: label {} is not {}", source, i, p.label[i],
                              data.labelled ? "a number in [0, 1]" : "1 (the file has no label column)"));
    if (!p.weight.empty() && !valid_weight(p.weight[i]))
      throw Error(fmt::format("{}: pair {}: weight {} is not a finite number >= 0", source, i, p.weight[i]));
  }
}

void fsync_directory_of(const std::string& path) {
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error(fmt::format("{}: cannot open to sync: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(fmt::format("{}: fsync failed: {}", dir, std::strerror(errno)));
}

// Writes a CEPAIRS1 file to "<path>.tmp": zeros for the header, the records as they come, the names,
// then the header over the zeros. finish() syncs it and renames it into place; destroyed unfinished,
// the writer removes the temporary file.
class BinaryPairsWriter {
 public:
  explicit BinaryPairsWriter(const std::string& path)
      : path_(path), temp_(path + ".tmp"), buffer_(std::make_unique<char[]>(kBufferBytes)) {
    file_ = std::fopen(temp_.c_str(), "wb");
    if (!file_) throw Error(fmt::format("{}: cannot open for writing: {}", temp_, std::strerror(errno)));
    const char zeros[kHeaderBytes] = {};
    write(zeros, sizeof zeros);
  }
  ~BinaryPairsWriter() {
    if (!file_) return;
    std::fclose(file_);
    std::remove(temp_.c_str());
  }
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

  void finish(uint64_t rows, uint32_t flags) {
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
  void flush() {
    hash_ = fnv1a(hash_, buffer_.get(), used_);
    write(buffer_.get(), used_);
    used_ = 0;
  }
  void write(const char* data, std::size_t n) {
    if (n && std::fwrite(data, 1, n, file_) != n)
      throw Error(fmt::format("{}: write failed: {}", temp_, std::strerror(errno)));
  }

  std::string path_, temp_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
  uint64_t count_ = 0, names_bytes_ = 0, hash_ = kFnvOffset;
};

uint32_t flags_of(bool labelled, bool weighted, bool named) {
  return (labelled ? kFlagLabelled : 0) | (weighted ? kFlagWeighted : 0) | (named ? kFlagNames : 0);
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

PairsData read_binary(InputFile& file, std::string_view start, const PairsFileOptions& options) {
  const std::string& path = file.path();
  if (!file.regular()) throw Error(fmt::format("{}: a CEPAIRS1 pairs file must be a regular file", path));
  if (start.size() < kHeaderBytes)
    throw Error(
        fmt::format("{}: truncated: {} bytes, less than the {}-byte CEPAIRS1 header", path, file.size(), kHeaderBytes));
  const char* h = start.data();
  const auto version = load<uint32_t>(h + 8);
  const auto flags = load<uint32_t>(h + 12);
  const auto count = load<uint64_t>(h + 16);
  const auto rows = load<uint64_t>(h + 24);
  const auto names_offset = load<uint64_t>(h + 32);
  const auto names_bytes = load<uint64_t>(h + 40);
  const auto checksum = load<uint64_t>(h + 48);
  const auto reserved = load<uint64_t>(h + 56);
  if (version != kVersion)
    throw Error(fmt::format("{}: CEPAIRS1 version {}; this build reads version {}", path, version, kVersion));
  if (flags & ~(kFlagLabelled | kFlagWeighted | kFlagNames))
    throw Error(fmt::format("{}: unknown flags 0x{:X} in the header: damaged, or a newer format", path, flags));
  if (reserved != 0)
    throw Error(fmt::format("{}: the reserved header field is {}, not 0: damaged, or a newer format", path, reserved));
  if (count == 0) throw Error(fmt::format("{}: no pairs: the header says 0", path));
  if (rows > kNoId) throw Error(fmt::format("{}: the header says {} rows, over the limit of {}", path, rows, kNoId));
  const bool named = flags & kFlagNames;
  check_options(options);
  if (options.ids != IdKind::automatic && options.ids != (named ? IdKind::names : IdKind::ints))
    throw Error(fmt::format("{}: holds {}, but --id-kind {} was given", path, named ? "names" : "integer ids",
                            to_string(options.ids)));
  if (named && options.rows != 0)
    throw Error(fmt::format("{}: --rows {} applies to integer ids only, and the file holds names", path, options.rows));

  // 128 bits: a damaged header's count times 16 must not wrap around to the file's size.
  const unsigned __int128 expected = kHeaderBytes + static_cast<unsigned __int128>(count) * kRecordBytes + names_bytes;
  const uint64_t size = file.size();
  if (expected != size)
    throw Error(fmt::format("{}: {}: header says {} pairs{} ({} bytes) but the file has {} bytes", path,
                            expected > size ? "truncated" : "trailing bytes", count,
                            named ? fmt::format(" and {} bytes of names", names_bytes) : "", expected, size));
  if (named ? names_offset != kHeaderBytes + count * kRecordBytes : names_offset != 0 || names_bytes != 0)
    throw Error(fmt::format("{}: a names section at offset {} ({} bytes) does not fit the header's flags and {} pairs",
                            path, names_offset, names_bytes, count));

  PairsData data;
  data.rows = rows;
  data.labelled = flags & kFlagLabelled;
  data.ids = named ? IdKind::names : IdKind::ints;
  PairSet& p = data.pairs;
  p.a.resize(count);
  p.b.resize(count);
  p.label.resize(count);
  p.weight.resize(count);
  // Records come in pieces through a buffer, hashed as they arrive; they are checked only once the
  // checksum holds, so that damage reads as damage and not as a bad label.
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
  std::string names(names_bytes, '\0');
  const std::size_t from_start = std::min<std::size_t>(have, names.size());
  std::memcpy(names.data(), start.data() + start.size() - have, from_start);
  read_exactly(file, names.data() + from_start, names.size() - from_start);
  hash = fnv1a(hash, names.data(), names.size());
  if (hash != checksum)
    throw Error(fmt::format("{}: checksum mismatch (header 0x{:016X}, contents 0x{:016X}): the file is damaged", path,
                            checksum, hash));

  if (named) {
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
      data.names.emplace_back(name);
    }
    if (at != names.size())
      throw Error(fmt::format("{}: {} bytes after the last of the {} names", path, names.size() - at, rows));
  }
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
  return data;
}

bool is_binary(const CsvRecords& in) { return in.buffered().starts_with(std::string_view(kMagic, sizeof kMagic)); }

}  // namespace

IdKind parse_id_kind(const std::string& name) {
  if (name == "auto") return IdKind::automatic;
  if (name == "names") return IdKind::names;
  if (name == "ints") return IdKind::ints;
  throw Error(fmt::format("--id-kind {}: expected auto, names or ints", snippet(name)));
}

const char* to_string(IdKind kind) {
  switch (kind) {
    case IdKind::automatic:
      return "auto";
    case IdKind::names:
      return "names";
    case IdKind::ints:
      return "ints";
  }
  return "?";
}

PairsData read_pairs_file(const std::string& path, const PairsFileOptions& options) {
  InputFile file(path);
  CsvRecords in(file, kDefaultChunkBytes);
  if (is_binary(in)) return read_binary(file, in.buffered(), options);
  return read_csv(file, in, options);
}

PairsData read_pairs_csv(const std::string& path, const PairsFileOptions& options, std::size_t chunk_bytes) {
  InputFile file(path);
  CsvRecords in(file, chunk_bytes);
  if (is_binary(in)) throw Error(fmt::format("{}: a CEPAIRS1 binary pairs file, not a CSV", path));
  return read_csv(file, in, options);
}

ConvertStats convert_pairs_file(const std::string& csv_path, const std::string& out_path,
                                const PairsFileOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  InputFile file(csv_path);
  CsvRecords in(file, kDefaultChunkBytes);
  if (is_binary(in))
    throw Error(fmt::format("{}: already a CEPAIRS1 binary pairs file; convert-pairs reads a CSV", csv_path));
  BinaryPairsWriter out(out_path);
  NameIndex names;
  const CsvSummary s = parse_csv(
      in, options, names, [&](uint32_t a, uint32_t b, float label, float weight) { out.add(a, b, label, weight); });
  for (uint32_t id = 0; id < names.size(); ++id) out.add_name(names.name_of(id));
  out.finish(s.rows, flags_of(s.columns >= 3, s.columns == 4, s.ids == IdKind::names));
  ConvertStats stats;
  stats.pairs = s.pairs;
  stats.rows = s.rows;
  stats.input_bytes = in.bytes_read();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

void write_pairs_binary(const std::string& path, const PairsData& data) {
  check_pairs(data, path);
  const PairSet& p = data.pairs;
  BinaryPairsWriter out(path);
  for (std::size_t i = 0; i < p.size(); ++i) out.add(p.a[i], p.b[i], p.label[i], p.weight.empty() ? 1.0f : p.weight[i]);
  for (const auto& name : data.names) out.add_name(name);
  out.finish(data.rows, flags_of(data.labelled, !p.weight.empty(), data.ids == IdKind::names));
}

void write_vocab_tsv(const std::string& path, const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t id = 0; id < names.size(); ++id) {
    if (names[id].empty()) throw Error(fmt::format("{}: the name of id {} is empty", path, id));
    for (const char c : names[id]) {
      switch (c) {
        case '\t':
          text += "\\t";
          break;
        case '\n':
          text += "\\n";
          break;
        case '\r':
          text += "\\r";
          break;
        case '\\':
          text += "\\\\";
          break;
        default:
          text += c;
      }
    }
    text += '\n';
  }
  write_text_file(path, text);
}

std::vector<std::string> read_vocab_tsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the vocabulary: {}", path, std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string_view text = buffer.view();
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<std::string> names;
  for (std::size_t line = 1; !text.empty(); ++line) {
    const std::size_t nl = std::min(text.find('\n'), text.size());
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(std::min(nl + 1, text.size()));
    if (raw.ends_with('\r')) raw.remove_suffix(1);
    if (raw.empty()) throw Error(fmt::format("{}:{}: empty name (line i names id i - 1)", path, line));
    std::string name;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        name += raw[i];
        continue;
      }
      const char next = i + 1 < raw.size() ? raw[++i] : '\0';
      if (next == 't')
        name += '\t';
      else if (next == 'n')
        name += '\n';
      else if (next == 'r')
        name += '\r';
      else if (next == '\\')
        name += '\\';
      else
        throw Error(fmt::format("{}:{}: unknown escape '\\{}' (a vocabulary escapes only \\t \\n \\r \\\\)", path, line,
                                snippet({&next, next ? 1u : 0u})));
    }
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace cudaembed
