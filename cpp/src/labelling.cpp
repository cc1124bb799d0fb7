#include "vertx/labelling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace vertx {

std::string level_name(int level) {
    if (level < 1 || level > kLevelCount) {
        throw std::out_of_range("level index " + std::to_string(level) + " outside 1..25");
    }
    if (level <= 7) return "C" + std::to_string(level);
    if (level <= 19) return "T" + std::to_string(level - 7);
    if (level <= 24) return "L" + std::to_string(level - 19);
    return "S1";
}

const char* to_string(ExclusionReason reason) {
    switch (reason) {
        case ExclusionReason::AboveReference: return "above_reference";
        case ExclusionReason::BelowReference: return "below_reference";
        case ExclusionReason::PastSequenceEnd: break;
    }
    return "past_sequence_end";
}

namespace {

// Index (into `order`) of the best-scoring mask of a class: highest score, ties to the lower
// input index. -1 if none.
int find_reference(const std::vector<LabelInput>& masks, const std::vector<int>& order, MaskClass cls) {
    int best = -1;
    for (int k = 0; k < static_cast<int>(order.size()); ++k) {
        const LabelInput& m = masks[order[k]];
        if (m.cls != cls) continue;
        if (best < 0) {
            best = k;
            continue;
        }
        const LabelInput& b = masks[order[best]];
        if (m.score > b.score || (m.score == b.score && order[k] < order[best])) best = k;
    }
    return best;
}

double median(std::vector<double> values) {
    const size_t n = values.size();
    std::sort(values.begin(), values.end());
    return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

Labelling zip_labels(const std::vector<LabelInput>& masks, double gap_factor) {
    if (!std::isfinite(gap_factor) || !(gap_factor > 1.0)) {
        std::ostringstream msg;
        msg << "gap_factor: must be finite and > 1, got " << gap_factor;
        throw InvalidInput(msg.str());
    }
    for (size_t i = 0; i < masks.size(); ++i) {
        const LabelInput& m = masks[i];
        if (!std::isfinite(m.centroid.x) || !std::isfinite(m.centroid.y)) {
            throw InvalidInput("masks[" + std::to_string(i) + "]: centroid is not finite");
        }
        if (!std::isfinite(m.score)) {
            throw InvalidInput("masks[" + std::to_string(i) + "]: score is not finite");
        }
    }

    const int n = static_cast<int>(masks.size());
    Labelling out;
    out.levels.assign(masks.size(), 0);

    // Sorted positions, top to bottom.
    std::vector<int> order(masks.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return masks[a].centroid.y < masks[b].centroid.y; });

    // Chain position of each sorted mask: its position plus the levels inferred missing above it.
    std::vector<long> chain(masks.size(), 0);
    if (n >= 2) {
        std::vector<double> steps(n - 1);
        for (int k = 0; k + 1 < n; ++k) {
            const Point& a = masks[order[k]].centroid;
            const Point& b = masks[order[k + 1]].centroid;
            steps[k] = std::hypot(b.x - a.x, b.y - a.y);
        }
        const double spacing = median(steps);
        for (int k = 0; k + 1 < n; ++k) {
            long skip = 0;
            if (spacing > 0.0 && steps[k] > gap_factor * spacing) {
                const double ratio = std::min(steps[k] / spacing, 1.0e6);
                skip = std::max(1L, static_cast<long>(std::floor(ratio + 0.5)) - 1);
            }
            chain[k + 1] = chain[k] + 1 + skip;
        }
    }

    const int c2 = find_reference(masks, order, MaskClass::C2);
    const int s1 = find_reference(masks, order, MaskClass::S1);
    bool use_c2 = c2 >= 0, use_s1 = s1 >= 0;
    if (use_c2 && use_s1 && s1 < c2) {
        // S1 above C2 cannot both be right: keep the better-scoring one (ties to C2).
        out.flags.push_back("label_conflict");
        if (masks[order[s1]].score > masks[order[c2]].score) {
            use_c2 = false;
        } else {
            use_s1 = false;
        }
    }

    if (!use_c2 && !use_s1) {
        out.view = "";
        out.reference = "none";
        out.flags.push_back("no_reference");
        return out;
    }

    bool gap_used = false;
    std::vector<std::pair<int, ExclusionReason>> excluded;
    auto assign = [&](int k, long level) {
        if (level < 1 || level > kLevelCount) {
            excluded.emplace_back(order[k], ExclusionReason::PastSequenceEnd);
        } else {
            out.levels[order[k]] = static_cast<int>(level);
        }
    };
    auto from_c2 = [&](int k) {
        if (chain[k] - chain[c2] != k - c2) gap_used = true;
        assign(k, kLevelC2 + (chain[k] - chain[c2]));
    };
    auto from_s1 = [&](int k) {
        if (chain[s1] - chain[k] != s1 - k) gap_used = true;
        assign(k, kLevelS1 - (chain[s1] - chain[k]));
    };

    for (int k = 0; k < n; ++k) {
        if (use_c2 && k < c2) {
            excluded.emplace_back(order[k], ExclusionReason::AboveReference);
        } else if (use_s1 && k > s1) {
            excluded.emplace_back(order[k], ExclusionReason::BelowReference);
        } else if (use_c2 && use_s1) {
            if (k - c2 <= s1 - k) {
                from_c2(k);
            } else {
                from_s1(k);
            }
        } else if (use_c2) {
            from_c2(k);
        } else {
            from_s1(k);
        }
    }

    if (use_c2 && use_s1) {
        out.view = "whole";
        out.reference = "C2+S1";
        if (kLevelC2 + (chain[s1] - chain[c2]) != kLevelS1) out.flags.push_back("label_conflict");
    } else if (use_c2) {
        out.view = "cervical";
        out.reference = "C2";
    } else {
        out.view = "lumbar";
        out.reference = "S1";
    }
    if (gap_used) out.flags.push_back("gap_inferred");
    std::sort(excluded.begin(), excluded.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out.excluded = std::move(excluded);
    return out;
}

}  // namespace vertx
