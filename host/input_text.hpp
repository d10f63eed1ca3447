// What the text parsers share: showing a piece of input safely in an error message, and finding
// where it stops being UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cudaembed {

// Input echoed in an error message: one printable line, at most 60 characters. Bytes that are
// not UTF-8, control characters (C0, DEL, C1) and invisible code points (zero-width, bidi marks,
// line separators, BOM) become \xNN, so a message can be neither cut short by a NUL nor spoofed.
std::string snippet(std::string_view s);

// The byte offset of the first invalid UTF-8 sequence (overlong forms and surrogates included), or npos.
std::size_t invalid_utf8_at(std::string_view s);

}  // namespace cudaembed
