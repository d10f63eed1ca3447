// bench --phase-profile's report, from stamps made up here (the kernel side is a [gpu] test).
#include <string>

#include <catch2/catch.hpp>

#include "train_kernels.hpp"

using namespace cudaembed;
using Catch::Matchers::Contains;

TEST_CASE("phase profile: cycles per step by phase, slowest warp first", "[bench]") {
  PhaseCycles c{};
  c.steps = 100;
  c.total = 100 * 1000;  // 1000 cycles a step
  for (int w = 0; w < 32; ++w) {
    c.work_a[w] = 100 * 300;  // every warp 300 cycles a step in A ...
    c.work_b[w] = 100 * 200;
  }
  c.work_a[7] = 100 * 400;  // ... but one 400
  const std::string report = format_phase_cycles(c, "persistent", 2000.0);
  INFO(report);
  CHECK_THAT(report, Contains("persistent phases over 100 steps"));
  CHECK_THAT(report, Contains("whole step              1000 (0.500 us)"));
  CHECK_THAT(report, Contains("A forward+backward       400 slowest warp,      303 mean"));
  CHECK_THAT(report, Contains("B optimizer              200 slowest warp,      200 mean"));
  CHECK_THAT(report, Contains("barriers and rest        400 (0.200 us)"));  // 1000 - 400 - 200
}

TEST_CASE("phase profile: no stamps says so", "[bench]") {
  CHECK(format_phase_cycles(PhaseCycles{}, "fused", 1980.0) == "fused: no phase stamps");
}
