// Ensemble of U-Net and Mask R-CNN vertebra outlines: Algorithm 1 of VertXNet made exact
// (SPEC section 3).
#pragma once

#include <string>
#include <vector>

#include "vertx/geometry.hpp"

namespace vertx {

/// Mask R-CNN class of an outline (U-Net outlines are always Vertebra).
enum class MaskClass { Vertebra, C2, S1 };

/// How an ensemble mask came about.
enum class MaskSource { Agreement, Split, Rescued };

const char* to_string(MaskClass cls);
const char* to_string(MaskSource source);
/// "vertebra" | "C2" | "S1"; throws InvalidInput naming `name` otherwise.
MaskClass parse_mask_class(const std::string& text, const std::string& name);

struct EnsembleParams {
    double eta = 0.6;        ///< agreement threshold, in (0, 1]
    double lam = 2.0;        ///< area window half-width in standard deviations, > 0
    double tau = 0.3;        ///< overlap guard for rescued masks, in [0, 1]
    double ref_score = 0.5;  ///< Mask R-CNN C2/S1 at or above this score are never dropped, in [0, 1]
    double min_area = 1.0;   ///< smallest area (px^2) accepted when nothing agrees, >= 0

    /// Throws InvalidInput naming the first parameter out of range.
    void validate() const;
};

struct EnsembleMask {
    Polygon polygon;  ///< the Mask R-CNN / U-Net input ring, or the union ring for agreements
    MaskClass cls = MaskClass::Vertebra;
    double score = 0.0;  ///< Mask R-CNN score; 0 for U-Net-only masks
    MaskSource source = MaskSource::Rescued;
    double area = 0.0;  ///< enclosed area, px^2
    Point centroid;
    int unet_index = -1;   ///< index into the U-Net input, -1 if none
    int mrcnn_index = -1;  ///< index into the Mask R-CNN input, -1 if none
};

struct EnsembleResult {
    std::vector<EnsembleMask> masks;  ///< ordered top to bottom (centroid y; ties keep order)
    std::vector<int> dropped_unet;    ///< degenerate U-Net inputs (< 3 distinct points or no area)
    std::vector<int> dropped_mrcnn;   ///< degenerate Mask R-CNN inputs
};

/// SPEC section 3. Validates every polygon and parameter first (InvalidInput on error);
/// degenerate polygons are dropped and listed in the result. Thread-safe; no global state.
EnsembleResult ensemble(const std::vector<Polygon>& unet, const std::vector<Polygon>& mrcnn,
                        const std::vector<MaskClass>& mrcnn_classes,
                        const std::vector<double>& mrcnn_scores, const EnsembleParams& params = {});

}  // namespace vertx
