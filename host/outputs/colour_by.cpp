// `plot --colour-by COLUMN`: one colour per distinct value of a column of the user's vocabulary
// table (a cluster, a label), with the legend the picture shows.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "cudaembed/error.hpp"
#include "cudaembed/plot.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
    fields.push_back(line.substr(start, tab - start));
  fields.push_back(line.substr(start));
  return fields;
}

// Category k's colour: Tableau 10 for the first ten, then hues a golden angle apart.
std::array<float, 3> category_colour(std::size_t k) {
  static constexpr uint32_t kTableau10[] = {0x4E79A7, 0xF28E2B, 0xE15759, 0x76B7B2, 0x59A14F,
                                            0xEDC948, 0xB07AA1, 0xFF9DA7, 0x9C755F, 0xBAB0AC};
  if (k < std::size(kTableau10)) {
    const uint32_t c = kTableau10[k];
    return {(c >> 16 & 0xff) / 255.0f, (c >> 8 & 0xff) / 255.0f, (c & 0xff) / 255.0f};
  }
  const double hue = std::fmod(static_cast<double>(k) * 137.508, 360.0) / 60.0;  // in [0, 6)
  const double s = k % 2 ? 0.55 : 0.75, v = k % 3 ? 0.85 : 0.65;
  const double f = hue - std::floor(hue), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const double rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  const auto* c = rgb[static_cast<int>(hue) % 6];
  return {static_cast<float>(c[0]), static_cast<float>(c[1]), static_cast<float>(c[2])};
}

// The header line's fields, and the index of `column` among them; an Error naming the columns there
// are when it is not one of them (the first field, the name, is not a column).
std::pair<std::vector<std::string>, std::size_t> read_header(std::istream& in, const RunDir& run,
                                                             const std::string& table_path, const std::string& column) {
  std::string line;
  if (!std::getline(in, line)) throw Error(fmt::format("--vocab {}: empty; expected a header line", table_path));
  if (line.ends_with('\r')) line.pop_back();
  if (line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
  std::vector<std::string> header = split_tabs(line);
  std::vector<std::string> others(header.begin() + 1, header.end());
  const auto at = std::find(others.begin(), others.end(), column);
  if (at == others.end())
    throw Error(fmt::format("--colour-by {}: {} has no such column; {}", column, table_path,
                            others.empty() ? fmt::format("its header names only the {} column '{}' (a table for "
                                                         "--colour-by is tab-separated: name, then its columns)",
                                                         run.noun(), snippet(header[0]))
                                           : fmt::format("its columns are {}", fmt::join(others, ", "))));
  const std::size_t field = static_cast<std::size_t>(at - others.begin()) + 1;
  return {std::move(header), field};
}

// Each row's value in field `field` of the lines after the header, "" for a row no line names.
// Lines naming no row of this run are skipped; a row named twice is an Error.
std::vector<std::string> values_by_row(std::istream& in, const RunDir& run, const std::string& table_path,
                                       std::size_t columns, std::size_t field) {
  std::unordered_map<std::string, std::size_t> row_of;
  for (std::size_t i = 0; i < run.names.size(); ++i) row_of.emplace(run.names[i], i);
  std::vector<std::string> value(run.names.size());
  std::vector<bool> seen(run.names.size());
  std::string line;
  for (std::size_t line_no = 2; std::getline(in, line); ++line_no) {
    if (line.ends_with('\r')) line.pop_back();
    if (line.empty()) continue;
    const std::vector<std::string> fields = split_tabs(line);
    if (fields.size() != columns)
      throw Error(fmt::format("{}:{}: {} columns, but the header has {}", table_path, line_no, fields.size(), columns));
    const auto row = row_of.find(fields[0]);
    if (row == row_of.end()) continue;  // a name this run did not train on
    if (seen[row->second])
      throw Error(fmt::format("{}:{}: {} appears a second time", table_path, line_no, snippet(fields[0])));
    seen[row->second] = true;
    value[row->second] = fields[field];
  }
  return value;
}

}  // namespace

ColourBy colour_by_column(const RunDir& run, const std::string& table_path, const std::string& column) {
  std::ifstream in(table_path, std::ios::binary);
  if (!in) throw Error(fmt::format("--vocab {}: cannot read it", table_path));
  const auto [header, field] = read_header(in, run, table_path, column);
  const std::vector<std::string> value = values_by_row(in, run, table_path, header.size(), field);

  // Categories by size, largest first (ties by name), so the common ones get the clearest colours.
  std::map<std::string, std::size_t> counts;
  for (const std::string& v : value)
    if (!v.empty()) ++counts[v];
  std::vector<std::pair<std::string, std::size_t>> order(counts.begin(), counts.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::unordered_map<std::string, std::array<float, 3>> colour;
  ColourBy out;
  out.title = column;
  for (std::size_t k = 0; k < order.size(); ++k) {
    colour[order[k].first] = category_colour(k);
    out.legend.push_back({order[k].first, colour[order[k].first]});
  }
  constexpr std::array<float, 3> kNone{0.8f, 0.8f, 0.8f};
  const auto missing = static_cast<std::size_t>(std::count(value.begin(), value.end(), std::string()));
  if (missing > 0) {
    out.legend.push_back({"(none)", kNone});
    spdlog::info("--colour-by {}: {} of {} {}s have no value in {} and are drawn grey", column, missing,
                 run.names.size(), run.noun(), table_path);
  }
  out.rgb.reserve(3 * value.size());
  for (const std::string& v : value) {
    const auto c = v.empty() ? kNone : colour.at(v);
    out.rgb.insert(out.rgb.end(), c.begin(), c.end());
  }
  return out;
}

}  // namespace cudaembed
