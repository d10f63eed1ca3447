// Files a run writes, in formats other tools read: NPY, TSV, CSV, JSON. Every file is written to a
// temporary name and renamed into place, so an interrupted run never leaves a half-written one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace cudaembed {

// The NPY v1.0 header for a C-order array of `shape` with NumPy dtype `descr` ("<f4", "<u4").
std::string npy_header(const std::vector<uint64_t>& shape, const char* descr = "<f4");

void write_npy(const std::string& path, std::span<const float> data, const std::vector<uint64_t>& shape);
void write_npy(const std::string& path, std::span<const uint32_t> data, const std::vector<uint64_t>& shape);

// A float32 NPY of known shape written piece by piece (snapshots) to "<path>.tmp", renamed into
// place by finish().
class NpyStreamWriter {
 public:
  NpyStreamWriter(std::string path, std::vector<uint64_t> shape);
  // Continues a resumed run's array at its first `values` values (what the last checkpoint had
  // written), with `shape` in the header (a resumed run may train more or fewer epochs): from the
  // temporary file an interrupted run left, cut back to them, or from the finished file, copied to
  // the temporary one (which replaces it only at finish()).
  NpyStreamWriter(std::string path, std::vector<uint64_t> shape, uint64_t values);
  ~NpyStreamWriter();  // without finish() or keep_partial(): removes the temporary file
  // Makes what was appended durable (fsync), for a checkpoint to point at.
  void sync();
  // Closes without renaming and leaves the temporary file for a later resume.
  void keep_partial();
  NpyStreamWriter(const NpyStreamWriter&) = delete;
  NpyStreamWriter& operator=(const NpyStreamWriter&) = delete;
  void append(std::span<const float> data);
  void finish();

 private:
  std::string path_, temp_path_;
  uint64_t expected_ = 0, written_ = 0;
  std::FILE* file_ = nullptr;
};

// A float as JSON shows it: the shortest decimal that reads back as it (0.9, not 0.8999999761581421).
double json_number(float x);

// Writes `content` to `path` atomically.
void write_text_file(const std::string& path, const std::string& content);

// Checks, without creating anything, that a run can be written to `path`: an existing non-empty
// directory needs `force`, and otherwise the nearest existing parent must be a writable directory.
void check_run_dir(const std::string& path, bool force);

// check_run_dir, then makes the directory. Never deletes anything.
void prepare_run_dir(const std::string& path, bool force);

// Removes from `dir` the files a run, `plot` and `animate` write there under their default names
// (and the temporary files they write on the way), so that a run started with --force leaves no
// file of the run it replaces. Files with other names stay. Returns how many were removed.
std::size_t remove_run_outputs(const std::string& dir);
// Whether `name` is another rank's checkpoint of a data-parallel run (checkpoint.rank<r>.bin, its
// previous one checkpoint.rank<r>.prev.bin, or their temporary files).
bool is_rank_checkpoint_name(const std::string& name);
// Whether cudaembed writes a file of this name into a run directory (an output, or its .tmp).
bool is_run_file_name(const std::string& name);

// "runs/<prefix>20261121-054700": the default --out.
std::string default_run_dir(const std::string& prefix = "");

}  // namespace cudaembed
