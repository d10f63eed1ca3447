// The vocabulary TSV that a run writes beside the embedding of a names pairs file: line i holds the
// name of id i - 1, with tabs, line breaks and backslashes escaped. NameIndex is in vocabulary.hpp.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "text/input_text.hpp"

namespace cudaembed {

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
