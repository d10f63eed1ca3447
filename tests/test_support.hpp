// Fixtures shared by the test files: the bundled colour table, a self-removing temp directory,
// and a two-rank stand-in communicator.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <catch2/catch.hpp>

#include "cudaembed/backend.hpp"
#include "cudaembed/colours.hpp"
#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/model.hpp"

namespace cudaembed::test {

// Rank 0 of two, on a machine where it is local rank `local`; its collectives answer as if the
// other rank had said the same.
class TwinCommunicator final : public Communicator {
 public:
  explicit TwinCommunicator(int local) : local_(local) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return local_; }
  std::string describe() const override { return "twin"; }
  void all_gather(std::span<const float> mine, std::span<float> all) override { twice(mine, all); }
  void all_gather(std::span<const double> mine, std::span<double> all) override { twice(mine, all); }
  void all_to_all(std::span<const float>, std::span<const std::size_t>, std::span<float>,
                  std::span<const std::size_t>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
  int gathers = 0;

 private:
  template <class T>
  void twice(std::span<const T> mine, std::span<T> all) {
    ++gathers;
    std::ranges::copy(mine, all.begin());
    std::ranges::copy(mine, all.begin() + static_cast<std::ptrdiff_t>(mine.size()));
  }
  int local_;
};

// data/colours.csv, parsed once.
inline const ColourTable& bundled_colours() {
  static const ColourTable table = read_colours_csv(std::string(CUDAEMBED_SOURCE_DIR) + "/data/colours.csv");
  return table;
}

// Two runs that must have trained the same bits: every array and scalar of their states, and
// every epoch's sums, compared exactly.
inline void check_same_training(const ModelState& x, const std::vector<EpochMetrics>& x_epochs, const ModelState& y,
                                const std::vector<EpochMetrics>& y_epochs) {
  CHECK(x.step == y.step);
  CHECK(x.table == y.table);
  CHECK(x.table_m == y.table_m);
  CHECK(x.table_v == y.table_v);
  CHECK(x.row_step == y.row_step);
  CHECK(x.row_acc == y.row_acc);
  for (int i = 0; i < 2; ++i) {
    CHECK(x.dense[i] == y.dense[i]);
    CHECK(x.dense_m[i] == y.dense_m[i]);
    CHECK(x.dense_v[i] == y.dense_v[i]);
  }
  REQUIRE(x_epochs.size() == y_epochs.size());
  for (std::size_t e = 0; e < x_epochs.size(); ++e) {
    INFO("epoch " << e);
    CHECK(x_epochs[e].loss_sum == y_epochs[e].loss_sum);
    CHECK(x_epochs[e].squared_error_sum == y_epochs[e].squared_error_sum);
    CHECK(x_epochs[e].correct == y_epochs[e].correct);
    CHECK(x_epochs[e].samples == y_epochs[e].samples);
  }
}

// The whole file as bytes; empty when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `f`, requires that it throws cudaembed::Error (nothing else) and returns the message.
// n x dims values uniform in [-1, 1): table rows with no structure and no ties.
inline std::vector<float> random_points(std::size_t n, int dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> p(n * dims);
  for (float& x : p) x = u(rng);
  return p;
}

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw a std::exception that is not cudaembed::Error: " << e.what());
  }
  FAIL("did not throw");
  return {};
}

// The cudaembed binary: CUDAEMBED_BINARY when CMake provides it, else <build>/cudaembed beside
// the test binary's <build>/tests.
inline std::string cudaembed_binary() {
#ifdef CUDAEMBED_BINARY
  return CUDAEMBED_BINARY;
#else
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "cudaembed").string();
#endif
}

// `s` as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

struct RunResult {
  int status = -1;     // exit status, or -1 when the process did not exit normally
  std::string output;  // what it printed on stdout
};

// Runs a shell command and collects its stdout.
inline RunResult run_shell(const std::string& command) {
  RunResult r;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) FAIL("popen failed for: " << command);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, n);
  const int raw = ::pclose(pipe);
  r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// Runs `cudaembed <args>` (args already shell-quoted where needed), stderr folded into stdout.
inline RunResult run_cli(const std::string& args) {
  return run_shell(shell_quote(cudaembed_binary()) + " " + args + " 2>&1 </dev/null");
}

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("cudaembed-test-" + std::to_string(rd()) + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace cudaembed::test
