#include "convert.hpp"

namespace vertx::bindings {

void bind_geometry(py::module_& m) {
    m.def(
        "polygon_area",
        [](py::handle p) {
            const Polygon polygon = polygon_from_python(p, "p");
            py::gil_scoped_release release;
            return vertx::polygon_area(polygon);
        },
        py::arg("p"),
        "Area (px^2) enclosed by the ring under the non-zero rule (0 for degenerate rings).");
    m.def(
        "intersection_area",
        [](py::handle a, py::handle b) {
            const Polygon pa = polygon_from_python(a, "a");
            const Polygon pb = polygon_from_python(b, "b");
            py::gil_scoped_release release;
            return vertx::intersection_area(pa, pb);
        },
        py::arg("a"), py::arg("b"), "Area (px^2) of the intersection of the two enclosed regions.");
    m.def(
        "polygon_union",
        [](py::handle a, py::handle b) {
            const Polygon pa = polygon_from_python(a, "a");
            const Polygon pb = polygon_from_python(b, "b");
            Polygon ring;
            {
                py::gil_scoped_release release;
                ring = vertx::polygon_union(pa, pb);
            }
            return polygon_copy(ring);
        },
        py::arg("a"), py::arg("b"),
        "Outer ring (N, 2) of the union of the two enclosed regions, holes filled; for disjoint "
        "inputs the ring of the larger part. Positive shoelace area, vertices on the 1/1024 px grid.");
    m.def(
        "polygon_centroid",
        [](py::handle p) {
            const Polygon polygon = polygon_from_python(p, "p");
            Point c;
            {
                py::gil_scoped_release release;
                c = vertx::polygon_centroid(polygon);
            }
            return py::make_tuple(c.x, c.y);
        },
        py::arg("p"), "Centroid (x, y) of the enclosed region (vertex mean if it encloses no area).");
}

}  // namespace vertx::bindings
