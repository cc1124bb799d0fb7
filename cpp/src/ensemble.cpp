#include "vertx/ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "clip.hpp"

namespace vertx {

const char* to_string(MaskClass cls) {
    switch (cls) {
        case MaskClass::C2: return "C2";
        case MaskClass::S1: return "S1";
        case MaskClass::Vertebra: break;
    }
    return "vertebra";
}

const char* to_string(MaskSource source) {
    switch (source) {
        case MaskSource::Agreement: return "agreement";
        case MaskSource::Split: return "split";
        case MaskSource::Rescued: break;
    }
    return "rescued";
}

MaskClass parse_mask_class(const std::string& text, const std::string& name) {
    if (text == "vertebra") return MaskClass::Vertebra;
    if (text == "C2") return MaskClass::C2;
    if (text == "S1") return MaskClass::S1;
    throw InvalidInput(name + ": unknown class '" + text + "'; expected 'vertebra', 'C2' or 'S1'");
}

namespace {

void require(bool ok, const char* name, const char* range, double value) {
    if (ok) return;
    std::ostringstream msg;
    msg << name << ": must be " << range << ", got " << value;
    throw InvalidInput(msg.str());
}

}  // namespace

void EnsembleParams::validate() const {
    require(std::isfinite(eta) && eta > 0.0 && eta <= 1.0, "eta", "in (0, 1]", eta);
    require(std::isfinite(lam) && lam > 0.0, "lam", "finite and > 0", lam);
    require(std::isfinite(tau) && tau >= 0.0 && tau <= 1.0, "tau", "in [0, 1]", tau);
    require(std::isfinite(ref_score) && ref_score >= 0.0 && ref_score <= 1.0, "ref_score",
            "in [0, 1]", ref_score);
    require(std::isfinite(min_area) && min_area >= 0.0, "min_area", "finite and >= 0", min_area);
}

namespace {

using detail::Region;

// An input outline with its region computed once.
struct Candidate {
    Region region;
    const Polygon* polygon = nullptr;
    int index = -1;
    bool used = false;
};

// A member of E: its own region (the union ring for agreements) and its public fields.
struct Member {
    Region region;
    EnsembleMask mask;
};

// Relative slack for exact pruning: a computed intersection area never exceeds its bounding
// box overlap (or the smaller area) by more than rounding.
constexpr double kPruneSlack = 1.0 + 1e-9;

Member member_from(const Candidate& c, MaskClass cls, double score, MaskSource source,
                   int unet_index, int mrcnn_index) {
    Member m;
    m.region = c.region;
    m.mask.polygon = *c.polygon;
    m.mask.cls = cls;
    m.mask.score = score;
    m.mask.source = source;
    m.mask.area = c.region.area;
    m.mask.unet_index = unet_index;
    m.mask.mrcnn_index = mrcnn_index;
    return m;
}

}  // namespace

EnsembleResult ensemble(const std::vector<Polygon>& unet, const std::vector<Polygon>& mrcnn,
                        const std::vector<MaskClass>& mrcnn_classes,
                        const std::vector<double>& mrcnn_scores, const EnsembleParams& params) {
    params.validate();
    if (mrcnn_classes.size() != mrcnn.size()) {
        std::ostringstream msg;
        msg << "mrcnn_classes: expected " << mrcnn.size() << " classes for " << mrcnn.size()
            << " mrcnn polygons, got " << mrcnn_classes.size();
        throw InvalidInput(msg.str());
    }
    if (mrcnn_scores.size() != mrcnn.size()) {
        std::ostringstream msg;
        msg << "mrcnn_scores: expected " << mrcnn.size() << " scores for " << mrcnn.size()
            << " mrcnn polygons, got " << mrcnn_scores.size();
        throw InvalidInput(msg.str());
    }
    for (size_t i = 0; i < unet.size(); ++i) validate_polygon(unet[i], "unet[" + std::to_string(i) + "]");
    for (size_t j = 0; j < mrcnn.size(); ++j) {
        validate_polygon(mrcnn[j], "mrcnn[" + std::to_string(j) + "]");
        if (!std::isfinite(mrcnn_scores[j])) {
            throw InvalidInput("mrcnn_scores[" + std::to_string(j) + "]: score is not finite");
        }
    }

    EnsembleResult result;
    std::vector<Candidate> cu, cm;
    cu.reserve(unet.size());
    cm.reserve(mrcnn.size());
    for (size_t i = 0; i < unet.size(); ++i) {
        Region region = detail::make_region(unet[i]);
        if (region.area > 0.0) {
            cu.push_back(Candidate{std::move(region), &unet[i], static_cast<int>(i), false});
        } else {
            result.dropped_unet.push_back(static_cast<int>(i));
        }
    }
    for (size_t j = 0; j < mrcnn.size(); ++j) {
        Region region = detail::make_region(mrcnn[j]);
        if (region.area > 0.0) {
            cm.push_back(Candidate{std::move(region), &mrcnn[j], static_cast<int>(j), false});
        } else {
            result.dropped_mrcnn.push_back(static_cast<int>(j));
        }
    }

    const double eta = params.eta;
    std::vector<Member> members;
    members.reserve(cu.size() + cm.size());

    // Agreement and split, in input order.
    for (Candidate& u : cu) {
        for (Candidate& m : cm) {
            if (m.used) continue;
            const double au = u.region.area, am = m.region.area;
            // Both tests need I > eta * am; I is bounded by the box overlap and by au.
            const double bound = std::min(detail::box_overlap_px2(u.region.box, m.region.box), au);
            if (bound * kPruneSlack <= eta * am) continue;
            // One Clipper union gives both the intersection area (au + am - area of the union)
            // and, if they agree, the ring to keep.
            const detail::UnionResult joined = detail::union_of(u.region.paths, m.region.paths);
            const double inter = std::max(0.0, au + am - joined.area);
            if (inter / std::max(au, am) > eta) {
                Member member;
                member.region = detail::region_of_clean_path(detail::outline_of(joined.outers));
                member.mask.polygon = detail::to_polygon(member.region.paths.at(0));
                member.mask.cls = mrcnn_classes[m.index];
                member.mask.score = mrcnn_scores[m.index];
                member.mask.source = MaskSource::Agreement;
                member.mask.area = member.region.area;
                member.mask.unet_index = u.index;
                member.mask.mrcnn_index = m.index;
                members.push_back(std::move(member));
                u.used = true;
                m.used = true;
                break;
            }
            if (inter / am > eta) {
                members.push_back(member_from(m, mrcnn_classes[m.index], mrcnn_scores[m.index],
                                              MaskSource::Split, -1, m.index));
                m.used = true;
            }
        }
    }

    if (members.empty()) {
        // Nothing agreed: keep every Mask R-CNN outline (or, without any, every U-Net outline)
        // of at least min_area.
        if (!cm.empty()) {
            for (const Candidate& m : cm) {
                if (m.region.area >= params.min_area) {
                    members.push_back(member_from(m, mrcnn_classes[m.index], mrcnn_scores[m.index],
                                                  MaskSource::Rescued, -1, m.index));
                }
            }
        } else {
            for (const Candidate& u : cu) {
                if (u.region.area >= params.min_area) {
                    members.push_back(
                        member_from(u, MaskClass::Vertebra, 0.0, MaskSource::Rescued, u.index, -1));
                }
            }
        }
    } else {
        // Population mean and standard deviation of the areas in E, computed once.
        double mean = 0.0;
        for (const Member& e : members) mean += e.mask.area;
        mean /= static_cast<double>(members.size());
        double var = 0.0;
        for (const Member& e : members) var += (e.mask.area - mean) * (e.mask.area - mean);
        var /= static_cast<double>(members.size());
        const double sigma = std::max(std::sqrt(var), 0.1 * mean);
        const double low = mean - params.lam * sigma, high = mean + params.lam * sigma;

        std::vector<Candidate*> remaining;
        for (Candidate& m : cm) if (!m.used) remaining.push_back(&m);
        std::stable_sort(remaining.begin(), remaining.end(), [&](const Candidate* a, const Candidate* b) {
            return mrcnn_scores[a->index] > mrcnn_scores[b->index];
        });
        const size_t first_unet = remaining.size();
        for (Candidate& u : cu) if (!u.used) remaining.push_back(&u);
        std::stable_sort(remaining.begin() + static_cast<std::ptrdiff_t>(first_unet), remaining.end(),
                         [](const Candidate* a, const Candidate* b) { return a->region.area > b->region.area; });

        detail::Paths touching;
        for (size_t k = 0; k < remaining.size(); ++k) {
            const Candidate& r = *remaining[k];
            const bool is_mrcnn = k < first_unet;
            const MaskClass cls = is_mrcnn ? mrcnn_classes[r.index] : MaskClass::Vertebra;
            const double score = is_mrcnn ? mrcnn_scores[r.index] : 0.0;
            bool accept = false;
            if (is_mrcnn && cls != MaskClass::Vertebra && score >= params.ref_score) {
                accept = true;  // a reference vertebra is never dropped
            } else if (low < r.region.area && r.region.area < high) {
                // area(r ∩ union(E)): one intersection against the members whose boxes touch r;
                // the non-zero rule counts overlaps between members once.
                touching.clear();
                double bound = 0.0;  // area(r ∩ union(E)) <= sum of box overlaps with r
                for (const Member& e : members) {
                    if (detail::boxes_touch(e.region.box, r.region.box)) {
                        touching.insert(touching.end(), e.region.paths.begin(), e.region.paths.end());
                        bound += detail::box_overlap_px2(e.region.box, r.region.box);
                    }
                }
                const double overlap = bound * kPruneSlack <= params.tau * r.region.area
                                           ? 0.0
                                           : detail::intersection_area_px2(r.region.paths, touching);
                accept = overlap / r.region.area <= params.tau;
            }
            if (accept) {
                members.push_back(member_from(r, cls, score, MaskSource::Rescued,
                                              is_mrcnn ? -1 : r.index, is_mrcnn ? r.index : -1));
            }
        }
    }

    for (Member& e : members) e.mask.centroid = detail::centroid_of(e.region.paths);
    std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
        return a.mask.centroid.y < b.mask.centroid.y;
    });
    result.masks.reserve(members.size());
    for (Member& e : members) result.masks.push_back(std::move(e.mask));
    return result;
}

}  // namespace vertx
