// vertxnet._core: Python bindings of the vertx_core geometry library.
#include "convert.hpp"

namespace vertx::bindings {
void bind_morphometry(py::module_& m);  // morphometry.cpp
void bind_decoder(py::module_& m);      // decoder.cpp
}

PYBIND11_MODULE(_core, m) {
    namespace vb = vertx::bindings;
    m.doc() =
        "vertxnet C++ geometry core: polygon operations (Clipper), the VertXNet ensemble rules "
        "and zipper labelling. Polygons are (N, 2) float64 arrays of (x, y) pixel coordinates.";
    m.attr("SCALE") = vertx::kScale;
    m.attr("MAX_ABS_COORDINATE") = vertx::kMaxAbsCoordinate;
    vb::bind_geometry(m);
    vb::bind_ensemble(m);
    vb::bind_labelling(m);
    vb::bind_morphometry(m);
    vb::bind_decoder(m);
}
