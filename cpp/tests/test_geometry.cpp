// Polygon geometry of the core: areas, intersections, unions and centroids under the non-zero
// fill rule, on the 1/kScale grid.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_support.hpp"
#include "vertx/geometry.hpp"

namespace vertx {
namespace {

using test::box;
using test::shoelace;

TEST(PolygonArea, SquareAndOrientation) {
    const Polygon square = box(0, 0, 10, 10);
    EXPECT_DOUBLE_EQ(polygon_area(square), 100.0);
    EXPECT_DOUBLE_EQ(polygon_area(Polygon(square.rbegin(), square.rend())), 100.0);
}

TEST(PolygonArea, NonZeroFillRule) {
    // A bow-tie covers both lobes; a ring wound twice counts once.
    EXPECT_DOUBLE_EQ(polygon_area({{0, 0}, {10, 10}, {10, 0}, {0, 10}}), 50.0);
    EXPECT_DOUBLE_EQ(polygon_area({{0, 0}, {4, 0}, {4, 4}, {0, 4}, {0, 0}, {4, 0}, {4, 4}, {0, 4}}), 16.0);
    // A pentagram: the centre is wound twice and still belongs to the region.
    Polygon star;
    for (int k = 0; k < 5; ++k) {
        const double angle = M_PI / 2 + k * 4 * M_PI / 5;
        star.push_back({100 * std::cos(angle), 100 * std::sin(angle)});
    }
    const double inner = 100 * std::cos(72 * M_PI / 180) / std::cos(36 * M_PI / 180);
    EXPECT_NEAR(polygon_area(star), 5 * 100 * inner * std::sin(36 * M_PI / 180), 0.5);
}

TEST(PolygonArea, TracedSpikeAndTouchingLobe) {
    // A zero-width spike adds nothing; a lobe touching at one vertex adds its area.
    const Polygon ring{{0, 0}, {10, 0}, {10, 5}, {15, 5}, {10, 5}, {10, 10}, {5, 10},
                       {5, 15}, {0, 15}, {0, 10}, {5, 10}, {0, 10}};
    EXPECT_DOUBLE_EQ(polygon_area(ring), 125.0);
}

TEST(PolygonArea, DegenerateRingsHaveNoArea) {
    EXPECT_EQ(polygon_area({{0, 0}, {5, 5}, {10, 10}}), 0.0);
    EXPECT_EQ(polygon_area({{3, 3}, {3, 3}, {3, 3}, {3, 3}}), 0.0);
    EXPECT_EQ(polygon_area({{0, 0}, {10, 0}, {0, 0}, {10, 0}}), 0.0);
}

TEST(PolygonArea, SubPixelPrecision) {
    const Polygon a = box(0, 0, 100, 10);
    const Polygon b = box(99.99, 0, 100, 10);
    EXPECT_NEAR(intersection_area(a, b), 0.1, 0.01);
}

TEST(IntersectionArea, OverlappingAndDisjoint) {
    EXPECT_DOUBLE_EQ(intersection_area(box(0, 0, 10, 10), box(5, 5, 10, 10)), 25.0);
    EXPECT_DOUBLE_EQ(intersection_area(box(0, 0, 10, 10), box(20, 0, 10, 10)), 0.0);
    EXPECT_DOUBLE_EQ(intersection_area(box(0, 0, 10, 10), box(10, 0, 10, 10)), 0.0);  // shared edge
}

TEST(PolygonUnion, OuterRingWithHolesFilled) {
    // A U shape closed by a bar: the union encloses a hole, which the outer ring fills.
    const Polygon u{{0, 0}, {30, 0}, {30, 30}, {20, 30}, {20, 10}, {10, 10}, {10, 30}, {0, 30}};
    const Polygon bar = box(0, 25, 30, 10);
    const Polygon ring = polygon_union(u, bar);
    EXPECT_GT(shoelace(ring), 0.0);
    EXPECT_NEAR(shoelace(ring), 30.0 * 35.0, 1e-9);
}

TEST(PolygonUnion, DisjointInputsGiveTheLargerRing) {
    const Polygon ring = polygon_union(box(0, 0, 2, 2), box(100, 100, 6, 6));
    EXPECT_DOUBLE_EQ(shoelace(ring), 36.0);
}

TEST(PolygonUnion, VerticesOnTheGrid) {
    const Polygon ring = polygon_union(box(0.1234, 0.5678, 10.3, 7.7), box(3.33, 2.22, 9.9, 8.8));
    ASSERT_FALSE(ring.empty());
    for (const Point& p : ring) {
        EXPECT_EQ(p.x * kScale, std::round(p.x * kScale));
        EXPECT_EQ(p.y * kScale, std::round(p.y * kScale));
    }
}

TEST(PolygonUnion, NothingEnclosedGivesAnEmptyRing) {
    EXPECT_TRUE(polygon_union({{0, 0}, {5, 5}, {10, 10}}, {{3, 3}, {3, 3}, {3, 3}}).empty());
}

TEST(PolygonCentroid, RegionAndVertexMean) {
    const Point c = polygon_centroid(box(10, 20, 4, 6));
    EXPECT_DOUBLE_EQ(c.x, 12.0);
    EXPECT_DOUBLE_EQ(c.y, 23.0);
    const Point m = polygon_centroid({{0, 0}, {3, 3}, {6, 6}});
    EXPECT_DOUBLE_EQ(m.x, 3.0);
    EXPECT_DOUBLE_EQ(m.y, 3.0);
}

TEST(Validation, ClearMessagesNamingTheArgument) {
    EXPECT_THROW_MESSAGE(validate_polygon({{0, 0}, {1, 1}}, "unet[3]"), "unet[3]: polygon needs at least 3 points, got 2");
    EXPECT_THROW_MESSAGE(validate_polygon({{0, 0}, {NAN, 1}, {1, 1}}, "p"), "p: polygon has NaN coordinates");
    EXPECT_THROW_MESSAGE(validate_polygon({{0, 0}, {INFINITY, 1}, {1, 1}}, "p"), "p: polygon has infinite coordinates");
    EXPECT_THROW_MESSAGE(validate_polygon({{0, 0}, {2e6, 1}, {1, 1}}, "a"), "a: coordinate 2e+06 is outside");
    EXPECT_THROW_MESSAGE(polygon_area({{0, 0}, {1, 1}}), "polygon: polygon needs at least 3 points");
    EXPECT_THROW_MESSAGE(intersection_area(box(0, 0, 1, 1), {{0, 0}, {NAN, 0}, {1, 1}}), "b: polygon has NaN");
}

TEST(Geometry, LargestCoordinatesStayExact) {
    // Near the range limit the integer grid still holds every coordinate exactly.
    const double far = kMaxAbsCoordinate - 20;
    EXPECT_DOUBLE_EQ(polygon_area(box(far, -far, 10, 10)), 100.0);
    EXPECT_DOUBLE_EQ(intersection_area(box(far, far, 10, 10), box(far + 5, far + 5, 10, 10)), 25.0);
}

TEST(Geometry, RandomSoupsNeverCrashAndStayConsistent) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> coord(-50, 50);
    std::uniform_int_distribution<int> count(3, 40);
    for (int trial = 0; trial < 300; ++trial) {
        Polygon a(count(rng)), b(count(rng));
        for (Point& p : a) p = {coord(rng), coord(rng)};
        for (Point& p : b) p = {coord(rng) + 20, coord(rng)};
        const double area_a = polygon_area(a), area_b = polygon_area(b);
        const double inter = intersection_area(a, b);
        ASSERT_GE(area_a, 0.0);
        ASSERT_GE(inter, 0.0);
        ASSERT_LE(inter, std::min(area_a, area_b) + 1e-3);
        const Polygon ring = polygon_union(a, b);
        if (!ring.empty()) {
            ASSERT_GT(shoelace(ring), 0.0);
        }
    }
}

}  // namespace
}  // namespace vertx
