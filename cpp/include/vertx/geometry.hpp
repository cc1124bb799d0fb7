// Polygon geometry for vertxnet: areas, intersections and unions of non-convex polygons.
//
// Polygons are rings of (x, y) pixel coordinates, not closed (the first point is not repeated).
// All operations go through Clipper (libpolyclipping) on integer coordinates: every coordinate is
// rounded to the nearest multiple of 1/kScale pixel (kScale = 1024, so 1/1024 px). A vertex
// moves by at most 0.5/1024 px per axis, so an area changes by at most about
// perimeter * 0.7/1024 px^2 (0.3 px^2 for a 400 px outline). Clipper also rounds the points
// where edges cross to the grid, so slivers thinner than about 1/1024 px may vanish and parts
// closer than that may merge or come apart.
//
// Fill rule: a ring encloses every point around which it winds a non-zero number of times
// (non-zero rule). Self-touching and self-intersecting outlines from contour tracing are thereby
// well defined: a bow-tie covers both lobes, a zero-width spike covers nothing.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace vertx {

struct Point {
    double x = 0.0;
    double y = 0.0;
};

/// A ring of vertices in pixel coordinates (not closed).
using Polygon = std::vector<Point>;

/// Coordinates are quantised to 1/kScale pixel before any polygon operation.
inline constexpr double kScale = 1024.0;

/// Largest accepted |x| or |y| in pixels; keeps quantised coordinates inside Clipper's fast
/// 64-bit range (2^30), far beyond any radiograph.
inline constexpr double kMaxAbsCoordinate = 1.0e6;

/// Raised for unusable input (non-finite or out-of-range coordinates, too few points, bad
/// parameters). The message starts with the name of the offending argument.
class InvalidInput : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Throws InvalidInput ("<name>: ...") unless the polygon has >= 3 points, all finite and
/// within kMaxAbsCoordinate.
void validate_polygon(const Polygon& polygon, const std::string& name);

/// Area (px^2) enclosed by the ring under the non-zero rule; 0 for degenerate rings.
double polygon_area(const Polygon& polygon);

/// Area (px^2) of the intersection of the two enclosed regions.
double intersection_area(const Polygon& a, const Polygon& b);

/// Outline of the union of the two enclosed regions (the union rule of the ensemble): the outer
/// boundary of the union's largest connected part with every hole filled, where parts touching
/// at a point count as connected. Parts touching at two or more points close the holes between
/// them (filled); where parts touch at one point the ring passes through it once per part, so it
/// touches itself there but never crosses (weakly simple). It is thus never smaller than either
/// input whose own region is connected. Positive signed (shoelace) area, vertices on the
/// 1/kScale grid; for disjoint inputs the outline of the larger part; empty when neither input
/// encloses any area.
Polygon polygon_union(const Polygon& a, const Polygon& b);

/// Centroid of the enclosed region; the mean of the vertices when it encloses no area.
Point polygon_centroid(const Polygon& polygon);

}  // namespace vertx
