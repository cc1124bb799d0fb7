// Labelling as sequence decoding: a chain model over the top-to-bottom ensemble masks that names
// each mask with a level and a confidence (docs/DESIGN.md, "Labelling as sequence decoding").
// It reproduces zip_labels (SPEC section 4) whenever a confident reference exists and the chain
// agrees with it, and withholds names whose confidence falls below a threshold.
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "vertx/ensemble.hpp"
#include "vertx/geometry.hpp"
#include "vertx/labelling.hpp"

namespace vertx {

/// Film regions the decoder tells apart (the classes of the view model).
inline constexpr int kViewCount = 5;

/// "cervical", "cervicothoracic", "thoracic", "thoracolumbar", "lumbar"; throws std::out_of_range
/// for any other index. (A film named from both C2 and S1 is reported as view "whole".)
const char* view_name(int view);

/// Parameters of the decoder, with their defaults. All are checked by validate().
struct DecoderParams {
    double confidence_threshold = 0.5;  ///< names below this marginal probability are withheld, [0, 1]
    double ref_score = 0.5;             ///< a C2/S1 mask at or above this score is a reference candidate, [0, 1]
    double gap_factor = 1.6;            ///< a step above gap_factor x the median step skips levels (SPEC 4), > 1
    double gap_sharpness = 8.0;         ///< decay per median step of skips other than the zipper's, > 0
    double off_gap_weight = 0.5;        ///< weight of a skip other than the zipper's before the decay, (0, 1]
    double outside_weight = 0.15;       ///< likelihood of a mask being an outside object rather than a body, (0, 1]
    double outside_start = 0.3;         ///< probability that the top mask (and each next) is above the named run, [0, 1)
    double end_hazard = 0.05;           ///< probability that the named run ends after a level (before S1), [0, 1)
    double out_of_view_weight = 0.05;   ///< start weight of a level outside the view's start window, (0, 1]
    double size_sigma = 0.25;           ///< sd of log(area ratio) between named neighbours, > 0
    double outside_size_sigma = 0.4;    ///< sd of log(area ratio) next to an outside mask, > 0
    double vertebra_aspect_mean = -0.2;  ///< log(height / width) of a body along the chain
    double vertebra_aspect_sd = 0.35;    ///< > 0
    double c2_aspect_mean = 0.2;         ///< C2 with its dens is taller
    double c2_aspect_sd = 0.5;           ///< > 0
    double s1_aspect_mean = -0.4;        ///< S1 is wider
    double s1_aspect_sd = 0.4;           ///< > 0
    /// Typical lateral body area per level C1..S1 (mm^2, height x depth of standard anatomy
    /// tables; only ratios matter; C1 has no body and is given C3's), > 0.
    std::array<double, kLevelCount> level_area = {209, 248, 209, 216, 216, 223, 247, 280, 313, 348, 385, 424, 464,
                                                  506, 550, 596, 644, 693, 744, 825, 884, 945, 972, 936, 1080};
    /// Levels [first, last] (1-based) where each view's topmost named vertebra usually lies, in
    /// view_name() order: C1-C4, C4-C7, C6-T3, T6-T11, T10-L5.
    std::array<std::array<int, 2>, kViewCount> view_windows = {{{{1, 4}}, {{4, 7}}, {{6, 10}}, {{13, 18}}, {{17, 24}}}};
    /// Level of each class-probability column: 0 = any other vertebra. The first three are
    /// always {0, 2, 25} (vertebra, C2, S1); landmark columns (e.g. T1 = 8) may follow.
    std::vector<int> class_levels = {0, kLevelC2, kLevelS1};
    /// Training frequency of each column's class; empty = 0.075 per named column, the rest vertebra.
    std::vector<double> class_prior;

    /// Throws InvalidInput naming the first parameter out of range.
    void validate() const;
};

/// What the decoder needs of a mask.
struct DecoderMask {
    Point centroid;
    double area = 0.0;    ///< > 0, px^2
    double height = 0.0;  ///< extent along the chain, px; 0 = unknown (no shape evidence)
    double width = 0.0;   ///< extent across the chain, px; 0 = unknown
    MaskClass cls = MaskClass::Vertebra;
    double score = 0.0;  ///< in [0, 1]; 0 for U-Net-only masks
    /// Class probabilities, one per DecoderParams::class_levels column, in [0, 1] summing to 1
    /// (within 1e-3; renormalised). Empty = derived from cls and score.
    std::vector<double> probs;
    bool excluded = false;  ///< left out of the chain and never named
};

struct Decoding {
    std::vector<int> levels;        ///< per input mask: 1-based level, 0 = unnamed
    std::vector<double> confidence;  ///< marginal probability of the level; 0 for unnamed masks
    std::string view;                ///< a view_name(), "whole" (named from C2 and S1) or "" (none)
    /// Posterior probability of `view`; for "whole" the lower confidence of its C2 and S1; 0 for "".
    double view_probability = 0.0;
    std::array<double, kViewCount> view_posterior{};  ///< over view_name() order
    std::string reference;           ///< "C2" | "S1" | "C2+S1" | "none"
    /// "label_conflict", "no_reference", "gap_inferred", "labels_uncertain", "relative_order_only"
    std::vector<std::string> flags;
    std::vector<std::pair<int, ExclusionReason>> excluded;  ///< input index, reason (ascending)
    std::string method;  ///< "reference" (SPEC 4 names from a reference) or "chain" (decoded)
};

/// Sets each non-excluded mask's height and width: the extents of its polygon along and across
/// the local chain direction (from the previous to the next mask's centroid, top to bottom).
/// Centroids must be set; `polygons` has one polygon per mask (InvalidInput otherwise).
void measure_chain_extents(std::vector<DecoderMask>& masks, const std::vector<Polygon>& polygons);
/// The same with polygons[i] pointing at mask i's outline (not owned; none may be null).
void measure_chain_extents(std::vector<DecoderMask>& masks, const std::vector<const Polygon*>& polygons);

/// The decoder. view_prior: empty (uniform) or five probabilities in view_name() order, each in
/// [0, 1], summing to 1 within 1e-3. Validates everything first (InvalidInput). Thread-safe.
Decoding decode_labels(const std::vector<DecoderMask>& masks, const DecoderParams& params = {},
                       const std::vector<double>& view_prior = {});

}  // namespace vertx
