// What both pairs readers use (pairs_shared.hpp): the input file, the --id-kind and --rows options,
// and the check every PairsData passes before it is read from or written to CEPAIRS1.
#include "data/pairs_shared.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "data/vocabulary.hpp"
#include "text/input_text.hpp"

namespace cudaembed {
namespace pairs_detail {

InputFile::InputFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
  if (fd_ < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || S_ISDIR(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "is a directory, expected a pairs file" : std::strerror(errno);
    ::close(fd_);
    throw Error(fmt::format("{}: {}", path, why));
  }
  regular_ = S_ISREG(st.st_mode);
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() { ::close(fd_); }

std::size_t InputFile::read(char* out, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd_, out + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(fmt::format("{}: read failed: {}", path_, std::strerror(errno)));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

void check_options(const PairsFileOptions& options) {
  if (options.ids == IdKind::names && options.rows != 0)
    throw Error(fmt::format("--rows {}: applies to integer ids only; with --id-kind names the names are the vocabulary",
                            options.rows));
  if (options.rows > kNoId)
    throw Error(fmt::format("--rows {}: over the limit of {} rows (ids are uint32)", options.rows, kNoId));
}

void check_pairs(const PairsData& data, const std::string& source) {
  const PairSet& p = data.pairs;
  if (p.size() == 0) throw Error(fmt::format("{}: no pairs", source));
  if (p.b.size() != p.size() || p.label.size() != p.size() || (!p.weight.empty() && p.weight.size() != p.size()))
    throw Error(fmt::format("{}: {} a ids, {} b ids, {} labels and {} weights: the columns differ in length", source,
                            p.a.size(), p.b.size(), p.label.size(), p.weight.size()));
  if (data.rows > kNoId) throw Error(fmt::format("{}: {} rows, over the limit of {}", source, data.rows, kNoId));
  if (data.ids == IdKind::automatic) throw Error(fmt::format("{}: the id kind must be names or ints", source));
  if (data.ids == IdKind::names && data.names.size() != data.rows)
    throw Error(fmt::format("{}: {} names for {} rows", source, data.names.size(), data.rows));
  if (data.ids == IdKind::ints && !data.names.empty())
    throw Error(fmt::format("{}: integer ids, but {} names", source, data.names.size()));
  for (std::size_t i = 0; i < data.names.size(); ++i) {
    const std::string& name = data.names[i];
    if (name.empty()) throw Error(fmt::format("{}: the name of id {} is empty", source, i));
    // What the CSV reader refuses, a binary file may not bring in either.
    if (name.find('\0') != std::string::npos || invalid_utf8_at(name) != std::string_view::npos)
      throw Error(
          fmt::format("{}: the name of id {} ('{}') holds a NUL byte or invalid UTF-8", source, i, snippet(name)));
  }
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.a[i] >= data.rows || p.b[i] >= data.rows) {
      const bool in_a = p.a[i] >= data.rows;
      throw Error(fmt::format("{}: pair {}: id {} in column {} is not below the {} rows", source, i,
                              in_a ? p.a[i] : p.b[i], in_a ? "a" : "b", data.rows));
    }
    if (!valid_label(p.label[i]) || (!data.labelled && p.label[i] != 1.0f))
      throw Error(fmt::format("{}: pair {}: label {} is not {}", source, i, p.label[i],
                              data.labelled ? "a number in [0, 1]" : "1 (the file has no label column)"));
    if (!p.weight.empty() && !valid_weight(p.weight[i]))
      throw Error(fmt::format("{}: pair {}: weight {} is not a finite number >= 0", source, i, p.weight[i]));
  }
}

}  // namespace pairs_detail

IdKind parse_id_kind(const std::string& name) {
  if (name == "auto") return IdKind::automatic;
  if (name == "names") return IdKind::names;
  if (name == "ints") return IdKind::ints;
  throw Error(fmt::format("--id-kind {}: expected auto, names or ints", snippet(name)));
}

const char* to_string(IdKind kind) {
  switch (kind) {
    case IdKind::automatic:
      return "auto";
    case IdKind::names:
      return "names";
    case IdKind::ints:
      return "ints";
  }
  return "?";
}

}  // namespace cudaembed
