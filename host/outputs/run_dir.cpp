// NPY, TSV and JSON readers for run directories.
#include "cudaembed/run_dir.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cudaembed/error.hpp"
#include "cudaembed/math.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace fs = std::filesystem;

namespace {

std::string read_whole(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read {} (is this a cudaembed run directory?)", path, what));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  const std::string bytes = read_whole(path, "the NPY file");
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw Error(fmt::format("{}: not an NPY file (no \\x93NUMPY magic)", path));
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(fmt::format("{}: truncated NPY header", path));
    for (int i = 3; i >= 0; --i) header_len = header_len << 8 | static_cast<unsigned char>(bytes[8 + i]);
    offset = 12;
  } else {
    throw Error(fmt::format("{}: unsupported NPY version {}", path, major));
  }
  if (offset + header_len > bytes.size()) throw Error(fmt::format("{}: truncated NPY header", path));
  const std::string header = bytes.substr(offset, header_len);
  if (header.find("'<f4'") == std::string::npos)
    throw Error(fmt::format("{}: expected float32 ('<f4') data, header says: {}", path, header));
  if (header.find("'fortran_order': True") != std::string::npos)
    throw Error(fmt::format("{}: Fortran-order arrays are not supported", path));
  std::smatch match;
  if (!std::regex_search(header, match, std::regex(R"('shape':\s*\(([^)]*)\))")))
    throw Error(fmt::format("{}: no shape in the NPY header: {}", path, header));
  NpyArray array;
  uint64_t count = 1;
  std::stringstream dims(match[1].str());
  for (std::string item; std::getline(dims, item, ',');) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    array.shape.push_back(std::stoull(item));
    count *= array.shape.back();
  }
  const std::size_t data_start = offset + header_len;
  if (bytes.size() - data_start != count * sizeof(float))
    throw Error(fmt::format("{}: {} bytes of data for shape with {} floats (truncated or corrupt)", path,
                            bytes.size() - data_start, count));
  array.data.resize(count);
  std::memcpy(array.data.data(), bytes.data() + data_start, count * sizeof(float));
  return array;
}

namespace {

// A name as people type it: lower case, without spaces, hyphens or underscores ("Sky Blue" = "SkyBlue").
std::string name_key(std::string_view name) {
  std::string key;
  for (const unsigned char c : name)
    if (c != ' ' && c != '-' && c != '_') key += static_cast<char>(std::tolower(c));
  return key;
}

// The names a row answers to: its whole name, then, for a merged row ("gray, grey": one RGB value
// under several names), each of its comma-separated parts.
std::vector<std::string_view> names_of(std::string_view name) {
  std::vector<std::string_view> out{name};
  if (name.find(',') == std::string_view::npos) return out;
  for (std::size_t start = 0; start <= name.size();) {
    const std::size_t end = std::min(name.find(',', start), name.size());
    std::string_view part = name.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string hint_name(const std::string& name) {
  const std::string word = shell_word(name);
  return word == name && name.find(',') != std::string::npos ? "'" + name + "'" : word;
}

std::vector<std::size_t> rows_named(const std::vector<std::string>& names, const std::string& query) {
  const std::string key = name_key(query);
  // Rule 0: the whole name; 1: a part of a merged name; 2 and 3: the same, by name_key.
  for (int rule = 0; rule < 4; ++rule) {
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::vector<std::string_view> all = names_of(names[i]);
      const auto first = all.begin() + (rule % 2), last = rule % 2 ? all.end() : all.begin() + 1;
      if (std::any_of(first, last, [&](std::string_view n) { return rule < 2 ? n == query : name_key(n) == key; }))
        rows.push_back(i);
    }
    if (!rows.empty()) return rows;
  }
  return {};
}

std::string name_lookup_error(const std::vector<std::string>& names, const std::string& query,
                              const std::vector<std::size_t>& rows, const std::string& flag, std::string_view noun) {
  std::vector<std::string> shown;
  if (rows.size() > 1) {  // ambiguous: every candidate, so that one can be typed exactly
    for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 10); ++i) shown.push_back(hint_name(names[rows[i]]));
    if (rows.size() > shown.size()) shown.push_back(fmt::format("and {} more", rows.size() - shown.size()));
    return fmt::format("{} {}: {} {}s match it when case, spaces and hyphens are ignored: {}; give one exactly", flag,
                       query, rows.size(), noun, fmt::join(shown, ", "));
  }
  // The closest names: those that contain what was typed (shortest first), then by edit distance,
  // each measured against the nearest of a merged row's names.
  const std::string key = name_key(query);
  std::vector<std::tuple<bool, std::size_t, std::size_t>> scored;  // (not contained, distance, row)
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::tuple<bool, std::size_t, std::size_t> best{true, SIZE_MAX, i};
    for (const std::string_view name : names_of(names[i])) {
      const std::string n = name_key(name);
      best = std::min(best, std::tuple{key.empty() || n.find(key) == std::string::npos, edit_distance(key, n), i});
    }
    scored.push_back(best);
  }
  std::sort(scored.begin(), scored.end());
  for (std::size_t i = 0; i < std::min<std::size_t>(5, scored.size()); ++i)
    shown.push_back(hint_name(names[std::get<2>(scored[i])]));
  return fmt::format("{} {}: no {} of that name; closest: {}", flag, query, noun, fmt::join(shown, ", "));
}

std::size_t find_row(const std::vector<std::string>& names, const std::string& query, const std::string& flag,
                     std::string_view noun) {
  const std::vector<std::size_t> rows = rows_named(names, query);
  if (rows.size() == 1) return rows[0];
  throw Error(name_lookup_error(names, query, rows, flag, noun));
}

std::vector<float> l2_normalized_rows(const std::vector<float>& table, int dims) {
  std::vector<float> rows = table;
  for (std::size_t r = 0; r * dims < rows.size(); ++r) {
    float* row = &rows[r * dims];
    float ss = 0;
    for (int k = 0; k < dims; ++k) ss += row[k] * row[k];
    const float inv = 1.0f / std::sqrt(std::max(ss, kNormalizeEpsilon));
    for (int k = 0; k < dims; ++k) row[k] *= inv;
  }
  return rows;
}

std::vector<float> RunDir::effective_embedding() const {
  return normalize && !rows_l2_normalized ? l2_normalized_rows(embedding, dims) : embedding;
}

RunDir read_run_dir(const std::string& path) {
  if (!fs::is_directory(path))
    throw Error(fmt::format("{}: not a directory (expected a cudaembed run directory)", path));
  RunDir run;
  run.path = path;
  const NpyArray emb = read_npy((fs::path(path) / "embedding.npy").string());
  if (emb.shape.size() != 2) throw Error(fmt::format("{}/embedding.npy: expected 2 dimensions (N, D)", path));
  run.rows = static_cast<int64_t>(emb.shape[0]);
  run.dims = static_cast<int>(emb.shape[1]);
  run.embedding = emb.data;

  const std::string json_path = (fs::path(path) / "run.json").string();
  try {
    const auto json = nlohmann::json::parse(read_whole(json_path, "run.json"));
    run.normalize = json.at("config").at("normalize").get<bool>();
    run.rows_l2_normalized = json.value("rows_l2_normalized", false);
    run.head = json.at("config").value("head", std::string("euclidean"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: {}", json_path, e.what()));
  }
  if (run.head != "euclidean" && run.head != "dot" && run.head != "cosine" && run.head != "poincare")
    throw Error(
        fmt::format("{}: config.head is '{}', expected euclidean, dot, cosine or poincare", json_path, run.head));

  const std::string meta_path = (fs::path(path) / "metadata.tsv").string();
  std::istringstream meta(read_whole(meta_path, "metadata.tsv"));
  std::string line;
  std::getline(meta, line);  // header: "name<TAB>hex", or "name" for a run on a pairs file
  run.has_colours = line.find('\t') != std::string::npos;
  for (std::size_t line_no = 2; std::getline(meta, line); ++line_no) {
    if (!run.has_colours) {
      run.names.push_back(line);
      run.rgb.insert(run.rgb.end(), std::begin(kItemRgb), std::end(kItemRgb));
      continue;
    }
    const auto tab = line.rfind('\t');
    unsigned r = 0, g = 0, b = 0;
    if (tab == std::string::npos || std::sscanf(line.c_str() + tab + 1, "#%2x%2x%2x", &r, &g, &b) != 3)
      throw Error(fmt::format("{}:{}: expected 'name<TAB>#RRGGBB'", meta_path, line_no));
    run.names.push_back(line.substr(0, tab));
    for (unsigned c : {r, g, b}) run.rgb.push_back(static_cast<float>(c) / 255.0f);
  }
  if (static_cast<int64_t>(run.names.size()) != run.rows)
    throw Error(fmt::format("{}: {} rows, but embedding.npy has {}", meta_path, run.names.size(), run.rows));
  return run;
}

}  // namespace cudaembed
