// libFuzzer target for the colour CSV parser (host/data/colours_csv.cpp). Built and run by
// tests/fuzz/run_fuzz.sh with ASan and UBSan. A finding is: a crash or sanitizer report, an
// exception other than cudaembed::Error escaping, a hang (-timeout), or a broken invariant below
// (reported through abort() with the reason on stderr).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"

namespace {

constexpr std::string_view kSource = "fuzz.csv";

[[noreturn]] void broken(const char* what, std::size_t index = 0) {
  std::fprintf(stderr, "fuzz_colours_csv: invariant broken: %s (index %zu)\n", what, index);
  std::abort();
}

// Independent of the parser's own check: strict UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

void check_table(const cudaembed::ColourTable& t) {
  if (t.size() == 0) broken("an empty table was returned instead of an error");
  if (t.rgb.size() != 3 * t.names.size()) broken("rgb.size() != 3 * names.size()");
  for (std::size_t i = 0; i < t.rgb.size(); ++i) {
    const float v = t.rgb[i];
    if (!(v >= 0.0f && v <= 1.0f)) broken("component outside [0, 1]", i);
    const float byte = v * 255.0f;
    if (std::fabs(byte - std::round(byte)) > 1e-3f) broken("component is not k/255", i);
  }
  for (std::size_t i = 0; i < t.names.size(); ++i) {
    const std::string& n = t.names[i];
    if (n.empty()) broken("empty name kept", i);
    if (n.front() == ' ' || n.front() == '\t' || n.back() == ' ' || n.back() == '\t') broken("name not trimmed", i);
    if (!valid_utf8(n)) broken("name is not valid UTF-8", i);
    const std::string hex = t.hex(i);
    if (hex.size() != 7 || hex[0] != '#') broken("hex() is not #RRGGBB", i);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cudaembed::ColourTable t = cudaembed::parse_colours_csv(text, kSource);
    check_table(t);
    // Parsing is a pure function of the bytes.
    const cudaembed::ColourTable again = cudaembed::parse_colours_csv(text, kSource);
    if (again.names != t.names || again.rgb != t.rgb) broken("two parses of the same bytes differ");
  } catch (const cudaembed::Error& e) {
    // Every error names the source: "fuzz.csv: ..." or "fuzz.csv:<line>: ...".
    const std::string_view msg = e.what();
    if (msg.substr(0, kSource.size() + 1) != "fuzz.csv:") broken("error message does not start with the source");
  }
  // Anything else thrown escapes to libFuzzer as a crash (std::terminate).
  return 0;
}
