// Reading back what `cudaembed train` wrote: the commands that plot, animate, query and evaluate
// a run all start here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cudaembed {

// A float32 NPY array: C order, little-endian.
struct NpyArray {
  std::vector<uint64_t> shape;
  std::vector<float> data;
};

// Reads a float32 NPY file; errors name the file and what is wrong with it.
NpyArray read_npy(const std::string& path);

// The one colour every point of a run without colours (a pairs file's) is drawn in.
inline constexpr float kItemRgb[3] = {0.27f, 0.51f, 0.71f};

struct RunDir {
  std::string path;
  int64_t rows = 0;
  int dims = 0;
  bool normalize = false;           // from run.json: the model compared L2-normalised rows
  bool rows_l2_normalized = false;  // from run.json: embedding.npy and snapshots.npy hold them already
  std::string head = "euclidean";   // from run.json: "euclidean", "dot", "cosine" or "poincare"
  std::vector<float> embedding;     // (N, D), embedding.npy
  std::vector<std::string> names;   // (N,), metadata.tsv
  std::vector<float> rgb;           // (N, 3) in [0, 1], from metadata.tsv's hex column (one plain colour without it)
  bool has_colours = true;          // false for a run on a pairs file: metadata.tsv has names only

  // What a row is, in messages and titles: "colour" for the colours, "item" for a pairs file's rows.
  const char* noun() const { return has_colours ? "colour" : "item"; }

  // The rows as the model compares them: L2-normalised when `normalize` (done here for runs that
  // wrote the raw rows: those before run.json said rows_l2_normalized).
  std::vector<float> effective_embedding() const;
};

// Loads embedding.npy, metadata.tsv and run.json from a run directory. metadata.tsv is
// "name<TAB>hex" per colour, or (a run on a pairs file) "name" alone.
RunDir read_run_dir(const std::string& path);

// Rows a name typed by a user finds, by the first rule that finds any: the whole name exactly; a
// part of a merged name exactly ("grey" finds the row "gray, grey"); the whole name, then a part,
// ignoring case, spaces, hyphens and underscores ("sky blue" finds SkyBlue). Empty: none; more
// than one: the name is ambiguous ("a 1" when both A-1 and a1 exist).
std::vector<std::size_t> rows_named(const std::vector<std::string>& names, const std::string& query);

// The error for a lookup that found `rows` (none, or several): "<flag> <query>: no <noun> of that
// name; closest: ..." with the five nearest names, or the candidates of an ambiguous name. Names
// with spaces or commas are quoted ('DimGray, DimGrey'), so a merged name reads as one.
std::string name_lookup_error(const std::vector<std::string>& names, const std::string& query,
                              const std::vector<std::size_t>& rows, const std::string& flag, std::string_view noun);

// The one row rows_named finds, else an Error from name_lookup_error.
std::size_t find_row(const std::vector<std::string>& names, const std::string& query, const std::string& flag,
                     std::string_view noun = "colour");

// A name as a hint shows it: a shell word, and quoted when it holds a comma.
std::string hint_name(const std::string& name);

// Rows of `table` (N, D) scaled to unit length, with tf.math.l2_normalize's floor on tiny rows.
std::vector<float> l2_normalized_rows(const std::vector<float>& table, int dims);

}  // namespace cudaembed
