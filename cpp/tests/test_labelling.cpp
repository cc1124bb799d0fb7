// Zipper labelling (SPEC section 4): names from the reference vertebra, gaps, conflicts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "test_support.hpp"
#include "vertx/labelling.hpp"

namespace vertx {
namespace {

// Masks at centroids y = 0, spacing, 2*spacing, ... (skipping the positions in `missing`).
std::vector<LabelInput> column(int count, std::vector<int> missing = {}, double spacing = 40) {
    std::vector<LabelInput> masks;
    for (int k = 0; k < count; ++k) {
        if (std::find(missing.begin(), missing.end(), k) != missing.end()) continue;
        masks.push_back(LabelInput{Point{100, spacing * k}, MaskClass::Vertebra, 0.9});
    }
    return masks;
}

std::vector<std::string> names(const Labelling& l) {
    std::vector<std::string> out;
    for (int level : l.levels) out.push_back(level > 0 ? level_name(level) : "-");
    return out;
}

TEST(LevelName, AllLevels) {
    EXPECT_EQ(level_name(1), "C1");
    EXPECT_EQ(level_name(kLevelC2), "C2");
    EXPECT_EQ(level_name(8), "T1");
    EXPECT_EQ(level_name(19), "T12");
    EXPECT_EQ(level_name(20), "L1");
    EXPECT_EQ(level_name(kLevelS1), "S1");
    EXPECT_THROW(level_name(0), std::out_of_range);
    EXPECT_THROW(level_name(26), std::out_of_range);
}

TEST(ZipLabels, CervicalFromC2) {
    auto masks = column(5);
    masks[0].cls = MaskClass::C2;
    const Labelling l = zip_labels(masks);
    EXPECT_EQ(names(l), (std::vector<std::string>{"C2", "C3", "C4", "C5", "C6"}));
    EXPECT_EQ(l.view, "cervical");
    EXPECT_EQ(l.reference, "C2");
    EXPECT_TRUE(l.flags.empty());
}

TEST(ZipLabels, LumbarFromS1WithMasksBelowExcluded) {
    auto masks = column(7);
    masks[5].cls = MaskClass::S1;
    const Labelling l = zip_labels(masks);
    EXPECT_EQ(names(l), (std::vector<std::string>{"L1", "L2", "L3", "L4", "L5", "S1", "-"}));
    EXPECT_EQ(l.view, "lumbar");
    ASSERT_EQ(l.excluded.size(), 1u);
    EXPECT_EQ(l.excluded[0].first, 6);
    EXPECT_EQ(l.excluded[0].second, ExclusionReason::BelowReference);
}

TEST(ZipLabels, GapInferenceSkipsLevels) {
    auto one = column(6, {3});  // C5 missing: the step C4 -> C6 is twice the median
    one[0].cls = MaskClass::C2;
    Labelling l = zip_labels(one);
    EXPECT_EQ(names(l), (std::vector<std::string>{"C2", "C3", "C4", "C6", "C7"}));
    EXPECT_EQ(l.flags, std::vector<std::string>{"gap_inferred"});
    auto two = column(8, {3, 4});  // a step of three spacings skips two levels
    two[0].cls = MaskClass::C2;
    l = zip_labels(two);
    EXPECT_EQ(names(l), (std::vector<std::string>{"C2", "C3", "C4", "C7", "T1", "T2"}));
    // Below gap_factor x the median step nothing is skipped.
    l = zip_labels(one, 2.5);
    EXPECT_EQ(names(l), (std::vector<std::string>{"C2", "C3", "C4", "C5", "C6"}));
    EXPECT_TRUE(l.flags.empty());
}

TEST(ZipLabels, NoReferenceAndConflicts) {
    Labelling l = zip_labels(column(4));
    EXPECT_EQ(l.reference, "none");
    EXPECT_EQ(l.flags, std::vector<std::string>{"no_reference"});
    EXPECT_EQ(names(l), (std::vector<std::string>(4, "-")));
    auto masks = column(4);
    masks[0].cls = MaskClass::S1;  // S1 above C2: the better-scoring one is used
    masks[3].cls = MaskClass::C2;
    masks[3].score = 0.95;
    l = zip_labels(masks);
    EXPECT_EQ(l.reference, "C2");
    EXPECT_EQ(l.flags, std::vector<std::string>{"label_conflict"});
    EXPECT_TRUE(zip_labels({}).levels.empty());
}

TEST(ZipLabels, RejectsBadGapFactor) {
    EXPECT_THROW_MESSAGE(zip_labels({}, 1.0), "gap_factor: must be finite and > 1");
    EXPECT_THROW_MESSAGE(zip_labels({}, NAN), "gap_factor: must be finite and > 1");
}

}  // namespace
}  // namespace vertx
