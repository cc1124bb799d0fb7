// Small helpers shared by the native tests of the core.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "vertx/geometry.hpp"

namespace vertx::test {

inline Polygon box(double x, double y, double w, double h) {
    return {{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}};
}

/// Signed shoelace area of a ring (positive counter-clockwise in x-right, y-up terms).
inline double shoelace(const Polygon& ring) {
    double twice = 0.0;
    for (size_t i = 0; i < ring.size(); ++i) {
        const Point& a = ring[i];
        const Point& b = ring[(i + 1) % ring.size()];
        twice += a.x * b.y - b.x * a.y;
    }
    return 0.5 * twice;
}

}  // namespace vertx::test

/// Expects `statement` to throw vertx::InvalidInput whose message contains `text`.
#define EXPECT_THROW_MESSAGE(statement, text)                                                      \
    do {                                                                                           \
        try {                                                                                      \
            statement;                                                                             \
            ADD_FAILURE() << "expected InvalidInput containing: " << (text);                       \
        } catch (const ::vertx::InvalidInput& error) {                                             \
            EXPECT_NE(std::string(error.what()).find(text), std::string::npos) << error.what();    \
        }                                                                                          \
    } while (0)
