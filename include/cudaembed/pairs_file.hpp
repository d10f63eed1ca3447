// Users' own pair data: a CSV of (a, b[, label[, weight]]) or the binary CEPAIRS1 format, read into a
// PairSet with its vocabulary. docs/pairs-format.md describes both formats byte by byte.
//
// CSV, one pair per line, columns in this order:
//   a, b     names (any UTF-8 text; RFC 4180 quoting: "Grey, Silver", "say ""hi""") or integer ids
//   label    optional, a number in [0, 1]; without it every pair is a positive (label 1)
//   weight   optional (needs label), a finite number >= 0; without it every pair weighs 1
// - Every line has the same number of columns: 2, 3 or 4.
// - The first line is a header when its fields are exactly a,b / a,b,label / a,b,label,weight (case
//   and surrounding spaces ignored), or when it has 3 or 4 columns and its third is not a number.
//   Neither can be a valid data line, except a 2-column pair named literally "a" and "b".
// - Fields are kept exactly: no trimming (spaces are part of a name, and a number must not have
//   any). Lines end with LF or CRLF; blank lines are skipped; a UTF-8 byte-order mark is skipped.
// - Ids: IdKind::automatic reads the first data line: both a and b plain decimal integers -> ints,
//   else names. Names get ids 0, 1, ... in order of first appearance (a before b on each line).
//   Integer ids are below 4294967295 and below options.rows when it is set.
// - A line is at most 1 MiB. Every error names file:line and shows the text it found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudaembed/pairs.hpp"

namespace cudaembed {

enum class IdKind { automatic, names, ints };

// "auto", "names" or "ints"; anything else is an Error naming --id-kind and the allowed values.
IdKind parse_id_kind(const std::string& name);
const char* to_string(IdKind kind);

struct PairsFileOptions {
  IdKind ids = IdKind::automatic;
  // Integer ids: the vocabulary size (every id must be below it); 0: the largest id + 1.
  // Names: must be 0 (the names are the vocabulary); anything else is an Error.
  uint64_t rows = 0;
};

struct PairsData {
  PairSet pairs;                   // weight is empty when the file has no weight column
  std::vector<std::string> names;  // names mode: names[id]; empty in ints mode
  uint64_t rows = 0;               // vocabulary size: every id < rows
  bool labelled = true;            // false when the file had no label column (every label is then 1)
  IdKind ids = IdKind::names;      // what the file held (never automatic)
};

// A CSV or a CEPAIRS1 file (told apart by the magic), read whole into memory.
PairsData read_pairs_file(const std::string& path, const PairsFileOptions& options = {});

// read_pairs_file for a CSV, reading it `chunk_bytes` at a time (the default is 8 MiB); tests use
// tiny chunks to split lines at every byte.
PairsData read_pairs_csv(const std::string& path, const PairsFileOptions& options, std::size_t chunk_bytes);

struct ConvertStats {
  uint64_t pairs = 0;
  uint64_t rows = 0;
  uint64_t input_bytes = 0;
  double seconds = 0;
};

// CSV -> CEPAIRS1, streaming: memory grows with the vocabulary, not the file. Writes "<out>.tmp" and
// renames it into place only on success, so a failure leaves no output and an existing file intact.
ConvertStats convert_pairs_file(const std::string& csv_path, const std::string& out_path,
                                const PairsFileOptions& options = {});

// `data` as CEPAIRS1, atomically (temporary file, fsync, rename, directory fsync).
void write_pairs_binary(const std::string& path, const PairsData& data);

// The vocabulary as TSV: line i (0-based, no header) is the name of id i, with tab, newline, carriage
// return and backslash written as \t \n \r \\. Written atomically.
void write_vocab_tsv(const std::string& path, const std::vector<std::string>& names);
// Reads it back; accepts CRLF line ends, a missing final newline and a leading byte-order mark.
std::vector<std::string> read_vocab_tsv(const std::string& path);

}  // namespace cudaembed
