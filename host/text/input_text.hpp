// Text helpers the parsers and commands share: showing a piece of input safely in an error message,
// finding where it stops being UTF-8, how far one name is from another, and a word for a shell.
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

// Optimal string alignment distance: insertions, deletions, substitutions, and a swap of two
// neighbouring letters, one edit each ("trian" is one edit from "train"). For "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b);

// `s` as one shell word: as it is when it holds only characters no shell treats specially, else
// single-quoted. For commands printed for the user to run, or handed to /bin/sh.
std::string shell_word(const std::string& s);

}  // namespace cudaembed
