// The cairo drawing behind plot.png, plot.svg and every animation frame, shared by plot.cpp and
// animate.cpp (not part of the public API: it names cairo types).
#pragma once

#include <array>
#include <string>
#include <vector>

#include <cairo.h>

#include "cudaembed/plot.hpp"

namespace cudaembed {

// Draws `scene` on a scene.size x scene.size surface: background, grid, ticks, labels, title,
// points back to front, name labels.
void draw_scene(cairo_t* cr, const PlotScene& scene);

// The points' extent (and the unit circle's, when drawn) with a 5% margin: x_min, x_max, y_min, y_max.
std::array<double, 4> padded_extent(const ProjectedPoints& points, bool unit_circle);

// D = 3: where each data axis's unit vector lands in the picture plane; empty for other views.
std::vector<std::array<double, 2>> axis_compass(const Projection& projection);

// The run directory's own name ("runs/abc/" -> "abc").
std::string run_name(const std::string& path);

// "<run dir name>: N colours, D = d", or "N items" for a run on a pairs file.
std::string default_title(const RunDir& run);

}  // namespace cudaembed
