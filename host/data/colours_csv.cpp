// Parser for the Kaggle "colour name and RGB codes" CSV (RFC 4180). Errors name file:line.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace {

constexpr std::string_view kNameColumn = "Color Name";
constexpr std::string_view kRgbColumn = "R;G;B Dec";
// A colour table is small; this bound keeps a wrong --data (a video, a disk image) from being
// read into memory whole.
constexpr std::uintmax_t kMaxFileBytes = 64ull << 20;

// A row wider than this is not a colour table (and each empty field costs memory).
constexpr std::size_t kMaxFields = 1024;

struct Record {
  std::vector<std::string> fields;
  std::size_t line = 0;  // physical line the record starts on, 1-based
};

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// Splits RFC 4180 text into records. Quoted fields may hold commas, doubled quotes and newlines.
class CsvReader {
 public:
  CsvReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  bool next(Record& record) {
    record.fields.clear();
    if (pos_ >= text_.size()) return false;
    record.line = line_;
    std::string field;
    bool quoted = false, after_quote = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            field += '"';
            ++pos_;
          } else {
            quoted = false;
            after_quote = true;
          }
        } else {
          // A line break inside quotes still counts: LF, CRLF (counted at its LF) or a lone CR.
          if (c == '\n' || (c == '\r' && (pos_ >= text_.size() || text_[pos_] != '\n'))) ++line_;
          field += c;
        }
      } else if (c == ',') {
        if (record.fields.size() == kMaxFields)
          fail(record.line, fmt::format("more than {} fields in one row: not a colour table", kMaxFields));
        record.fields.push_back(std::move(field));
        field.clear();
        after_quote = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
        ++line_;
        record.fields.push_back(std::move(field));
        return true;
      } else if (c == '"') {
        if (!trim(field).empty() || after_quote)
          fail(record.line, "stray double quote inside a field (quote the whole field, double inner quotes)");
        field.clear();
        quoted = true;
      } else if (after_quote) {
        if (c != ' ' && c != '\t')
          fail(record.line, fmt::format("unexpected character '{}' after a closing quote", snippet({&c, 1})));
      } else {
        field += c;
      }
    }
    if (quoted) fail(record.line, "unterminated quoted field (missing closing double quote)");
    record.fields.push_back(std::move(field));
    return true;
  }

  [[noreturn]] void fail(std::size_t line, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", source_, line, what));
  }

 private:
  std::string_view text_, source_;
  std::size_t pos_ = 0, line_ = 1;
};

std::size_t find_column(const Record& header, std::string_view name, const CsvReader& reader) {
  for (std::size_t i = 0; i < header.fields.size(); ++i)
    if (trim(header.fields[i]) == name) return i;
  std::string found;
  for (const auto& f : header.fields) {
    if (found.size() > 200) {
      found += ", ...";
      break;
    }
    found += fmt::format("{}'{}'", found.empty() ? "" : ", ", snippet(f));
  }
  reader.fail(header.line, fmt::format("missing header column '{}' (the header has: {})", name, found));
}

void parse_rgb(std::string_view field, std::size_t line, const CsvReader& reader, float* out) {
  int count = 0;
  std::size_t start = 0;
  while (true) {
    const auto end = field.find(';', start);
    const auto part = trim(field.substr(start, end == std::string_view::npos ? end : end - start));
    if (count < 3) {
      int value = 0;
      const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
      if (part.empty() || ec == std::errc::invalid_argument || ptr != part.data() + part.size())
        reader.fail(line, fmt::format("non-numeric RGB component '{}' in '{}' (expected R;G;B integers 0..255)",
                                      snippet(part), snippet(field)));
      if (ec == std::errc::result_out_of_range || value < 0 || value > 255)
        reader.fail(line, fmt::format("RGB component {} out of range 0..255 in '{}'", snippet(part), snippet(field)));
      out[count] = static_cast<float>(value) / 255.0f;
    }
    ++count;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (count != 3)
    reader.fail(
        line, fmt::format("wrong number of RGB components in '{}': expected 3 (R;G;B), got {}", snippet(field), count));
}

}  // namespace

std::string ColourTable::hex(std::size_t id) const {
  auto byte = [&](int c) { return static_cast<int>(rgb[id * 3 + c] * 255.0f + 0.5f); };
  return fmt::format("#{:02X}{:02X}{:02X}", byte(0), byte(1), byte(2));
}

ColourTable parse_colours_csv(std::string_view text, std::string_view source) {
  if (text.substr(0, 2) == "\xFF\xFE" || text.substr(0, 2) == "\xFE\xFF")
    throw Error(fmt::format("{}:1: the file is UTF-16 (byte-order mark 0x{:02X} 0x{:02X}); save it as UTF-8", source,
                            static_cast<unsigned char>(text[0]), static_cast<unsigned char>(text[1])));
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    throw Error(fmt::format("{}:1: a second UTF-8 byte-order mark (EF BB BF) before the header; remove it", source));
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw Error(fmt::format("{}: empty file (expected a header line '{},...,{},...' and colour rows)", source,
                            kNameColumn, kRgbColumn));
  CsvReader reader(text, source);
  Record header;
  do {  // blank lines before the header are skipped, as they are between rows
    reader.next(header);
  } while (header.fields.size() == 1 && trim(header.fields[0]).empty());
  const std::size_t name_col = find_column(header, kNameColumn, reader);
  const std::size_t rgb_col = find_column(header, kRgbColumn, reader);
  const std::size_t needed = std::max(name_col, rgb_col) + 1;

  ColourTable table;
  std::size_t nameless = 0;
  Record record;
  while (reader.next(record)) {
    if (record.fields.size() == 1 && trim(record.fields[0]).empty()) continue;  // blank line
    // The tutorial's dropna(subset=["Color Name"]) drops a nameless row whatever else it holds (the
    // Kaggle file has some; a row of commas is one), so it is dropped before anything is checked.
    const auto name = record.fields.size() > name_col ? trim(record.fields[name_col]) : std::string_view();
    if (name.empty()) {
      ++nameless;
      continue;
    }
    if (record.fields.size() < needed)
      reader.fail(record.line, fmt::format("expected at least {} fields (up to '{}'), found {}", needed,
                                           snippet(header.fields[needed - 1]), record.fields.size()));
    if (const auto bad = invalid_utf8_at(name); bad != std::string_view::npos)
      reader.fail(record.line, fmt::format("invalid UTF-8 in colour name at byte {} (0x{:02X})", bad,
                                           static_cast<unsigned char>(name[bad])));
    // Control characters would break every output that lists names (TSV, word2vec, plots).
    if (const auto ctl = std::find_if(name.begin(), name.end(),
                                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
        ctl != name.end())
      reader.fail(record.line, fmt::format("control character 0x{:02X} in colour name '{}'",
                                           static_cast<unsigned char>(*ctl), snippet(name)));
    float rgb[3];
    parse_rgb(record.fields[rgb_col], record.line, reader, rgb);
    table.names.emplace_back(name);
    table.rgb.insert(table.rgb.end(), rgb, rgb + 3);
  }
  if (table.size() == 0)
    throw Error(fmt::format("{}: no usable rows: {} rows without a name, none with one", source, nameless));
  table.nameless_dropped = nameless;
  return table;
}

ColourTable read_colours_csv(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error(fmt::format("{}: no such file (--data)", path));
  if (fs::is_directory(status)) throw Error(fmt::format("{}: is a directory, expected a CSV file (--data)", path));
  if (!fs::is_regular_file(status))
    throw Error(fmt::format("{}: not a regular file (a FIFO or device?), expected a CSV file (--data)", path));
  if (fs::file_size(path) > kMaxFileBytes)
    throw Error(fmt::format("{}: {} bytes is over the {} MiB limit for a colour table (--data)", path,
                            fs::file_size(path), kMaxFileBytes >> 20));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading (--data)", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_colours_csv(buffer.str(), path);
}

}  // namespace cudaembed
