// Vertebral morphometry on lateral films: body corners and endplates, heights, Genant grade,
// lordosis, segmental angles, disc heights and listhesis (SPEC section 11).
//
// Frame. Every body gets a local frame: the caudal axis v (towards the feet) and the anterior
// axis u (towards the patient's front), u = v turned by 90 degrees towards the side the patient
// faces. The frame starts from the spine direction (the chain of centroids, or image down) and is
// refined from the body's own endplates.
//
// Corners and endplates. The outline is resampled at even arc length and cut into four sides at
// the points extreme along the four diagonals of the frame (posterior-superior, anterior-superior,
// anterior-inferior, posterior-inferior). Each side is fitted on its middle part only (the ends,
// where corners are rounded and osteophytes grow, are left out) with a quadratic in the frame
// (so concave endplates and waisted walls are followed, not cut) by iteratively reweighted least
// squares with Tukey's biweight (so bumps such as osteophytes lose their weight); a corner whose
// outline runs outside the fitted endplate (a spur growing towards the disc) is left out of its
// two sides' fits over a wider margin. A corner is where the fitted endplate meets the fitted
// wall, moved onto the outline when that point lies outside it: the point an observer marks on a
// rounded corner (where a spur was left out, the point inside the spur's base stays). The middle
// height is measured between the two endplates on the line joining the middles of the rim chords.
//
// Angles are signed in the patient's frame and positive when lordotic (open anteriorly): an
// endplate's tilt is positive when its anterior end lies lower (caudal) in the image; a body's or
// segment's angle is the tilt of its lower line minus the tilt of its upper line.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "vertx/geometry.hpp"

namespace vertx {

/// Side of the image the patient's front is on.
enum class Facing { Left, Right };
const char* to_string(Facing facing);
/// "left" | "right"; throws InvalidInput naming `name` otherwise.
Facing parse_facing(const std::string& text, const std::string& name);

/// Genant semi-quantitative deformity type (None for grade 0).
enum class Deformity { None, Wedge, Biconcave, Crush };
const char* to_string(Deformity deformity);

struct MorphometryParams {
    /// Share of each side left out at both ends of its fit (rounded corners), in [0, 0.4].
    double side_margin = 0.1;
    /// Slips smaller than this share of the lower body's depth (percent) are not listhesis.
    double min_slip_percent = 5.0;
    /// Physical size of a pixel (x, y) in mm; 0 = unknown (the *_mm results are then NaN).
    double spacing_x_mm = 0.0;
    double spacing_y_mm = 0.0;

    /// Throws InvalidInput naming the first parameter out of range.
    void validate() const;
    bool has_spacing() const { return spacing_x_mm > 0.0 && spacing_y_mm > 0.0; }
};

/// Corners in the order posterior-superior, anterior-superior, anterior-inferior,
/// posterior-inferior (the order of the real-film annotations).
enum CornerIndex { kPosteriorSuperior = 0, kAnteriorSuperior = 1, kAnteriorInferior = 2, kPosteriorInferior = 3 };

/// Geometry of one vertebral body. Lengths in px (and mm when the spacing is known, else NaN).
struct BodyMorphometry {
    bool measured = false;             ///< false: the outline could not be read as a body (see flags)
    std::array<Point, 4> corners{};    ///< rim corners, CornerIndex order
    Point superior_middle, inferior_middle;  ///< endplate points at mid-depth (middle height ends)
    Point caudal_axis;                 ///< unit vector of the body's own axis, towards the feet
    double height_anterior = 0, height_middle = 0, height_posterior = 0;  ///< px
    double height_anterior_mm = 0, height_middle_mm = 0, height_posterior_mm = 0;
    double depth_superior = 0, depth_inferior = 0;  ///< rim chord lengths, px
    double depth_superior_mm = 0, depth_inferior_mm = 0;
    double superior_tilt_deg = 0, inferior_tilt_deg = 0;  ///< endplate tilts (+ = anterior end lower)
    double endplate_angle_deg = 0;  ///< inferior minus superior tilt (+ = taller anteriorly)
    std::vector<std::string> flags;  ///< "unmeasurable", "irregular_outline", "linear_fit"
};

/// Genant grade of one body from its heights.
struct GenantResult {
    int grade = 0;                  ///< 0..3; -1 = not graded
    Deformity deformity = Deformity::None;
    double reduction = 0;           ///< the largest of the reductions below (NaN when none)
    double wedge_reduction = 0;     ///< 1 - Ha/Hp
    double biconcave_reduction = 0; ///< 1 - Hm/Hp
    double crush_reduction = 0;     ///< 1 - Hp/Hp_reference (NaN without a reference)
};

/// Genant semi-quantitative grade of a height reduction (a share, 0.2 = 20 %):
/// 0 below 0.20, 1 in [0.20, 0.25), 2 in [0.25, 0.40], 3 above 0.40; -1 for NaN.
int genant_grade_of_reduction(double reduction);

/// Grade from the anterior, middle and posterior heights and the reference posterior height
/// (mean of the neighbours' posterior heights; NaN when there is none). The deformity is the
/// height with the largest reduction: anterior = wedge, middle = biconcave, posterior = crush.
GenantResult genant_grade(double height_anterior, double height_middle, double height_posterior,
                          double reference_posterior);

/// Meyerding grade of a slip given as a share of the lower body's depth in percent: 0 below
/// `min_percent`, 1 up to 25, 2 up to 50, 3 up to 75, 4 up to 100, 5 beyond; -1 for NaN.
int meyerding_grade(double slip_percent, double min_percent = 5.0);

/// Measures one body outline. `caudal_hint` is the spine direction at the body (need not be unit;
/// zero = image down). Throws InvalidInput for bad coordinates (validate_polygon) or parameters;
/// an outline that encloses nothing or cannot be cut into four sides comes back unmeasured.
BodyMorphometry measure_body(const Polygon& polygon, Facing facing, Point caudal_hint = {0.0, 0.0},
                             const MorphometryParams& params = {});

/// What measure_spine needs of a body.
struct SpineBody {
    Polygon polygon;
    int level = 0;         ///< 1-based level index (C1 = 1 ... S1 = 25), 0 = unnamed
    bool partial = false;  ///< cut by the field edge: measured and flagged, never a neighbour's reference
};

/// Two bodies next to each other in the chain (levels one apart, or either unnamed).
struct SegmentMorphometry {
    int upper = 0, lower = 0;  ///< input indices
    double disc_height_anterior = 0, disc_height_middle = 0, disc_height_posterior = 0;  ///< px
    double disc_height_anterior_mm = 0, disc_height_middle_mm = 0, disc_height_posterior_mm = 0;
    double disc_angle_deg = 0;        ///< lower's superior tilt - upper's inferior tilt
    double segmental_angle_deg = 0;   ///< lower's inferior tilt - upper's superior tilt
    /// Displacement of the upper body's posterior-inferior corner from the lower body's
    /// posterior-superior corner along the lower body's superior endplate (+ = anterolisthesis).
    double slip = 0, slip_mm = 0;
    double slip_percent = 0;          ///< slip as a share of the lower body's superior depth
    int meyerding_grade = 0;          ///< of |slip_percent|; 0 = no listhesis
    std::string listhesis;            ///< "anterolisthesis" | "retrolisthesis" | "none"
    std::vector<std::string> flags;   ///< "unnamed", "partial"
};

/// A Cobb angle between two named endplates.
struct SpineAngle {
    bool available = false;
    double degrees = 0;  ///< + = lordotic
    int from = -1, to = -1;  ///< input indices of the two bodies
};

struct SpineMorphometry {
    Facing facing = Facing::Left;
    std::string facing_source;  ///< "given" | "curvature" | "default"
    std::vector<BodyMorphometry> bodies;   ///< input order
    std::vector<GenantResult> genant;      ///< input order
    std::vector<double> reference_posterior;  ///< px, NaN when the body has no reference
    std::vector<SegmentMorphometry> segments;  ///< top to bottom
    SpineAngle lumbar_lordosis;    ///< L1 superior to S1 superior endplate
    SpineAngle cervical_lordosis;  ///< C2 inferior to C7 inferior endplate
    std::vector<std::string> flags;  ///< "facing_assumed"
};

/// Which way the patient faces, from the bow of the chain of centroids: the cervical (C2..C7)
/// and lumbar (L1..S1) spines bulge anteriorly, the mid-thoracic (T2..T11) posteriorly. Every
/// run of at least three named bodies votes with its length; without one, all bodies are taken
/// as a lordotic chain. Returns false (facing untouched) when fewer than three bodies or the bow is
/// under `min_bow` of the chord length.
bool infer_facing(const std::vector<SpineBody>& bodies, Facing& facing, double min_bow = 0.015);

/// Every body, the Genant grades, the segments and the lordosis angles. `facing_given` false
/// infers the facing (infer_facing; Facing::Left with flag "facing_assumed" when undecidable).
/// Bodies are ordered top to bottom by centroid; results refer to input positions. Graded bodies:
/// C3..L5 and unnamed ones (C1, C2 and S1 are not graded: grade -1); a body's reference posterior
/// height is the mean over its measured, non-partial, graded neighbours in the chain.
SpineMorphometry measure_spine(const std::vector<SpineBody>& bodies, bool facing_given, Facing facing,
                               const MorphometryParams& params = {});

}  // namespace vertx
