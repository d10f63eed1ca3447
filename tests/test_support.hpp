// Fixtures shared by the test files: the bundled colour table and a self-removing temp directory.
#pragma once

#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed::test {

// data/colours.csv, parsed once.
inline const ColourTable& bundled_colours() {
  static const ColourTable table = read_colours_csv(std::string(CUDAEMBED_SOURCE_DIR) + "/data/colours.csv");
  return table;
}

// Runs `f`, requires that it throws cudaembed::Error (nothing else) and returns the message.
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
