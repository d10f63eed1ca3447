// The colour table parsed from the Kaggle "colour name and RGB codes" CSV.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cudaembed {

struct ColourTable {
  std::vector<std::string> names;    // colour id = row index after nameless rows are dropped
  std::vector<float> rgb;            // (N, 3), each component in [0, 1]
  std::size_t nameless_dropped = 0;  // rows with an empty Color Name, dropped unchecked (the tutorial's dropna)

  std::size_t size() const { return names.size(); }
  // "#RRGGBB" of colour id, from the parsed components.
  std::string hex(std::size_t id) const;
};

// Parses CSV text. `source` names the input in errors ("data/colours.csv:17: ...").
// Accepts RFC 4180 quoting, CRLF, a UTF-8 BOM and extra trailing columns; throws Error otherwise.
ColourTable parse_colours_csv(std::string_view text, std::string_view source);

// Reads and parses a file; errors name the path.
ColourTable read_colours_csv(const std::string& path);

}  // namespace cudaembed
