// Array checks and conversions shared by the binding files. Binding code only validates,
// converts and releases the GIL; all geometry lives in vertx_core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "vertx/geometry.hpp"

namespace vertx::bindings {

namespace py = pybind11;

/// An (N, 2) array of real numbers (any integer or float dtype, converted to float64) as a
/// Polygon; ValueError naming `name` for anything else (shape, dtype, N < 3 and, with
/// check_values, NaN/inf or out-of-range coordinates; leave that to the core when it checks
/// them itself under the same name).
Polygon polygon_from_python(py::handle obj, const std::string& name, bool check_values = true);

/// A read-only (N, 2) float64 array viewing `polygon`, kept alive by `owner`.
py::array polygon_view(const Polygon& polygon, py::handle owner);

/// A new (N, 2) float64 array holding a copy of `polygon`.
py::array polygon_copy(const Polygon& polygon);

/// The items of any iterable except str/bytes/mappings; TypeError naming `name` otherwise.
py::list items_of(py::handle obj, const std::string& name);

/// Raises a RuntimeWarning (Python warnings machinery) with `message`.
void warn(const std::string& message);

void bind_geometry(py::module_& m);
void bind_ensemble(py::module_& m);
void bind_labelling(py::module_& m);

}  // namespace vertx::bindings
