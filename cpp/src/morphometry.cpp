#include "vertx/morphometry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace vertx {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = 180.0 / kPi;

// Levels (1-based) used by the spine measures.
constexpr int kC2 = 2, kC3 = 3, kC7 = 7, kT2 = 9, kT11 = 18, kL1 = 20, kL5 = 24, kS1 = 25;
constexpr int kLevelCountMorphometry = 25;  // C1..S1

Point operator+(Point a, Point b) { return {a.x + b.x, a.y + b.y}; }
Point operator-(Point a, Point b) { return {a.x - b.x, a.y - b.y}; }
Point operator*(double s, Point a) { return {s * a.x, s * a.y}; }
double dot(Point a, Point b) { return a.x * b.x + a.y * b.y; }
double cross(Point a, Point b) { return a.x * b.y - a.y * b.x; }
double norm(Point a) { return std::hypot(a.x, a.y); }
Point unit(Point a) {
    const double n = norm(a);
    return n > 0 ? Point{a.x / n, a.y / n} : Point{0.0, 0.0};
}

// Anterior axis from the caudal axis: v turned by 90 degrees towards the patient's front.
Point anterior_of(Point v, Facing facing) {
    return facing == Facing::Right ? Point{v.y, -v.x} : Point{-v.y, v.x};
}
// Inverse of anterior_of.
Point caudal_of(Point u, Facing facing) {
    return facing == Facing::Right ? Point{-u.y, u.x} : Point{u.y, -u.x};
}

double wrap_deg(double deg) {
    while (deg > 180.0) deg -= 360.0;
    while (deg <= -180.0) deg += 360.0;
    return deg;
}

// A length or a direction in physical units (mm) when the spacing is known.
Point physical(Point w, const MorphometryParams& params) {
    return params.has_spacing() ? Point{w.x * params.spacing_x_mm, w.y * params.spacing_y_mm} : w;
}
double length_mm(Point w, const MorphometryParams& params) {
    return params.has_spacing() ? norm(physical(w, params)) : kNaN;
}

// Tilt of a posterior-to-anterior direction: + when its anterior end lies lower in the image.
double tilt_deg(Point posterior_to_anterior, Facing facing, const MorphometryParams& params) {
    const Point w = physical(posterior_to_anterior, params);
    const double s = facing == Facing::Right ? 1.0 : -1.0;
    return std::atan2(w.y, s * w.x) * kDeg;
}

// ---- outline preparation -------------------------------------------------------------------

// The ring resampled at even arc length; empty when it has no length.
std::vector<Point> resample(const Polygon& ring) {
    const size_t n = ring.size();
    std::vector<double> cumulative(n + 1, 0.0);
    for (size_t i = 0; i < n; ++i) cumulative[i + 1] = cumulative[i] + norm(ring[(i + 1) % n] - ring[i]);
    const double perimeter = cumulative[n];
    if (!(perimeter > 0.0)) return {};
    // About two samples per pixel of a typical outline, within bounds that keep small or
    // millimetre-scaled outlines well sampled and huge ones cheap.
    const size_t m = static_cast<size_t>(std::clamp(perimeter / 1.0, 200.0, 2048.0));
    std::vector<Point> out;
    out.reserve(m);
    size_t seg = 0;
    for (size_t k = 0; k < m; ++k) {
        const double s = perimeter * static_cast<double>(k) / static_cast<double>(m);
        while (seg + 1 < n && cumulative[seg + 1] <= s) ++seg;
        const double len = cumulative[seg + 1] - cumulative[seg];
        const double t = len > 0 ? (s - cumulative[seg]) / len : 0.0;
        const Point a = ring[seg], b = ring[(seg + 1) % n];
        out.push_back(a + t * (b - a));
    }
    return out;
}

double shoelace(const std::vector<Point>& ring) {
    double twice = 0.0;
    for (size_t i = 0, n = ring.size(); i < n; ++i) twice += cross(ring[i], ring[(i + 1) % n]);
    return 0.5 * twice;
}

// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up sense.
std::vector<Point> convex_hull(std::vector<Point> pts) {
    std::sort(pts.begin(), pts.end(), [](Point a, Point b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
    if (pts.size() < 3) return pts;
    std::vector<Point> hull(2 * pts.size());
    size_t k = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
        while (k >= 2 && cross(hull[k - 1] - hull[k - 2], pts[i] - hull[k - 2]) <= 0) --k;
        hull[k++] = pts[i];
    }
    for (size_t i = pts.size() - 1, t = k + 1; i-- > 0;) {
        while (k >= t && cross(hull[k - 1] - hull[k - 2], pts[i] - hull[k - 2]) <= 0) --k;
        hull[k++] = pts[i];
    }
    hull.resize(k - 1);
    return hull;
}

// Axis of the minimum-area bounding rectangle (rotating over the hull edges) nearest to `hint`
// (both signs and both sides considered); `hint` itself when the rectangle disagrees by more
// than `max_deg` degrees (near-square bodies have no reliable rectangle axis).
Point rectangle_axis_near(const std::vector<Point>& pts, Point hint, double max_deg) {
    const std::vector<Point> hull = convex_hull(pts);
    if (hull.size() < 3) return hint;
    double best_area = std::numeric_limits<double>::infinity();
    Point best{0.0, 0.0};
    for (size_t i = 0; i < hull.size(); ++i) {
        const Point e = unit(hull[(i + 1) % hull.size()] - hull[i]);
        if (norm(e) == 0.0) continue;
        const Point f{-e.y, e.x};
        double a0 = 1e300, a1 = -1e300, b0 = 1e300, b1 = -1e300;
        for (const Point& p : hull) {
            a0 = std::min(a0, dot(p, e)), a1 = std::max(a1, dot(p, e));
            b0 = std::min(b0, dot(p, f)), b1 = std::max(b1, dot(p, f));
        }
        const double area = (a1 - a0) * (b1 - b0);
        if (area < best_area) best_area = area, best = e;
    }
    if (norm(best) == 0.0) return hint;
    Point candidate = best;
    for (const Point c : {best, Point{-best.y, best.x}, Point{-best.x, -best.y}, Point{best.y, -best.x}}) {
        if (dot(c, hint) > dot(candidate, hint)) candidate = c;
    }
    return dot(candidate, hint) >= std::cos(max_deg / kDeg) - 1e-12 ? candidate : hint;
}

// ---- robust side fits ----------------------------------------------------------------------

// y = c0 + c1 t + c2 t^2 with t = (x - x0) / xs.
struct Curve {
    double x0 = 0.0, xs = 1.0, c0 = 0.0, c1 = 0.0, c2 = 0.0;
    double operator()(double x) const {
        const double t = (x - x0) / xs;
        return c0 + t * (c1 + t * c2);
    }
};

// Solves the (degree+1) x (degree+1) weighted normal equations; false when singular.
bool weighted_fit(const std::vector<double>& t, const std::vector<double>& y, const std::vector<double>& w,
                  int degree, double coef[3]) {
    const int k = degree + 1;
    double a[3][4] = {};
    for (size_t i = 0; i < t.size(); ++i) {
        if (w[i] <= 0.0) continue;
        const double basis[3] = {1.0, t[i], t[i] * t[i]};
        for (int r = 0; r < k; ++r) {
            for (int c = 0; c < k; ++c) a[r][c] += w[i] * basis[r] * basis[c];
            a[r][k] += w[i] * basis[r] * y[i];
        }
    }
    for (int col = 0; col < k; ++col) {  // Gaussian elimination with partial pivoting
        int pivot = col;
        for (int r = col + 1; r < k; ++r) {
            if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
        }
        if (!(std::fabs(a[pivot][col]) > 1e-12 * std::max(1.0, std::fabs(a[0][0])))) return false;
        for (int c = 0; c <= k; ++c) std::swap(a[col][c], a[pivot][c]);
        for (int r = 0; r < k; ++r) {
            if (r == col) continue;
            const double f = a[r][col] / a[col][col];
            for (int c = col; c <= k; ++c) a[r][c] -= f * a[col][c];
        }
    }
    for (int r = 0; r < 3; ++r) coef[r] = r < k ? a[r][k] / a[r][r] : 0.0;
    return true;
}

double median_of(std::vector<double> v) {
    if (v.empty()) return kNaN;
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)));
    return m;
}

// Refinements of a body's frame (it turns by well under a degree after the first).
constexpr int kFrameIterations = 5;

// Spur (osteophyte) detection: the share of an endplate next to a corner that is searched, the
// outward excursion (a share of the body's height) above which the corner has a spur, and the
// margin such a corner then gets in both of its sides' fits.
constexpr double kSpurZone = 0.25;
constexpr double kSpurHeight = 0.03;
constexpr double kSpurMargin = 0.3;
// Whether point p lies inside the ring (a[k], b[k]) (even-odd rule).
bool inside_ring(const std::vector<double>& a, const std::vector<double>& b, Point p) {
    bool inside = false;
    for (size_t i = 0, n = a.size(), j = n - 1; i < n; j = i++) {
        if ((b[i] > p.y) != (b[j] > p.y) && p.x < (a[j] - a[i]) * (p.y - b[i]) / (b[j] - b[i]) + a[i]) inside = !inside;
    }
    return inside;
}

// Tukey biweight IRLS from the coefficients in `coef`; `floor` is the smallest residual scale.
// Returns the robust residual scale it ended with (NaN when the system became singular at once).
double biweight(const std::vector<double>& t, const std::vector<double>& y, int degree, double floor, double coef[3]) {
    const size_t n = t.size();
    std::vector<double> r(n), abs_r(n), w(n, 1.0);
    double sigma = floor;
    for (int iteration = 0; iteration < 20; ++iteration) {
        for (size_t i = 0; i < n; ++i) {
            r[i] = y[i] - (coef[0] + t[i] * (coef[1] + t[i] * coef[2]));
            abs_r[i] = std::fabs(r[i]);
        }
        sigma = std::max(1.4826 * median_of(abs_r), floor);
        const double c = 4.685 * sigma;
        size_t kept = 0;
        for (size_t i = 0; i < n; ++i) {
            const double q = r[i] / c;
            w[i] = std::fabs(q) < 1.0 ? (1.0 - q * q) * (1.0 - q * q) : 0.0;
            kept += w[i] > 0.0;
        }
        if (kept < static_cast<size_t>(degree + 3)) break;
        double next[3];
        if (!weighted_fit(t, y, w, degree, next)) break;
        const double change = std::fabs(next[0] - coef[0]) + std::fabs(next[1] - coef[1]) + std::fabs(next[2] - coef[2]);
        std::copy(next, next + 3, coef);
        if (change < 1e-7 * (1.0 + std::fabs(coef[0]))) break;
    }
    return sigma;
}

// A line y = c0 + c1 t by the same biweight; returns its residual scale, NaN when singular.
double biweight_line(const std::vector<double>& t, const std::vector<double>& y, double floor, double coef[3]) {
    std::vector<double> w(t.size(), 1.0);
    if (!weighted_fit(t, y, w, 1, coef)) return kNaN;
    return biweight(t, y, 1, floor, coef);
}

// A side as y = c0 + c1 t + c2 t^2 (a concave endplate, a waisted wall), linear with fewer than
// 8 points, by iteratively reweighted least squares with Tukey's biweight; `floor` is the
// smallest residual scale (a share of the side's length), so exact data and pixel staircases do
// not make every point an outlier. `sigma` gets the robust residual scale. False with < 2 points.
bool robust_fit(const std::vector<double>& x, const std::vector<double>& y, double floor, Curve& out, bool& linear,
                double& sigma) {
    const size_t n = x.size();
    if (n < 2) return false;
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    out = Curve{};
    out.x0 = 0.5 * (*lo + *hi);
    out.xs = 0.5 * (*hi - *lo);
    if (!(out.xs > 0.0)) return false;
    std::vector<double> t(n), w(n, 1.0);
    for (size_t i = 0; i < n; ++i) t[i] = (x[i] - out.x0) / out.xs;
    int degree = n >= 8 ? 2 : 1;
    double coef[3] = {0.0, 0.0, 0.0};
    if (!weighted_fit(t, y, w, degree, coef)) {
        degree = 1;
        if (!weighted_fit(t, y, w, degree, coef)) return false;
    }
    sigma = biweight(t, y, degree, floor, coef);
    out.c0 = coef[0], out.c1 = coef[1], out.c2 = coef[2];
    linear = degree == 1;
    return true;
}

// Where curve b = endplate(a) meets curve a = wall(b), starting from a0 (both slopes are far
// below 1 for any body-like outline, so the fixed-point iteration contracts quickly).
bool meet(const Curve& endplate, const Curve& wall, double a0, double size, double& a, double& b) {
    a = a0;
    for (int i = 0; i < 100; ++i) {
        b = endplate(a);
        const double next = wall(b);
        if (!std::isfinite(next)) return false;
        if (std::fabs(next - a) < 1e-10 * (1.0 + size)) {
            a = next;
            b = endplate(a);
            return std::isfinite(b);
        }
        a = next;
    }
    return false;
}

struct Side {
    Curve curve;
    bool linear = false;
};

}  // namespace

// ---- enums and grades ----------------------------------------------------------------------

const char* to_string(Facing facing) { return facing == Facing::Right ? "right" : "left"; }

Facing parse_facing(const std::string& text, const std::string& name) {
    if (text == "left") return Facing::Left;
    if (text == "right") return Facing::Right;
    throw InvalidInput(name + ": expected 'left' or 'right', got '" + text + "'");
}

const char* to_string(Deformity deformity) {
    switch (deformity) {
        case Deformity::Wedge: return "wedge";
        case Deformity::Biconcave: return "biconcave";
        case Deformity::Crush: return "crush";
        default: return "none";
    }
}

void MorphometryParams::validate() const {
    if (!(side_margin >= 0.0 && side_margin <= 0.4)) throw InvalidInput("side_margin: must lie in [0, 0.4]");
    if (!(min_slip_percent >= 0.0 && std::isfinite(min_slip_percent))) {
        throw InvalidInput("min_slip_percent: must be a finite number >= 0");
    }
    const bool x_ok = spacing_x_mm == 0.0 || (spacing_x_mm > 0.0 && std::isfinite(spacing_x_mm));
    const bool y_ok = spacing_y_mm == 0.0 || (spacing_y_mm > 0.0 && std::isfinite(spacing_y_mm));
    if (!x_ok || !y_ok || ((spacing_x_mm > 0.0) != (spacing_y_mm > 0.0))) {
        throw InvalidInput("pixel_spacing: expected two finite positive numbers (mm), or none");
    }
}

int genant_grade_of_reduction(double reduction) {
    if (std::isnan(reduction)) return -1;
    if (reduction < 0.20) return 0;
    if (reduction < 0.25) return 1;
    if (reduction <= 0.40) return 2;
    return 3;
}

GenantResult genant_grade(double ha, double hm, double hp, double reference_posterior) {
    GenantResult g;
    const bool heights_ok = std::isfinite(ha) && std::isfinite(hm) && std::isfinite(hp) && hp > 0.0;
    g.wedge_reduction = heights_ok ? 1.0 - ha / hp : kNaN;
    g.biconcave_reduction = heights_ok ? 1.0 - hm / hp : kNaN;
    g.crush_reduction = heights_ok && std::isfinite(reference_posterior) && reference_posterior > 0.0
                            ? 1.0 - hp / reference_posterior
                            : kNaN;
    if (!heights_ok) {
        g.grade = -1;
        g.reduction = kNaN;
        return g;
    }
    g.reduction = g.wedge_reduction;
    Deformity kind = Deformity::Wedge;
    if (g.biconcave_reduction > g.reduction) g.reduction = g.biconcave_reduction, kind = Deformity::Biconcave;
    if (g.crush_reduction > g.reduction) g.reduction = g.crush_reduction, kind = Deformity::Crush;
    g.grade = genant_grade_of_reduction(g.reduction);
    g.deformity = g.grade > 0 ? kind : Deformity::None;
    return g;
}

int meyerding_grade(double slip_percent, double min_percent) {
    if (std::isnan(slip_percent)) return -1;
    const double s = std::fabs(slip_percent);
    if (s < min_percent) return 0;
    if (s <= 25.0) return 1;
    if (s <= 50.0) return 2;
    if (s <= 75.0) return 3;
    if (s <= 100.0) return 4;
    return 5;
}

// ---- one body -----------------------------------------------------------------------------

namespace {

// The body measured from the resampled ring `pts` (positive shoelace area) starting from the
// caudal axis `v`; unmeasured when the ring cannot be cut into four sides and fitted.
BodyMorphometry measure_from_axis(const Polygon& ring, const std::vector<Point>& pts, Point v, Facing facing,
                                  const MorphometryParams& params) {
    BodyMorphometry out;
    auto fail = [&out](const char* why) {
        out.measured = false;
        out.flags.push_back("unmeasurable");
        if (why[0] != '\0') out.flags.push_back(why);
        return out;
    };
    const size_t m = pts.size();
    Point centre{0.0, 0.0};
    for (const Point& p : pts) centre = centre + p;
    centre = (1.0 / static_cast<double>(m)) * centre;

    std::vector<double> a(m), b(m), alpha(m), beta(m);
    std::array<Point, 4> corners_ab{};  // corners in the (a, b) frame of `u`, `v`
    Side sides[4];                     // superior, anterior, inferior, posterior
    std::vector<double> side_x[4], side_y[4];
    Point u{0.0, 0.0};
    bool any_linear = false;
    bool spurs[4] = {false, false, false, false};
    double extent = 0.0;
    for (int iteration = 0; iteration < kFrameIterations; ++iteration) {
        u = anterior_of(v, facing);
        double a_lo = 1e300, a_hi = -1e300, b_lo = 1e300, b_hi = -1e300;
        for (size_t k = 0; k < m; ++k) {
            const Point d = pts[k] - centre;
            a[k] = dot(d, u), b[k] = dot(d, v);
            a_lo = std::min(a_lo, a[k]), a_hi = std::max(a_hi, a[k]);
            b_lo = std::min(b_lo, b[k]), b_hi = std::max(b_hi, b[k]);
        }
        const double half_a = 0.5 * (a_hi - a_lo), half_b = 0.5 * (b_hi - b_lo);
        if (!(half_a > 0.0) || !(half_b > 0.0)) return fail("irregular_outline");
        extent = 2.0 * std::max(half_a, half_b);
        for (size_t k = 0; k < m; ++k) {
            alpha[k] = (a[k] - 0.5 * (a_lo + a_hi)) / half_a;
            beta[k] = (b[k] - 0.5 * (b_lo + b_hi)) / half_b;
        }
        // Corner guesses: the points extreme along the four diagonals of the normalised frame.
        const double sa[4] = {-1.0, 1.0, 1.0, -1.0}, sb[4] = {-1.0, -1.0, 1.0, 1.0};
        size_t idx[4] = {0, 0, 0, 0};
        for (int c = 0; c < 4; ++c) {
            double best = -1e300;
            for (size_t k = 0; k < m; ++k) {
                const double s = sa[c] * alpha[k] + sb[c] * beta[k];
                if (s > best) best = s, idx[c] = k;
            }
        }
        auto forward = [m](size_t from, size_t to) { return (to + m - from) % m; };
        int direction = 0;
        if (forward(idx[0], idx[1]) < forward(idx[0], idx[2]) && forward(idx[0], idx[2]) < forward(idx[0], idx[3])) {
            direction = 1;
        } else if (forward(idx[0], idx[3]) < forward(idx[0], idx[2]) && forward(idx[0], idx[2]) < forward(idx[0], idx[1])) {
            direction = -1;
        }
        if (direction == 0 || idx[0] == idx[1] || idx[1] == idx[2] || idx[2] == idx[3] || idx[3] == idx[0]) {
            return fail("irregular_outline");
        }
        // Side s runs from corner s to corner s+1: superior PS->AS, anterior AS->AI,
        // inferior AI->PI, posterior PI->PS. Endplates are b(a), walls a(b). Each side is fitted
        // between margins at its two corners.
        std::vector<double> arc_x[4], arc_y[4];
        double sigma[4] = {0.0, 0.0, 0.0, 0.0};
        for (int s = 0; s < 4; ++s) {
            const size_t from = idx[s], to = idx[(s + 1) % 4];
            const bool endplate = s % 2 == 0;
            const std::vector<double>& x = endplate ? a : b;
            const std::vector<double>& y = endplate ? b : a;
            const size_t count = direction > 0 ? forward(from, to) : forward(to, from);
            for (size_t step = 0; step <= count; ++step) {
                const size_t k = direction > 0 ? (from + step) % m : (from + m - step) % m;
                arc_x[s].push_back(x[k]), arc_y[s].push_back(y[k]);
            }
        }
        auto fit_side = [&](int s, double margin_from, double margin_to) {
            const double x_from = arc_x[s].front(), x_to = arc_x[s].back();
            const double span = std::fabs(x_to - x_from), sign = x_to >= x_from ? 1.0 : -1.0;
            const double lo = std::min(x_from + sign * margin_from * span, x_to - sign * margin_to * span);
            const double hi = std::max(x_from + sign * margin_from * span, x_to - sign * margin_to * span);
            side_x[s].clear(), side_y[s].clear();
            for (size_t k = 0; k < arc_x[s].size(); ++k) {
                if (arc_x[s][k] >= lo && arc_x[s][k] <= hi) side_x[s].push_back(arc_x[s][k]), side_y[s].push_back(arc_y[s][k]);
            }
            bool linear = false;
            if (!robust_fit(side_x[s], side_y[s], 0.005 * std::max(span, 1e-9), sides[s].curve, linear, sigma[s])) {
                return false;
            }
            sides[s].linear = linear;
            return true;
        };
        const double base = params.side_margin;
        for (int s = 0; s < 4; ++s) {
            if (!fit_side(s, base, base)) return fail("irregular_outline");
        }
        // A spur (osteophyte) grows out of a rim corner towards the disc: the outline near that
        // corner runs outside the fitted endplate, where a plain rounded corner runs inside it.
        // Such a corner is left out of both its sides' fits over a wider margin.
        const int endplate_of[4] = {0, 0, 2, 2}, wall_of[4] = {3, 1, 1, 3};
        bool spur[4] = {false, false, false, false};
        for (int c = 0; c < 4; ++c) {
            const int e = endplate_of[c];
            const double outward = e == 0 ? -1.0 : 1.0;  // superior endplate: outward is up (-b)
            const bool at_from = c == e;                 // corner c is where side e starts
            const double x_corner = at_from ? arc_x[e].front() : arc_x[e].back();
            const double span = std::fabs(arc_x[e].back() - arc_x[e].front());
            // Judged against the middle half of the endplate, which no spur reaches, continued with
            // the curvature of the whole endplate (a half alone gives a noisy curvature).
            const Curve& whole = sides[e].curve;
            std::vector<double> cx, cy, cw;
            const double x_mid = 0.5 * (arc_x[e].front() + arc_x[e].back());
            for (size_t k = 0; k < arc_x[e].size(); ++k) {
                if (std::fabs(arc_x[e][k] - x_mid) > 0.25 * span) continue;
                const double t = (arc_x[e][k] - whole.x0) / whole.xs;
                cx.push_back(t), cy.push_back(arc_y[e][k] - whole.c2 * t * t), cw.push_back(1.0);
            }
            if (cx.size() < 4) continue;
            double line[3] = {0.0, 0.0, 0.0};
            const double middle_sigma = biweight_line(cx, cy, 0.005 * std::max(span, 1e-9), line);
            Curve middle = whole;
            middle.c0 = line[0], middle.c1 = line[1];
            double excursion = 0.0;
            for (size_t k = 0; k < arc_x[e].size(); ++k) {
                if (std::fabs(arc_x[e][k] - x_corner) > kSpurZone * span) continue;
                excursion = std::max(excursion, outward * (arc_y[e][k] - middle(arc_x[e][k])));
            }
            spur[c] = std::isfinite(middle_sigma) &&
                      excursion > std::max(4.0 * std::max(sigma[e], middle_sigma), kSpurHeight * 2.0 * half_b);
        }
        for (int s = 0; s < 4; ++s) {
            const int c_from = s, c_to = (s + 1) % 4;
            if (!spur[c_from] && !spur[c_to]) continue;
            if (!fit_side(s, spur[c_from] ? kSpurMargin : base, spur[c_to] ? kSpurMargin : base)) {
                return fail("irregular_outline");
            }
        }
        any_linear = false;
        for (int s = 0; s < 4; ++s) any_linear = any_linear || sides[s].linear;
        for (int c = 0; c < 4; ++c) spurs[c] = spur[c];
        // Rim corners: endplate meets wall.
        for (int c = 0; c < 4; ++c) {
            double ca = 0.0, cb = 0.0;
            if (!meet(sides[endplate_of[c]].curve, sides[wall_of[c]].curve, a[idx[c]], extent, ca, cb) ||
                std::hypot(ca - a[idx[c]], cb - b[idx[c]]) > 0.5 * extent) {
                return fail("irregular_outline");
            }
            corners_ab[c] = {ca, cb};
        }
        // Corners are placed on the outline, as an observer places them on the film: where the
        // fitted sides meet outside the outline (a rounded or ragged corner), the corner is the
        // nearest outline point; where they meet inside it (a spur was left out), it stays.
        std::vector<double> ra(ring.size()), rb(ring.size());  // the given outline in the frame
        for (size_t k = 0; k < ring.size(); ++k) {
            const Point d = ring[k] - centre;
            ra[k] = dot(d, u), rb[k] = dot(d, v);
        }
        for (int c = 0; c < 4; ++c) {
            if (inside_ring(ra, rb, corners_ab[c])) continue;
            double best = std::numeric_limits<double>::infinity();
            Point nearest = corners_ab[c];
            for (size_t k = 0, n = ring.size(); k < n; ++k) {
                const Point p{ra[k], rb[k]}, q{ra[(k + 1) % n], rb[(k + 1) % n]};
                const Point d = q - p;
                const double len2 = dot(d, d);
                const double t = len2 > 0.0 ? std::clamp(dot(corners_ab[c] - p, d) / len2, 0.0, 1.0) : 0.0;
                const Point x = p + t * d;
                const double dist = norm(corners_ab[c] - x);
                if (dist < best) best = dist, nearest = x;
            }
            corners_ab[c] = nearest;
        }
        // Refine the axis: perpendicular to the mean of the two rim chords.
        const Point sup = unit(corners_ab[1] - corners_ab[0]), inf = unit(corners_ab[2] - corners_ab[3]);
        const Point mean_ab = unit(sup + inf);
        if (norm(mean_ab) == 0.0 || sup.x <= 0.0 || inf.x <= 0.0) return fail("irregular_outline");
        const Point next_v = caudal_of(unit(mean_ab.x * u + mean_ab.y * v), facing);
        if (std::acos(std::clamp(dot(next_v, v), -1.0, 1.0)) < 1e-4 || iteration + 1 == kFrameIterations) break;
        v = next_v;
    }
    // Everything below is in the frame (u, v) that produced the fits.
    auto to_image = [&](Point ab) { return centre + ab.x * u + ab.y * v; };
    // Middle height: along the line joining the middles of the two rim chords, between the fitted
    // endplates, each shifted by the median residual of the outline near the middle (a local
    // depression that a quadratic would smooth over).
    const Point ms = 0.5 * (corners_ab[0] + corners_ab[1]), mi = 0.5 * (corners_ab[3] + corners_ab[2]);
    if (!(mi.y - ms.y > 0.0)) return fail("irregular_outline");
    const double slope = (mi.x - ms.x) / (mi.y - ms.y);  // da/db along the middle line
    auto cross_endplate = [&](int s, Point start, double span) {
        double bb = start.y;
        for (int i = 0; i < 100; ++i) {
            const double next = sides[s].curve(ms.x + slope * (bb - ms.y));
            if (std::fabs(next - bb) < 1e-10 * (1.0 + extent)) {
                bb = next;
                break;
            }
            bb = next;
        }
        const double aa = ms.x + slope * (bb - ms.y);
        std::vector<double> near;
        for (size_t k = 0; k < side_x[s].size(); ++k) {
            if (std::fabs(side_x[s][k] - aa) <= 0.1 * span) near.push_back(side_y[s][k] - sides[s].curve(side_x[s][k]));
        }
        if (!near.empty()) bb += median_of(near);
        return Point{ms.x + slope * (bb - ms.y), bb};
    };
    const Point sm = cross_endplate(0, ms, corners_ab[1].x - corners_ab[0].x);
    const Point im = cross_endplate(2, mi, corners_ab[2].x - corners_ab[3].x);
    if (!std::isfinite(sm.y) || !std::isfinite(im.y) || !(im.y > sm.y)) return fail("irregular_outline");

    for (int c = 0; c < 4; ++c) out.corners[c] = to_image(corners_ab[c]);
    out.superior_middle = to_image(sm);
    out.inferior_middle = to_image(im);
    out.caudal_axis = v;
    const auto& k = out.corners;
    const Point ant = k[kAnteriorInferior] - k[kAnteriorSuperior], post = k[kPosteriorInferior] - k[kPosteriorSuperior];
    const Point mid = out.inferior_middle - out.superior_middle;
    const Point sup = k[kAnteriorSuperior] - k[kPosteriorSuperior], inf = k[kAnteriorInferior] - k[kPosteriorInferior];
    out.height_anterior = norm(ant), out.height_middle = norm(mid), out.height_posterior = norm(post);
    out.height_anterior_mm = length_mm(ant, params), out.height_middle_mm = length_mm(mid, params);
    out.height_posterior_mm = length_mm(post, params);
    out.depth_superior = norm(sup), out.depth_inferior = norm(inf);
    out.depth_superior_mm = length_mm(sup, params), out.depth_inferior_mm = length_mm(inf, params);
    out.superior_tilt_deg = tilt_deg(sup, facing, params);
    out.inferior_tilt_deg = tilt_deg(inf, facing, params);
    out.endplate_angle_deg = wrap_deg(out.inferior_tilt_deg - out.superior_tilt_deg);
    out.measured = true;
    if (any_linear) out.flags.push_back("linear_fit");
    const char* spur_flags[4] = {"spur_posterior_superior", "spur_anterior_superior", "spur_anterior_inferior",
                                 "spur_posterior_inferior"};
    for (int c = 0; c < 4; ++c) {
        if (spurs[c]) out.flags.push_back(spur_flags[c]);
    }
    return out;
}

}  // namespace

BodyMorphometry measure_body(const Polygon& polygon, Facing facing, Point caudal_hint, const MorphometryParams& params) {
    validate_polygon(polygon, "polygon");
    params.validate();
    if (!std::isfinite(caudal_hint.x) || !std::isfinite(caudal_hint.y)) {
        throw InvalidInput("caudal_axis: must be finite");
    }
    std::vector<Point> pts = resample(polygon);
    if (pts.size() < 16 || !(std::fabs(shoelace(pts)) > 0.0)) {
        BodyMorphometry out;
        out.flags = {"unmeasurable"};
        return out;
    }
    if (shoelace(pts) < 0.0) std::reverse(pts.begin(), pts.end());
    const Point hint = norm(caudal_hint) > 0.0 ? unit(caudal_hint) : Point{0.0, 1.0};
    // Start from the hint, or the bounding rectangle's axis when it agrees within 30 degrees;
    // failing that, from the rectangle's axis nearest the hint whatever its angle (a body tilted
    // far from the hint, e.g. alone on a rotated film).
    const Point first = rectangle_axis_near(pts, hint, 30.0);
    BodyMorphometry out = measure_from_axis(polygon, pts, first, facing, params);
    if (!out.measured) {
        const Point second = rectangle_axis_near(pts, hint, 90.0);
        if (std::fabs(dot(second, first)) < 0.9999) {
            BodyMorphometry retry = measure_from_axis(polygon, pts, second, facing, params);
            if (retry.measured) return retry;
        }
    }
    return out;
}

// ---- the spine ----------------------------------------------------------------------------

namespace {

Point vertex_mean(const Polygon& polygon) {
    Point c{0.0, 0.0};
    for (const Point& p : polygon) c = c + p;
    return (1.0 / static_cast<double>(polygon.size())) * c;
}

Point body_centre(const Polygon& polygon) {
    return polygon_area(polygon) > 0.0 ? polygon_centroid(polygon) : vertex_mean(polygon);
}

// Input indices ordered top to bottom by centroid y (ties keep input order).
std::vector<int> top_to_bottom(const std::vector<Point>& centres) {
    std::vector<int> order(centres.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return centres[i].y < centres[j].y; });
    return order;
}

// Two bodies next to each other in the chain may form a segment: levels one apart, or a name
// missing (then only their order says they are neighbours).
bool adjacent(const SpineBody& upper, const SpineBody& lower) {
    return upper.level == 0 || lower.level == 0 || lower.level - upper.level == 1;
}

bool graded_level(int level) { return level == 0 || (level >= kC3 && level <= kL5); }

void validate_bodies(const std::vector<SpineBody>& bodies) {
    for (size_t i = 0; i < bodies.size(); ++i) {
        const std::string name = "polygons[" + std::to_string(i) + "]";
        validate_polygon(bodies[i].polygon, name);
        if (bodies[i].level < 0 || bodies[i].level > kLevelCountMorphometry) {
            throw InvalidInput("levels[" + std::to_string(i) + "]: level index must lie in 0..25");
        }
    }
}

}  // namespace

bool infer_facing(const std::vector<SpineBody>& bodies, Facing& facing, double min_bow) {
    validate_bodies(bodies);
    // Runs of named levels with a known curve: the cervical and lumbar spines bulge forwards
    // (lordosis), the mid-thoracic spine backwards (kyphosis). Without a run of three, all
    // bodies in order, taken as lordotic (the cervical and lumbar films this is made for).
    std::vector<Point> runs[3], all;
    std::vector<Point> centres;
    for (const SpineBody& body : bodies) centres.push_back(body_centre(body.polygon));
    for (const int i : top_to_bottom(centres)) {
        all.push_back(centres[i]);
        const int level = bodies[i].level;
        if (level >= kC2 && level <= kC7) runs[0].push_back(centres[i]);
        if (level >= kT2 && level <= kT11) runs[1].push_back(centres[i]);
        if (level >= kL1 && level <= kS1) runs[2].push_back(centres[i]);
    }
    // Signed bow of a run: mean distance of its inner centroids from its chord, over the
    // chord's length (negative when it bulges towards +x).
    auto bow_of = [](const std::vector<Point>& run) {
        const Point chord = run.back() - run.front();
        const double length = norm(chord);
        if (!(length > 0.0)) return 0.0;
        double sum = 0.0;
        for (size_t k = 1; k + 1 < run.size(); ++k) sum += cross(unit(chord), run[k] - run.front());
        return sum / (static_cast<double>(run.size() - 2) * length);
    };
    // Every run of three or more votes with its length; kyphosis bulges backwards.
    double bow = 0.0, weight = 0.0;
    for (int r = 0; r < 3; ++r) {
        if (runs[r].size() < 3) continue;
        const double w = static_cast<double>(runs[r].size());
        bow += w * (r == 1 ? -1.0 : 1.0) * bow_of(runs[r]);
        weight += w;
    }
    if (weight > 0.0) {
        bow /= weight;
    } else {
        if (all.size() < 3) return false;
        bow = bow_of(all);
    }
    if (!(std::fabs(bow) >= min_bow)) return false;
    // With the patient facing right (front = +x) a forward bulge has a negative cross product.
    facing = bow < 0.0 ? Facing::Right : Facing::Left;
    return true;
}

SpineMorphometry measure_spine(const std::vector<SpineBody>& bodies, bool facing_given, Facing facing,
                               const MorphometryParams& params) {
    params.validate();
    validate_bodies(bodies);
    SpineMorphometry out;
    const size_t n = bodies.size();
    out.facing = facing;
    if (facing_given) {
        out.facing_source = "given";
    } else if (infer_facing(bodies, out.facing)) {
        out.facing_source = "curvature";
    } else {
        out.facing = Facing::Left;
        out.facing_source = "default";
        out.flags.push_back("facing_assumed");
    }
    std::vector<Point> centres(n);
    for (size_t i = 0; i < n; ++i) centres[i] = body_centre(bodies[i].polygon);
    const std::vector<int> order = top_to_bottom(centres);

    // Each body measured in the spine direction at its place in the chain.
    out.bodies.resize(n);
    for (size_t r = 0; r < n; ++r) {
        const int i = order[r];
        Point hint{0.0, 1.0};
        if (n >= 2) {
            const Point lo = centres[order[r == 0 ? 0 : r - 1]], hi = centres[order[r + 1 == n ? n - 1 : r + 1]];
            const Point t = hi - lo;
            if (norm(t) > 0.0) hint = t.y >= 0.0 ? t : -1.0 * t;
        }
        out.bodies[i] = measure_body(bodies[i].polygon, out.facing, hint, params);
    }

    // Genant grades: own posterior height for wedge and biconcave, neighbours' for crush.
    out.genant.assign(n, GenantResult{});
    out.reference_posterior.assign(n, kNaN);
    auto usable_reference = [&](int j) {
        return out.bodies[j].measured && !bodies[j].partial && graded_level(bodies[j].level);
    };
    for (size_t r = 0; r < n; ++r) {
        const int i = order[r];
        GenantResult& g = out.genant[i];
        if (!out.bodies[i].measured || bodies[i].partial || !graded_level(bodies[i].level)) {
            g.grade = -1;
            g.reduction = g.wedge_reduction = g.biconcave_reduction = g.crush_reduction = kNaN;
            continue;
        }
        double sum = 0.0;
        int count = 0;
        if (r > 0 && adjacent(bodies[order[r - 1]], bodies[i]) && usable_reference(order[r - 1])) {
            sum += out.bodies[order[r - 1]].height_posterior, ++count;
        }
        if (r + 1 < n && adjacent(bodies[i], bodies[order[r + 1]]) && usable_reference(order[r + 1])) {
            sum += out.bodies[order[r + 1]].height_posterior, ++count;
        }
        out.reference_posterior[i] = count > 0 ? sum / count : kNaN;
        const BodyMorphometry& m = out.bodies[i];
        g = genant_grade(m.height_anterior, m.height_middle, m.height_posterior, out.reference_posterior[i]);
    }

    // Segments between neighbours.
    for (size_t r = 0; r + 1 < n; ++r) {
        const int i = order[r], j = order[r + 1];
        const BodyMorphometry& up = out.bodies[i];
        const BodyMorphometry& lo = out.bodies[j];
        if (!up.measured || !lo.measured || !adjacent(bodies[i], bodies[j])) continue;
        SegmentMorphometry seg;
        seg.upper = i, seg.lower = j;
        const Point da = lo.corners[kAnteriorSuperior] - up.corners[kAnteriorInferior];
        const Point dm = lo.superior_middle - up.inferior_middle;
        const Point dp = lo.corners[kPosteriorSuperior] - up.corners[kPosteriorInferior];
        seg.disc_height_anterior = norm(da), seg.disc_height_middle = norm(dm), seg.disc_height_posterior = norm(dp);
        seg.disc_height_anterior_mm = length_mm(da, params), seg.disc_height_middle_mm = length_mm(dm, params);
        seg.disc_height_posterior_mm = length_mm(dp, params);
        seg.disc_angle_deg = wrap_deg(lo.superior_tilt_deg - up.inferior_tilt_deg);
        seg.segmental_angle_deg = wrap_deg(lo.inferior_tilt_deg - up.superior_tilt_deg);
        // Slip along the lower body's superior endplate, in physical units when known.
        const Point endplate = physical(lo.corners[kAnteriorSuperior] - lo.corners[kPosteriorSuperior], params);
        const Point offset = physical(up.corners[kPosteriorInferior] - lo.corners[kPosteriorSuperior], params);
        const double along = dot(offset, unit(endplate));
        const double depth = norm(endplate);
        seg.slip_percent = depth > 0.0 ? 100.0 * along / depth : kNaN;
        if (params.has_spacing()) {
            seg.slip_mm = along;
            const Point px = up.corners[kPosteriorInferior] - lo.corners[kPosteriorSuperior];
            const Point dir = unit(lo.corners[kAnteriorSuperior] - lo.corners[kPosteriorSuperior]);
            seg.slip = dot(px, dir);
        } else {
            seg.slip = along;
            seg.slip_mm = kNaN;
        }
        seg.meyerding_grade = meyerding_grade(seg.slip_percent, params.min_slip_percent);
        seg.listhesis = seg.meyerding_grade <= 0 ? "none" : (along > 0.0 ? "anterolisthesis" : "retrolisthesis");
        if (bodies[i].level == 0 || bodies[j].level == 0) seg.flags.push_back("unnamed");
        if (bodies[i].partial || bodies[j].partial) seg.flags.push_back("partial");
        out.segments.push_back(seg);
    }

    // Lordosis between named endplates.
    auto find_level = [&](int level) {
        for (const int i : order) {
            if (bodies[i].level == level && out.bodies[i].measured) return i;
        }
        return -1;
    };
    const int l1 = find_level(kL1), s1 = find_level(kS1), c2 = find_level(kC2), c7 = find_level(kC7);
    if (l1 >= 0 && s1 >= 0) {
        out.lumbar_lordosis = {true, wrap_deg(out.bodies[s1].superior_tilt_deg - out.bodies[l1].superior_tilt_deg), l1, s1};
    }
    if (c2 >= 0 && c7 >= 0) {
        out.cervical_lordosis = {true, wrap_deg(out.bodies[c7].inferior_tilt_deg - out.bodies[c2].inferior_tilt_deg), c2, c7};
    }
    return out;
}

}  // namespace vertx
