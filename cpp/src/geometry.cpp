#include "vertx/geometry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "clip.hpp"

namespace vertx {
namespace detail {

namespace {

constexpr double kInvScale2 = 1.0 / (kScale * kScale);

// Sign of the cross product (b - a) x (c - a), exact on the integer grid: with |coordinate| <=
// kMaxAbsCoordinate * kScale < 2^30, differences stay below 2^31 and products below 2^62.
int orientation(const IntPoint& a, const IntPoint& b, const IntPoint& c) {
    const cInt cross = (b.X - a.X) * (c.Y - a.Y) - (b.Y - a.Y) * (c.X - a.X);
    return (cross > 0) - (cross < 0);
}
static_assert(kMaxAbsCoordinate * kScale < 1073741824.0, "quantised coordinates must stay below 2^30");

// Whether b lies strictly on the way from a to c on one straight line (then it can be dropped).
bool passes_straight(const IntPoint& a, const IntPoint& b, const IntPoint& c) {
    if (orientation(a, b, c) != 0) return false;
    return (b.X - a.X) * (c.X - b.X) + (b.Y - a.Y) * (c.Y - b.Y) > 0;
}

// Nearest multiple of 1/kScale, halves away from zero: sign(v) * floor(|v| + 0.5), written so
// that it needs no library call (truncation equals floor for non-negative values).
inline cInt to_grid(double value) {
    const double v = value * kScale;
    const cInt magnitude = static_cast<cInt>(std::fabs(v) + 0.5);
    return v < 0 ? -magnitude : magnitude;
}

}  // namespace

Path quantise(const Polygon& polygon) {
    Path path;
    path.reserve(polygon.size());
    for (const Point& p : polygon) {
        const IntPoint q(to_grid(p.x), to_grid(p.y));
        if (!path.empty() && path.back() == q) continue;
        // Traced contours put a vertex on every pixel of a straight run; such in-between vertices
        // do not change the region, so drop them here once.
        if (path.size() >= 2 && passes_straight(path[path.size() - 2], path.back(), q)) path.pop_back();
        path.push_back(q);
    }
    while (path.size() > 1 && path.front() == path.back()) path.pop_back();
    // The same at the seam where the ring closes.
    while (path.size() > 3 && passes_straight(path[path.size() - 2], path.back(), path.front())) path.pop_back();
    while (path.size() > 3 && passes_straight(path.back(), path.front(), path[1])) path.erase(path.begin());
    return path;
}

double signed_area_px2(const Path& path) {
    const size_t n = path.size();
    if (n < 3) return 0.0;
    // Products of coordinates relative to the first vertex stay exact in double for any
    // outline smaller than ~90000 px.
    const double ox = static_cast<double>(path[0].X), oy = static_cast<double>(path[0].Y);
    double twice = 0.0;
    for (size_t i = 1; i + 1 < n; ++i) {
        const double ax = path[i].X - ox, ay = path[i].Y - oy;
        const double bx = path[i + 1].X - ox, by = path[i + 1].Y - oy;
        twice += ax * by - bx * ay;
    }
    return 0.5 * twice * kInvScale2;
}

Point centroid_of(const Paths& paths) {
    double area2 = 0.0, cx = 0.0, cy = 0.0;
    bool have_origin = false;
    double ox = 0.0, oy = 0.0;
    size_t vertices = 0;
    double sx = 0.0, sy = 0.0;
    for (const Path& path : paths) {
        const size_t n = path.size();
        if (n == 0) continue;
        if (!have_origin) {
            ox = static_cast<double>(path[0].X);
            oy = static_cast<double>(path[0].Y);
            have_origin = true;
        }
        for (size_t i = 0; i < n; ++i) {
            const double ax = path[i].X - ox, ay = path[i].Y - oy;
            const size_t j = (i + 1 == n) ? 0 : i + 1;
            const double bx = path[j].X - ox, by = path[j].Y - oy;
            const double cross = ax * by - bx * ay;
            area2 += cross;
            cx += (ax + bx) * cross;
            cy += (ay + by) * cross;
            sx += ax;
            sy += ay;
        }
        vertices += n;
    }
    if (!have_origin) return Point{0.0, 0.0};
    if (area2 == 0.0) {
        return Point{(ox + sx / static_cast<double>(vertices)) / kScale,
                     (oy + sy / static_cast<double>(vertices)) / kScale};
    }
    return Point{(ox + cx / (3.0 * area2)) / kScale, (oy + cy / (3.0 * area2)) / kScale};
}

Box box_of(const Paths& paths) {
    Box box;
    for (const Path& path : paths) {
        for (const IntPoint& p : path) {
            if (box.empty()) {
                box = Box{p.X, p.Y, p.X, p.Y};
            } else {
                box.x0 = std::min(box.x0, p.X);
                box.y0 = std::min(box.y0, p.Y);
                box.x1 = std::max(box.x1, p.X);
                box.y1 = std::max(box.y1, p.Y);
            }
        }
    }
    return box;
}

bool boxes_touch(const Box& a, const Box& b) {
    return !a.empty() && !b.empty() && a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 &&
           b.y0 <= a.y1;
}

double box_overlap_px2(const Box& a, const Box& b) {
    if (!boxes_touch(a, b)) return 0.0;
    const double w = static_cast<double>(std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
    const double h = static_cast<double>(std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
    return w * h * kInvScale2;
}

namespace {

double total_area_px2(const Paths& paths) {
    double area = 0.0;
    for (const Path& path : paths) area += signed_area_px2(path);
    return area;
}

size_t distinct_points(const Path& path) {
    // Only "fewer than 3" matters, so stop early.
    std::vector<IntPoint> seen;
    for (const IntPoint& p : path) {
        if (std::find(seen.begin(), seen.end(), p) == seen.end()) {
            seen.push_back(p);
            if (seen.size() >= 3) break;
        }
    }
    return seen.size();
}

bool within(const IntPoint& a, const IntPoint& b, const IntPoint& p) {
    return std::min(a.X, b.X) <= p.X && p.X <= std::max(a.X, b.X) && std::min(a.Y, b.Y) <= p.Y &&
           p.Y <= std::max(a.Y, b.Y);
}

// Whether closed segments [a, b] and [c, d] share any point (touching counts).
bool segments_meet(const IntPoint& a, const IntPoint& b, const IntPoint& c, const IntPoint& d) {
    const int o1 = orientation(a, b, c), o2 = orientation(a, b, d);
    const int o3 = orientation(c, d, a), o4 = orientation(c, d, b);
    if (o1 != o2 && o3 != o4) return true;
    return (o1 == 0 && within(a, b, c)) || (o2 == 0 && within(a, b, d)) || (o3 == 0 && within(c, d, a)) ||
           (o4 == 0 && within(c, d, b));
}

}  // namespace

// True when the ring (no repeated consecutive vertices) neither touches nor crosses itself and
// never folds back along an edge. Such a ring encloses its interior once, so the non-zero region
// is the ring itself and Clipper's repair can be skipped. Sweep over edges sorted by lowest y,
// testing each against the edges whose y-range it overlaps.
bool is_simple_ring(const Path& path) {
    const size_t n = path.size();
    if (n < 3 || n >= (size_t{1} << 24)) return false;  // huge rings: let Clipper decide
    for (size_t i = 0, j = 1, k = 2; i < n; ++i, j = (j + 1 == n ? 0 : j + 1), k = (k + 1 == n ? 0 : k + 1)) {
        // Adjacent edges may only share their common vertex: a fold-back is a collinear overlap.
        const IntPoint& a = path[i];
        const IntPoint& b = path[j];
        const IntPoint& c = path[k];
        if (orientation(a, b, c) == 0 && (b.X - a.X) * (c.X - b.X) + (b.Y - a.Y) * (c.Y - b.Y) < 0) return false;
    }
    struct Edge {
        cInt y_high, x_low, x_high;
    };
    std::vector<Edge> edges(n);
    // Sort keys: lowest y of the edge (offset to be non-negative, < 2^31) above the edge index.
    std::vector<uint64_t> order(n);
    cInt y_min = path[0].Y;
    for (const IntPoint& p : path) y_min = std::min(y_min, p.Y);
    for (size_t i = 0; i < n; ++i) {
        const IntPoint& p = path[i];
        const IntPoint& q = path[i + 1 == n ? 0 : i + 1];
        edges[i] = Edge{std::max(p.Y, q.Y), std::min(p.X, q.X), std::max(p.X, q.X)};
        order[i] = (static_cast<uint64_t>(std::min(p.Y, q.Y) - y_min) << 24) | i;
    }
    std::sort(order.begin(), order.end());
    const uint32_t last = static_cast<uint32_t>(n - 1);
    std::vector<uint32_t> active;
    active.reserve(16);
    for (const uint64_t key : order) {
        const uint32_t e = static_cast<uint32_t>(key & 0xFFFFFF);
        const cInt y_low = static_cast<cInt>(key >> 24) + y_min;
        const Edge& edge = edges[e];
        size_t kept = 0;
        for (const uint32_t f : active) {
            if (edges[f].y_high >= y_low) active[kept++] = f;
        }
        active.resize(kept);
        const IntPoint& a = path[e];
        const IntPoint& b = path[e == last ? 0 : e + 1];
        for (const uint32_t f : active) {
            const Edge& other = edges[f];
            if (other.x_high < edge.x_low || edge.x_high < other.x_low) continue;
            const uint32_t d = e > f ? e - f : f - e;
            if (d == 1 || d == last) continue;  // adjacent edges: checked above
            if (segments_meet(a, b, path[f], path[f == last ? 0 : f + 1])) return false;
        }
        active.push_back(e);
    }
    return true;
}

namespace {

// One Clipper boolean operation on clean paths (non-zero rule on both sides). Clipper 6's default
// mode can label an output ring that touches another one as a hole when it is not (so its signed
// area has the wrong sign); with several output rings the operation is therefore repeated in
// strict mode, where output rings never touch. A single output ring is always an outer ring.
Paths clip_paths(ClipperLib::ClipType operation, const Paths& subject, const Paths& clip, bool strict = false,
                 ClipperLib::PolyFillType fill = ClipperLib::pftNonZero) {
    Paths solution;
    for (const bool strictly_simple : {strict, true}) {
        ClipperLib::Clipper clipper;
        clipper.StrictlySimple(strictly_simple);
        if (!subject.empty()) clipper.AddPaths(subject, ClipperLib::ptSubject, true);
        if (!clip.empty()) clipper.AddPaths(clip, ClipperLib::ptClip, true);
        solution.clear();
        clipper.Execute(operation, solution, fill, fill);
        if (solution.size() <= 1 || strictly_simple) break;
    }
    if (solution.size() > 1) {
        // Strict mode can leave parts of one region as separate rings along a shared edge; a
        // second union of the (now consistently oriented) rings joins them.
        ClipperLib::Clipper clipper;
        clipper.StrictlySimple(true);
        clipper.AddPaths(solution, ClipperLib::ptSubject, true);
        Paths joined;
        clipper.Execute(ClipperLib::ctUnion, joined, ClipperLib::pftNonZero, ClipperLib::pftNonZero);
        if (joined.size() < solution.size()) solution = std::move(joined);
    }
    if (solution.size() == 1 && signed_area_px2(solution[0]) < 0) {
        std::reverse(solution[0].begin(), solution[0].end());
    }
    return solution;
}

}  // namespace

Region make_region(const Polygon& polygon) {
    Region region;
    Path path = quantise(polygon);
    if (path.size() < 3 || distinct_points(path) < 3) return region;
    if (is_simple_ring(path)) {
        const double area = signed_area_px2(path);
        if (area == 0.0) return region;
        if (area < 0.0) std::reverse(path.begin(), path.end());
        region.area = std::fabs(area);
        region.paths.push_back(std::move(path));
        region.box = box_of(region.paths);
        return region;
    }
    // Repair. Where the ring winds +1 on one side of an edge and -1 on the other, both sides
    // belong to the non-zero region, and Clipper 6 mislabels such parts in a single non-zero
    // pass; so take the positively and the negatively wound parts separately (Clipper returns
    // both with outer rings positive) and unite them.
    const Paths ring{std::move(path)};
    const Paths positive = clip_paths(ClipperLib::ctUnion, ring, Paths{}, false, ClipperLib::pftPositive);
    const Paths negative = clip_paths(ClipperLib::ctUnion, ring, Paths{}, false, ClipperLib::pftNegative);
    if (negative.empty() || positive.empty()) {
        region.paths = negative.empty() ? positive : negative;
    } else {
        region.paths = clip_paths(ClipperLib::ctUnion, positive, negative);
    }
    region.area = total_area_px2(region.paths);
    if (!(region.area > 0.0)) {
        region.paths.clear();
        region.area = 0.0;
        return region;
    }
    region.box = box_of(region.paths);
    return region;
}

namespace {

// A directed edge of the rings being outlined.
struct DirectedEdge {
    IntPoint from, to;
    uint32_t ring;
};

bool point_less(const IntPoint& a, const IntPoint& b) { return a.X < b.X || (a.X == b.X && a.Y < b.Y); }

// Splits every edge at the vertices (of any ring) lying strictly inside it, so that rings which
// touch meet at shared vertices. Vertices are scanned in x order within each edge's x range.
std::vector<DirectedEdge> noded_edges(const Paths& rings) {
    std::vector<IntPoint> vertices;
    for (const Path& ring : rings) vertices.insert(vertices.end(), ring.begin(), ring.end());
    std::sort(vertices.begin(), vertices.end(), point_less);
    vertices.erase(std::unique(vertices.begin(), vertices.end()), vertices.end());
    std::vector<DirectedEdge> edges;
    std::vector<IntPoint> inside;
    for (uint32_t r = 0; r < rings.size(); ++r) {
        const Path& ring = rings[r];
        for (size_t i = 0; i < ring.size(); ++i) {
            const IntPoint& q = ring[i];
            const IntPoint& t = ring[i + 1 == ring.size() ? 0 : i + 1];
            inside.clear();
            const cInt x0 = std::min(q.X, t.X), x1 = std::max(q.X, t.X);
            const cInt y0 = std::min(q.Y, t.Y), y1 = std::max(q.Y, t.Y);
            auto it = vertices.begin();
            // Clipper rounds the points where edges meet to the grid, so a part touching an
            // edge may end up to one grid step beside it: such a vertex counts as on the edge.
            const double dx = static_cast<double>(t.X - q.X), dy = static_cast<double>(t.Y - q.Y);
            const double length2 = dx * dx + dy * dy;
            it = std::lower_bound(vertices.begin(), vertices.end(), IntPoint(x0 - 1, y0 - 1), point_less);
            for (; it != vertices.end() && it->X <= x1 + 1; ++it) {
                const IntPoint& p = *it;
                if (p.Y < y0 - 1 || p.Y > y1 + 1 || p == q || p == t) continue;
                const double px = static_cast<double>(p.X - q.X), py = static_cast<double>(p.Y - q.Y);
                const double along = px * dx + py * dy, cross = dx * py - dy * px;
                if (along > 0.0 && along < length2 && cross * cross <= length2) inside.push_back(p);
            }
            // Order the split points from q to t.
            std::sort(inside.begin(), inside.end(), [&](const IntPoint& a, const IntPoint& b) {
                return std::llabs(a.X - q.X) + std::llabs(a.Y - q.Y) < std::llabs(b.X - q.X) + std::llabs(b.Y - q.Y);
            });
            IntPoint from = q;
            for (const IntPoint& p : inside) {
                edges.push_back(DirectedEdge{from, p, r});
                from = p;
            }
            edges.push_back(DirectedEdge{from, t, r});
        }
    }
    return edges;
}

// Whether, turning counter-clockwise from direction d, vector a comes before vector b. Angles
// are taken in (0, 2*pi]: the direction d itself (going back the way one came) comes last.
bool turns_before(const IntPoint& d, const IntPoint& a, const IntPoint& b) {
    auto half = [&](const IntPoint& v) {
        const cInt cross = d.X * v.Y - d.Y * v.X;
        const cInt dot = d.X * v.X + d.Y * v.Y;
        return (cross > 0 || (cross == 0 && dot < 0)) ? 0 : 1;
    };
    const int ha = half(a), hb = half(b);
    if (ha != hb) return ha < hb;
    return a.X * b.Y - a.Y * b.X > 0;
}

size_t find_root(std::vector<size_t>& parent, size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

}  // namespace

Path outline_of(const Paths& outers) {
    if (outers.empty()) return Path{};
    if (outers.size() == 1 && is_simple_ring(outers[0])) return outers[0];
    std::vector<DirectedEdge> edges = noded_edges(outers);
    // Outgoing edges grouped by their start vertex.
    std::sort(edges.begin(), edges.end(), [](const DirectedEdge& a, const DirectedEdge& b) {
        return point_less(a.from, b.from);
    });
    auto outgoing = [&](const IntPoint& v) {
        return std::equal_range(edges.begin(), edges.end(), DirectedEdge{v, v, 0},
                                [](const DirectedEdge& a, const DirectedEdge& b) { return point_less(a.from, b.from); });
    };
    // Rings that share a vertex belong to one group.
    std::vector<size_t> parent(outers.size());
    std::iota(parent.begin(), parent.end(), size_t{0});
    for (size_t i = 1; i < edges.size(); ++i) {
        if (edges[i].from == edges[i - 1].from) {
            parent[find_root(parent, edges[i].ring)] = find_root(parent, edges[i - 1].ring);
        }
    }
    // Trace the outer boundary of each group from its lowest (then leftmost) vertex, keeping the
    // outside on the right: at every vertex leave by the first edge counter-clockwise from the
    // way back. Each traced ring is the group's outline with its holes filled; keep the largest.
    Path best;
    double best_area = 0.0;
    std::vector<bool> traced(outers.size(), false);
    for (size_t g = 0; g < outers.size(); ++g) {
        const size_t root = find_root(parent, g);
        if (traced[root]) continue;
        traced[root] = true;
        const DirectedEdge* start = nullptr;
        for (const DirectedEdge& e : edges) {
            if (find_root(parent, e.ring) != root) continue;
            if (start == nullptr || e.from.Y < start->from.Y || (e.from.Y == start->from.Y && e.from.X < start->from.X)) {
                start = &e;
            }
        }
        Path ring;
        IntPoint back(0, -1);  // nothing lies below the start vertex
        IntPoint at = start->from;
        const DirectedEdge* first = nullptr;
        bool closed = false;
        for (size_t step = 0; step <= edges.size(); ++step) {
            const auto range = outgoing(at);
            const DirectedEdge* next = nullptr;
            for (auto it = range.first; it != range.second; ++it) {
                const IntPoint v(it->to.X - at.X, it->to.Y - at.Y);
                if (next == nullptr || turns_before(back, v, IntPoint(next->to.X - at.X, next->to.Y - at.Y))) next = &*it;
            }
            if (next == nullptr) break;
            if (first == nullptr) {
                first = next;
            } else if (next == first) {
                closed = true;
                break;
            }
            ring.push_back(at);
            back = IntPoint(at.X - next->to.X, at.Y - next->to.Y);
            at = next->to;
        }
        // A vertex snapped onto a nearby edge can leave a zero-width spike: fold it away.
        Path clean;
        clean.reserve(ring.size());
        auto folds = [](const IntPoint& a, const IntPoint& b, const IntPoint& c) {
            return a == b || b == c ||
                   (orientation(a, b, c) == 0 && (b.X - a.X) * (c.X - b.X) + (b.Y - a.Y) * (c.Y - b.Y) < 0);
        };
        for (const IntPoint& p : ring) {
            clean.push_back(p);
            while (clean.size() >= 3 && folds(clean[clean.size() - 3], clean[clean.size() - 2], clean.back())) {
                clean.erase(clean.end() - 2);
            }
        }
        for (bool changed = true; changed && clean.size() >= 3;) {
            changed = false;
            const size_t n = clean.size();
            if (folds(clean[n - 2], clean[n - 1], clean[0])) {
                clean.pop_back();
                changed = true;
            } else if (folds(clean[n - 1], clean[0], clean[1])) {
                clean.erase(clean.begin());
                changed = true;
            }
        }
        ring = clean.size() >= 3 ? std::move(clean) : Path{};
        const double area = closed ? signed_area_px2(ring) : 0.0;
        if (area > best_area) {
            best_area = area;
            best = std::move(ring);
        }
    }
    if (best.empty()) {
        // Not reachable for rings that never cross; keep the largest ring rather than nothing.
        for (const Path& ring : outers) {
            const double area = signed_area_px2(ring);
            if (area > best_area) {
                best_area = area;
                best = ring;
            }
        }
    }
    return best;
}

UnionResult union_of(const Paths& a, const Paths& b) {
    UnionResult result;
    const Paths solution = clip_paths(ClipperLib::ctUnion, a, b);
    for (const Path& path : solution) {
        const double area = signed_area_px2(path);
        result.area += area;
        if (area > 0.0) result.outers.push_back(path);
    }
    return result;
}

Region region_of_clean_path(Path path) {
    Region region;
    region.area = signed_area_px2(path);
    if (!(region.area > 0.0)) return Region{};
    region.paths.push_back(std::move(path));
    region.box = box_of(region.paths);
    return region;
}

double intersection_area_px2(const Paths& subject, const Paths& clip) {
    if (subject.empty() || clip.empty()) return 0.0;
    return std::max(0.0, total_area_px2(clip_paths(ClipperLib::ctIntersection, subject, clip)));
}

Polygon to_polygon(const Path& path) {
    Polygon polygon;
    polygon.reserve(path.size());
    for (const IntPoint& p : path) {
        polygon.push_back(Point{static_cast<double>(p.X) / kScale, static_cast<double>(p.Y) / kScale});
    }
    return polygon;
}

}  // namespace detail

void validate_polygon(const Polygon& polygon, const std::string& name) {
    if (polygon.size() < 3) {
        std::ostringstream msg;
        msg << name << ": polygon needs at least 3 points, got " << polygon.size();
        throw InvalidInput(msg.str());
    }
    for (const Point& p : polygon) {
        for (const double v : {p.x, p.y}) {
            if (std::isnan(v)) throw InvalidInput(name + ": polygon has NaN coordinates");
            if (std::isinf(v)) throw InvalidInput(name + ": polygon has infinite coordinates");
            if (std::fabs(v) > kMaxAbsCoordinate) {
                std::ostringstream msg;
                msg << name << ": coordinate " << v << " is outside the supported range of +-"
                    << kMaxAbsCoordinate << " px";
                throw InvalidInput(msg.str());
            }
        }
    }
}

double polygon_area(const Polygon& polygon) {
    validate_polygon(polygon, "polygon");
    return detail::make_region(polygon).area;
}

double intersection_area(const Polygon& a, const Polygon& b) {
    validate_polygon(a, "a");
    validate_polygon(b, "b");
    const detail::Region ra = detail::make_region(a);
    const detail::Region rb = detail::make_region(b);
    if (!detail::boxes_touch(ra.box, rb.box)) return 0.0;
    return detail::intersection_area_px2(ra.paths, rb.paths);
}

Polygon polygon_union(const Polygon& a, const Polygon& b) {
    validate_polygon(a, "a");
    validate_polygon(b, "b");
    const detail::Region ra = detail::make_region(a);
    const detail::Region rb = detail::make_region(b);
    return detail::to_polygon(detail::outline_of(detail::union_of(ra.paths, rb.paths).outers));
}

Point polygon_centroid(const Polygon& polygon) {
    validate_polygon(polygon, "polygon");
    const detail::Region region = detail::make_region(polygon);
    if (region.area > 0.0) return detail::centroid_of(region.paths);
    Point mean;
    for (const Point& p : polygon) {
        mean.x += p.x;
        mean.y += p.y;
    }
    mean.x /= static_cast<double>(polygon.size());
    mean.y /= static_cast<double>(polygon.size());
    return mean;
}

}  // namespace vertx
