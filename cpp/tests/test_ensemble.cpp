// The ensemble rules of SPEC section 3 on small hand-built scenes.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "test_support.hpp"
#include "vertx/ensemble.hpp"

namespace vertx {
namespace {

using test::box;

// A column of vertebra-like boxes, 40 x 30 px, 40 px apart.
Polygon body(int level, double dx = 0, double dy = 0) { return box(100 + dx, 40.0 * level + dy, 40, 30); }

std::vector<std::tuple<MaskSource, MaskClass, int, int>> summary(const EnsembleResult& r) {
    std::vector<std::tuple<MaskSource, MaskClass, int, int>> out;
    for (const EnsembleMask& m : r.masks) out.emplace_back(m.source, m.cls, m.unet_index, m.mrcnn_index);
    return out;
}

TEST(Ensemble, AgreementKeepsTheUnionAndTheMaskRcnnClass) {
    const EnsembleResult r = ensemble({body(0)}, {body(0, 1, 1)}, {MaskClass::C2}, {0.9});
    ASSERT_EQ(r.masks.size(), 1u);
    const EnsembleMask& m = r.masks[0];
    EXPECT_EQ(m.source, MaskSource::Agreement);
    EXPECT_EQ(m.cls, MaskClass::C2);
    EXPECT_DOUBLE_EQ(m.score, 0.9);
    EXPECT_DOUBLE_EQ(m.area, 1200.0 + 1200.0 - 39.0 * 29.0);  // union of the two boxes
    EXPECT_NEAR(test::shoelace(m.polygon), m.area, 1e-9);
    EXPECT_EQ(m.unet_index, 0);
    EXPECT_EQ(m.mrcnn_index, 0);
}

TEST(Ensemble, FusedBlobIsSplitIntoItsMaskRcnnOutlines) {
    // One U-Net blob over levels 1-2 (two vertebrae and the disc between them).
    const Polygon blob = box(100, 40, 40, 70);
    const EnsembleResult r = ensemble({body(0), blob, body(3)}, {body(0), body(1), body(2), body(3)},
                                      std::vector<MaskClass>(4, MaskClass::Vertebra), {0.9, 0.8, 0.8, 0.9});
    const auto got = summary(r);
    const decltype(got) expected{{MaskSource::Agreement, MaskClass::Vertebra, 0, 0},
                                 {MaskSource::Split, MaskClass::Vertebra, -1, 1},
                                 {MaskSource::Split, MaskClass::Vertebra, -1, 2},
                                 {MaskSource::Agreement, MaskClass::Vertebra, 2, 3}};
    EXPECT_EQ(got, expected);
}

TEST(Ensemble, RescueWithinTheAreaWindowAndOverlapGuard) {
    // Levels 0-2 agree; the U-Net alone finds level 3 (rescued), a small blob is outside the
    // area window, and a box overlapping level 2 by half fails the overlap guard.
    const std::vector<Polygon> unet{body(0), body(1), body(2), body(3), box(300, 300, 5, 5)};
    const std::vector<Polygon> mrcnn{body(0), body(1), body(2), body(2, 0, 15)};
    const EnsembleResult r =
        ensemble(unet, mrcnn, std::vector<MaskClass>(4, MaskClass::Vertebra), {0.9, 0.9, 0.9, 0.6});
    const auto got = summary(r);
    const decltype(got) expected{{MaskSource::Agreement, MaskClass::Vertebra, 0, 0},
                                 {MaskSource::Agreement, MaskClass::Vertebra, 1, 1},
                                 {MaskSource::Agreement, MaskClass::Vertebra, 2, 2},
                                 {MaskSource::Rescued, MaskClass::Vertebra, 3, -1}};
    EXPECT_EQ(got, expected);
    // tau = 1 lets the overlapping box in as well.
    EnsembleParams loose;
    loose.tau = 1.0;
    EXPECT_EQ(ensemble(unet, mrcnn, std::vector<MaskClass>(4, MaskClass::Vertebra), {0.9, 0.9, 0.9, 0.6}, loose)
                  .masks.size(),
              5u);
}

TEST(Ensemble, ReferenceVertebraIsNeverDropped) {
    // An S1 far too large for the area window and overlapping its neighbour is still kept.
    const std::vector<Polygon> mrcnn{body(0), body(1), box(90, 70, 60, 60)};
    const std::vector<MaskClass> classes{MaskClass::Vertebra, MaskClass::Vertebra, MaskClass::S1};
    const EnsembleResult r = ensemble({body(0), body(1)}, mrcnn, classes, {0.9, 0.9, 0.7});
    ASSERT_EQ(r.masks.size(), 3u);
    EXPECT_EQ(r.masks[2].cls, MaskClass::S1);
    EXPECT_EQ(r.masks[2].source, MaskSource::Rescued);
    // Below ref_score it is an ordinary candidate, and the guards reject it.
    EXPECT_EQ(ensemble({body(0), body(1)}, mrcnn, classes, {0.9, 0.9, 0.4}).masks.size(), 2u);
}

TEST(Ensemble, NothingAgreesFallsBackToMaskRcnnThenUnet) {
    const EnsembleResult r = ensemble({body(5)}, {body(0), box(0, 0, 0.5, 0.5)}, {MaskClass::Vertebra, MaskClass::C2},
                                      {0.9, 0.9});
    ASSERT_EQ(r.masks.size(), 1u);  // the 0.25 px^2 outline is below min_area
    EXPECT_EQ(r.masks[0].mrcnn_index, 0);
    const EnsembleResult u = ensemble({body(0), body(1)}, {}, {}, {});
    ASSERT_EQ(u.masks.size(), 2u);
    EXPECT_EQ(u.masks[0].cls, MaskClass::Vertebra);
    EXPECT_EQ(u.masks[0].score, 0.0);
    EXPECT_TRUE(ensemble({}, {}, {}, {}).masks.empty());
}

TEST(Ensemble, DegenerateOutlinesAreDroppedAndListed) {
    const Polygon line{{0, 0}, {1, 1}, {2, 2}};
    const Polygon point{{5, 5}, {5, 5}, {5, 5}, {5, 5}};
    const EnsembleResult r = ensemble({line, body(0)}, {body(0, 1, 1), point},
                                      {MaskClass::C2, MaskClass::Vertebra}, {0.9, 0.9});
    EXPECT_EQ(r.dropped_unet, std::vector<int>{0});
    EXPECT_EQ(r.dropped_mrcnn, std::vector<int>{1});
    ASSERT_EQ(r.masks.size(), 1u);
    EXPECT_EQ(r.masks[0].unet_index, 1);
}

TEST(Ensemble, MasksAreOrderedTopToBottom) {
    const EnsembleResult r = ensemble({body(3), body(0), body(2), body(1)}, {body(1), body(3), body(0), body(2)},
                                      std::vector<MaskClass>(4, MaskClass::Vertebra), {0.9, 0.9, 0.9, 0.9});
    ASSERT_EQ(r.masks.size(), 4u);
    for (size_t k = 1; k < r.masks.size(); ++k) EXPECT_LT(r.masks[k - 1].centroid.y, r.masks[k].centroid.y);
}

TEST(Ensemble, RejectsBadArgumentsNamingThem) {
    EnsembleParams bad;
    bad.eta = 0.0;
    EXPECT_THROW_MESSAGE(ensemble({}, {}, {}, {}, bad), "eta: must be in (0, 1]");
    bad = EnsembleParams{};
    bad.lam = INFINITY;
    EXPECT_THROW_MESSAGE(ensemble({}, {}, {}, {}, bad), "lam: must be finite and > 0");
    bad = EnsembleParams{};
    bad.min_area = -1;
    EXPECT_THROW_MESSAGE(ensemble({}, {}, {}, {}, bad), "min_area: must be finite and >= 0");
    EXPECT_THROW_MESSAGE(ensemble({}, {body(0)}, {}, {0.5}), "mrcnn_classes: expected 1 classes for 1 mrcnn polygons, got 0");
    EXPECT_THROW_MESSAGE(ensemble({}, {body(0)}, {MaskClass::C2}, {}), "mrcnn_scores: expected 1 scores");
    EXPECT_THROW_MESSAGE(ensemble({}, {body(0)}, {MaskClass::C2}, {NAN}), "mrcnn_scores[0]: score is not finite");
    EXPECT_THROW_MESSAGE(ensemble({body(0), {{0, 0}, {1, 1}}}, {}, {}, {}), "unet[1]: polygon needs at least 3 points");
    EXPECT_THROW_MESSAGE(parse_mask_class("L3", "mrcnn_classes[2]"), "mrcnn_classes[2]: unknown class 'L3'");
}

TEST(Ensemble, RandomSoupsNeverCrash) {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> coord(0, 120), unit(0, 1);
    std::uniform_int_distribution<int> vertices(3, 30), outlines(0, 5);
    for (int trial = 0; trial < 300; ++trial) {
        std::vector<Polygon> unet(outlines(rng)), mrcnn(outlines(rng));
        for (auto* set : {&unet, &mrcnn}) {
            for (Polygon& p : *set) {
                p.resize(vertices(rng));
                for (Point& q : p) q = {coord(rng), coord(rng)};
            }
        }
        std::vector<MaskClass> classes;
        std::vector<double> scores;
        for (size_t j = 0; j < mrcnn.size(); ++j) {
            classes.push_back(static_cast<MaskClass>(j % 3));
            scores.push_back(unit(rng));
        }
        const EnsembleResult r = ensemble(unet, mrcnn, classes, scores);
        for (const EnsembleMask& m : r.masks) {
            ASSERT_GT(m.area, 0.0);
            ASSERT_GE(m.polygon.size(), 3u);
        }
    }
}

}  // namespace
}  // namespace vertx
