// The pairs CSV reader: records streamed through a buffer a chunk at a time, split in one pass (RFC
// 4180 quoting on the slow path), names looked up in batches. Also the entry points that open a pairs
// file, since its first bytes, read here, say whether it is CEPAIRS1 (pairs_binary.cpp) instead.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/pairs_file.hpp"
#include "data/pairs_shared.hpp"
#include "data/vocabulary.hpp"
#include "text/input_text.hpp"

namespace cudaembed {

using namespace pairs_detail;

namespace {

constexpr std::size_t kDefaultChunkBytes = 8u << 20;
// A longer line is not a pair (and would let one bad file take unbounded memory).
constexpr std::size_t kMaxRecordBytes = 1u << 20;
constexpr std::size_t kMaxColumns = 4;
constexpr std::array<std::string_view, kMaxColumns> kColumnNames = {"a", "b", "label", "weight"};

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

// Digits only (no sign, no spaces): what IdKind::automatic takes for an integer id.
bool is_plain_integer(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

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

// What the first lines of a CSV say: its column count and id kind, and where its data begins.
struct CsvStart {
  std::size_t columns = 0;
  IdKind ids = IdKind::names;
  uint64_t first_line = 0;  // the header's line, or the first data line's when there is no header
  uint64_t data_line = 0;   // the first data line's
};

// Reads up to the first data line, which `in` is left on, and decides the column count (from the
// first line) and the id kind (from the first data line).
CsvStart read_csv_start(CsvRecords& in, const PairsFileOptions& options) {
  check_options(options);
  check_csv_start(in);
  if (!in.next()) throw Error(fmt::format("{}: no pairs: the file is empty", in.path()));
  CsvStart start;
  start.columns = in.columns();
  start.first_line = in.line();
  if (start.columns < 2 || start.columns > kMaxColumns)
    in.fail(fmt::format("{} columns; a pairs file has 2 (a,b), 3 (a,b,label) or 4 (a,b,label,weight)", start.columns));
  if (is_header(in)) {
    // Data lines reject NULs field by field; the header is skipped, so it is checked here. Without
    // this, a NUL past the first chunk would be refused or not depending on the chunk size.
    for (std::size_t i = 0; i < in.columns(); ++i)
      if (in.field(i).find('\0') != std::string_view::npos)
        in.fail(fmt::format("a NUL byte in the header's column {}: not a text file?", i + 1));
    if (!in.next()) throw Error(fmt::format("{}: no pairs: only a header line", in.path()));
  }
  start.data_line = in.line();
  // Before the id kind is read off its first two fields: a line after the header may be shorter.
  if (in.columns() != start.columns)
    in.fail(fmt::format("{} columns, but line {} has {}", in.columns(), start.first_line, start.columns));

  start.ids = options.ids;
  if (start.ids == IdKind::automatic)
    start.ids = is_plain_integer(in.field(0)) && is_plain_integer(in.field(1)) ? IdKind::ints : IdKind::names;
  if (start.ids == IdKind::names && options.rows != 0)
    in.fail(
        fmt::format("--rows {} applies to integer ids only, and this line holds names (with names, the names "
                    "are the vocabulary: drop --rows)",
                    options.rows));
  return start;
}

// Field `column` of the current line as an integer id, checked against the limit and --rows;
// `rows` grows to hold it.
uint32_t int_id(const CsvRecords& in, std::size_t column, const CsvStart& start, const PairsFileOptions& options,
                uint64_t& rows) {
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
        options.ids == IdKind::ints ? "--id-kind ints" : fmt::format("line {} held integer ids", start.data_line);
    in.fail(fmt::format("'{}' in column {} is not an integer id ({}); pass --id-kind names if the ids are names{}",
                        snippet(s), kColumnNames[column], why,
                        in.line() == start.first_line ? " (a header line must read a,b[,label[,weight]])" : ""));
  }
  if (s.size() > 10 || id >= kNoId)
    in.fail(fmt::format("id {} in column {} is too large (ids are below {})", snippet(s), kColumnNames[column], kNoId));
  if (options.rows != 0 && id >= options.rows)
    in.fail(fmt::format("id {} in column {} is not below --rows {}", id, kColumnNames[column], options.rows));
  rows = std::max(rows, id + 1);
  return static_cast<uint32_t>(id);
}

// Names are looked up a batch of lines at a time: in a large vocabulary every lookup is a cache
// miss, and prefetching the slots of the whole batch first lets those misses overlap (2.5x faster
// with a 1M-name vocabulary). The batch keeps copies of its names.
class NameBatch {
 public:
  static constexpr std::size_t kSize = 64;  // lines

  NameBatch(const CsvRecords& in, NameIndex& names) : in_(in), names_(names) { pending_.reserve(kSize); }

  // Queues a line's pair and prefetches its names' slots; true when the batch is full.
  bool push(uint64_t line, std::string_view a, std::string_view b, float label, float weight) {
    Pending& p = pending_.emplace_back();
    p.line = line;
    p.hash_a = NameIndex::hash(a);
    p.hash_b = NameIndex::hash(b);
    names_.prefetch(p.hash_a);
    names_.prefetch(p.hash_b);
    p.a_at = names_of_batch_.size();
    names_of_batch_ += a;
    p.b_at = names_of_batch_.size();
    names_of_batch_ += b;
    p.b_end = names_of_batch_.size();
    p.label = label;
    p.weight = weight;
    return pending_.size() == kSize;
  }

  // Looks up the queued names and hands each pair to add(a, b, label, weight), in file order.
  template <class Add>
  void resolve(Add& add) {
    // A lambda, not a member function: GCC then inlines it into each instantiation, as it did
    // before parse_csv was split; as a member it stayed a call per name.
    auto id_of = [&](std::string_view name, uint64_t hash, std::size_t column, uint64_t line) {
      bool added = false;
      const uint32_t id = names_.find_or_add(name, hash, added);
      if (id == kNoId) in_.fail_at(line, fmt::format("more than {} distinct names", kNoId - 1));
      if (added) {  // checked once per name, not once per pair
        if (const auto bad = invalid_utf8_at(name); bad != std::string_view::npos)
          in_.fail_at(line, fmt::format("invalid UTF-8 in the name in column {} at byte {} (0x{:02X})",
                                        kColumnNames[column], bad, static_cast<unsigned char>(name[bad])));
        if (name.find('\0') != std::string_view::npos)
          in_.fail_at(line, fmt::format("NUL byte in the name '{}' in column {}", snippet(name), kColumnNames[column]));
      }
      return id;
    };
    const std::string_view all = names_of_batch_;
    for (const Pending& p : pending_) {
      const uint32_t a = id_of(all.substr(p.a_at, p.b_at - p.a_at), p.hash_a, 0, p.line);
      const uint32_t b = id_of(all.substr(p.b_at, p.b_end - p.b_at), p.hash_b, 1, p.line);  // after a: ids in order
      add(a, b, p.label, p.weight);
    }
    pending_.clear();
    names_of_batch_.clear();
  }

 private:
  struct Pending {
    uint64_t line, hash_a, hash_b;
    std::size_t a_at, b_at, b_end;  // the names in names_of_batch_
    float label, weight;
  };

  const CsvRecords& in_;
  NameIndex& names_;
  std::vector<Pending> pending_;
  std::string names_of_batch_;
};

// Parses the pairs of a CSV, handing each to add(a, b, label, weight) (label and weight are 1 when
// the file has no such column). Names go into `names`. Errors come in the order of the file.
template <class Add>
CsvSummary parse_csv(CsvRecords& in, const PairsFileOptions& options, NameIndex& names, Add&& add) {
  const CsvStart start = read_csv_start(in, options);
  CsvSummary summary;
  summary.columns = start.columns;
  summary.ids = start.ids;
  const bool labelled = summary.columns >= 3, weighted = summary.columns == 4;
  NameBatch batch(in, names);
  // Any error on this line comes after those of the batch's earlier lines.
  auto fail = [&](const std::string& what) {
    batch.resolve(add);
    in.fail(what);
  };
  auto next = [&] {
    try {
      return in.next();
    } catch (const Error&) {
      batch.resolve(add);
      throw;
    }
  };

  do {
    if (in.columns() != summary.columns)
      fail(fmt::format("{} columns, but line {} has {}", in.columns(), start.first_line, summary.columns));
    const bool ints = summary.ids == IdKind::ints;
    uint32_t a = 0, b = 0;
    if (ints) {
      a = int_id(in, 0, start, options, summary.rows);
      b = int_id(in, 1, start, options, summary.rows);
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
    } else if (batch.push(in.line(), in.field(0), in.field(1), label, weight)) {
      batch.resolve(add);
    }
    ++summary.pairs;
  } while (next());
  batch.resolve(add);

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

}  // namespace

PairsData read_pairs_file(const std::string& path, const PairsFileOptions& options) {
  InputFile file(path);
  CsvRecords in(file, kDefaultChunkBytes);
  if (is_binary(in.buffered())) return read_binary(file, in.buffered(), options);
  return read_csv(file, in, options);
}

PairsData read_pairs_csv(const std::string& path, const PairsFileOptions& options, std::size_t chunk_bytes) {
  InputFile file(path);
  CsvRecords in(file, chunk_bytes);
  if (is_binary(in.buffered())) throw Error(fmt::format("{}: a CEPAIRS1 binary pairs file, not a CSV", path));
  return read_csv(file, in, options);
}

ConvertStats convert_pairs_file(const std::string& csv_path, const std::string& out_path,
                                const PairsFileOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  InputFile file(csv_path);
  CsvRecords in(file, kDefaultChunkBytes);
  if (is_binary(in.buffered()))
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

}  // namespace cudaembed
