// Private helpers shared by the core sources: quantised Clipper regions.
#pragma once

#include <clipper.hpp>

#include "vertx/geometry.hpp"

namespace vertx::detail {

using ClipperLib::cInt;
using ClipperLib::IntPoint;
using ClipperLib::Path;
using ClipperLib::Paths;

/// Axis-aligned bounding box on the integer grid; empty when x0 > x1.
struct Box {
    cInt x0 = 1, y0 = 1, x1 = 0, y1 = 0;
    bool empty() const { return x0 > x1; }
};

/// The filled region of a ring: Clipper paths with outer rings of positive and holes of negative
/// signed area, so several regions can be combined under the non-zero rule.
struct Region {
    Paths paths;
    double area = 0.0;  ///< px^2
    Box box;
};

/// Rounds to the 1/kScale grid and drops repeated consecutive vertices (and a closing vertex).
Path quantise(const Polygon& polygon);

/// True when the ring neither touches nor crosses itself (nor folds back along an edge): then it
/// encloses its interior exactly once and needs no repair.
bool is_simple_ring(const Path& path);

/// Region enclosed by the ring under the non-zero rule (empty for degenerate rings).
Region make_region(const Polygon& polygon);

/// Region of a ring that is already clean Clipper output (positive orientation).
Region region_of_clean_path(Path path);

/// Signed area of a path in px^2 (computed about a local origin to keep products exact).
double signed_area_px2(const Path& path);

/// Area-weighted centroid of clean paths (outer positive, holes negative), in px.
Point centroid_of(const Paths& paths);

Box box_of(const Paths& paths);

/// Area (px^2) of the overlap of two boxes; 0 when they do not overlap.
double box_overlap_px2(const Box& a, const Box& b);

bool boxes_touch(const Box& a, const Box& b);

/// Area (px^2) of the intersection of two sets of clean paths (non-zero rule on both sides).
double intersection_area_px2(const Paths& subject, const Paths& clip);

struct UnionResult {
    double area = 0.0;  ///< px^2 of the whole union (holes subtracted)
    Paths outers;       ///< its outer rings (positive orientation; they may touch, never cross)
};

/// Union of two sets of clean paths (non-zero rule): its area and outer rings. The union rule of
/// the core is outline_of(outers): the outer boundary is the outer boundary of the largest connected part of the union with
/// every hole filled, where parts touching at a point count as connected: parts that touch at
/// two or more points close the holes between them (filled), and a ring through a point where
/// parts touch passes through it once per part (weakly simple: no edges cross or overlap, the
/// ring may touch itself at vertices). Its shoelace area is at least that of each connected input.
UnionResult union_of(const Paths& a, const Paths& b);

/// Outline of clean outer rings (positive orientation) that may touch each other or themselves
/// but never cross: the outer boundary of the largest group of touching rings, holes filled.
Path outline_of(const Paths& outers);

Polygon to_polygon(const Path& path);

}  // namespace vertx::detail
