// Zipper labelling: anatomical names from a reference vertebra (SPEC section 4).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "vertx/ensemble.hpp"
#include "vertx/geometry.hpp"

namespace vertx {

/// Number of levels C1..C7, T1..T12, L1..L5, S1.
inline constexpr int kLevelCount = 25;
inline constexpr int kLevelC2 = 2;   ///< 1-based level index of C2
inline constexpr int kLevelS1 = 25;  ///< 1-based level index of S1

/// Name of a 1-based level index ("C1" .. "S1"); throws std::out_of_range otherwise.
std::string level_name(int level);

/// What zip_labels needs of a mask.
struct LabelInput {
    Point centroid;
    MaskClass cls = MaskClass::Vertebra;
    double score = 0.0;
};

enum class ExclusionReason { AboveReference, BelowReference, PastSequenceEnd };
const char* to_string(ExclusionReason reason);

struct Labelling {
    std::vector<int> levels;  ///< per input mask: 1-based level index, 0 = unnamed
    std::string view;         ///< "cervical" | "lumbar" | "whole" | "" (none)
    std::string reference;    ///< "C2" | "S1" | "C2+S1" | "none"
    std::vector<std::string> flags;  ///< "no_reference", "gap_inferred", "label_conflict"
    std::vector<std::pair<int, ExclusionReason>> excluded;  ///< input index, reason (ascending)
};

/// SPEC section 4. Masks are ordered by centroid y (ties keep input order); results refer to
/// input positions. gap_factor must be finite and > 1 (InvalidInput otherwise).
///
/// Gap inference: with d the median distance between consecutive centroids, a step of length D
/// between neighbours skips round(D / d) - 1 levels (at least one) when D > gap_factor * d, so
/// D in (1.6 d, 2.5 d) skips one level and D in [2.5 d, 3.5 d) skips two.
Labelling zip_labels(const std::vector<LabelInput>& masks, double gap_factor = 1.6);

}  // namespace vertx
