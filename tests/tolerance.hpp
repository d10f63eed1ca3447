// The one comparison helper of the test suite: |got - ref| <= atol + rtol * |ref| for every element,
// all values finite; on failure it names the worst element, its index and both values.
#pragma once

#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace cudaembed::test {

struct Tolerance {
  double atol;
  double rtol;
};

template <class A, class B>
std::string mismatch(const A& got, const B& ref, Tolerance tol) {
  std::ostringstream out;
  if (std::size(got) != std::size(ref)) {
    out << "sizes differ: got " << std::size(got) << ", expected " << std::size(ref);
    return out.str();
  }
  std::size_t worst = 0;
  double worst_excess = -1;
  for (std::size_t i = 0; i < std::size(ref); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (!std::isfinite(g) || !std::isfinite(r)) {
      out << "non-finite value at " << i << ": got " << g << ", expected " << r;
      return out.str();
    }
    const double excess = std::fabs(g - r) - (tol.atol + tol.rtol * std::fabs(r));
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (worst_excess <= 0) return {};
  out.precision(9);
  out << "worst element " << worst << ": got " << static_cast<double>(got[worst]) << ", expected "
      << static_cast<double>(ref[worst]) << " (|diff| " << std::fabs(static_cast<double>(got[worst]) - ref[worst])
      << " > atol " << tol.atol << " + rtol " << tol.rtol << " * |expected|)";
  return out.str();
}

// CHECKs that got matches ref within tol, printing the worst element when it does not.
#define CHECK_CLOSE(got, ref, tol)                                          \
  do {                                                                      \
    const std::string ce_why_ = ::cudaembed::test::mismatch(got, ref, tol); \
    INFO(ce_why_);                                                          \
    CHECK(ce_why_.empty());                                                 \
  } while (0)

}  // namespace cudaembed::test
