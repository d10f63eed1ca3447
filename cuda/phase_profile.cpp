// The persistent kernel's phase stamps as text (bench --phase-profile). Plain host code: tested
// without a device.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "train_kernels.hpp"

namespace cudaembed {

std::string format_phase_cycles(const PhaseCycles& c, const std::string& kernel, double sm_clock_mhz) {
  if (c.steps == 0) return fmt::format("{}: no phase stamps", kernel);
  const double steps = static_cast<double>(c.steps);
  auto per_step = [&](unsigned long long x) { return static_cast<double>(x) / steps; };
  auto us = [&](double cycles) { return sm_clock_mhz > 0 ? cycles / sm_clock_mhz : 0.0; };
  const auto max_a = *std::max_element(std::begin(c.work_a), std::end(c.work_a));
  const auto max_b = *std::max_element(std::begin(c.work_b), std::end(c.work_b));
  const double mean_a = std::accumulate(std::begin(c.work_a), std::end(c.work_a), 0.0) / 32;
  const double mean_b = std::accumulate(std::begin(c.work_b), std::end(c.work_b), 0.0) / 32;
  const double total = per_step(c.total);
  // The slowest warp of each phase sets the step; the rest of the step is barriers and stamps.
  const double rest = std::max(0.0, total - per_step(max_a) - per_step(max_b));
  std::string out = fmt::format("{} phases over {} steps, cycles per step (us at {:.0f} MHz):\n", kernel, c.steps,
                                sm_clock_mhz);
  out += fmt::format("  whole step          {:8.0f} ({:.3f} us)\n", total, us(total));
  out += fmt::format("  A forward+backward  {:8.0f} slowest warp, {:8.0f} mean ({:.3f} us)\n", per_step(max_a),
                     mean_a / steps, us(per_step(max_a)));
  out += fmt::format("  B optimizer         {:8.0f} slowest warp, {:8.0f} mean ({:.3f} us)\n", per_step(max_b),
                     mean_b / steps, us(per_step(max_b)));
  out += fmt::format("  barriers and rest   {:8.0f} ({:.3f} us)", rest, us(rest));
  return out;
}

}  // namespace cudaembed
