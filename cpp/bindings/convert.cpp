// Array checks and conversions shared by the binding files.
#include "convert.hpp"

#include <cstring>

namespace vertx::bindings {

Polygon polygon_from_python(py::handle obj, const std::string& name, bool check_values) {
    py::array array = py::array::ensure(obj);
    if (!array) throw py::value_error(name + ": cannot be read as an array of coordinates");
    const char kind = array.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(name + ": expected real-valued coordinates, got dtype " +
                              py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 2 || array.shape(1) != 2) {
        std::string shape = "(";
        for (py::ssize_t d = 0; d < array.ndim(); ++d) {
            shape += (d ? ", " : "") + std::to_string(array.shape(d));
        }
        shape += array.ndim() == 1 ? ",)" : ")";
        throw py::value_error(name + ": expected an (N, 2) array of (x, y) coordinates, got shape " + shape);
    }
    auto coords = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
    if (!coords) throw py::value_error(name + ": coordinates cannot be converted to float64");
    Polygon polygon(static_cast<size_t>(coords.shape(0)));
    static_assert(sizeof(Point) == 2 * sizeof(double), "Point must be two packed doubles");
    if (!polygon.empty()) std::memcpy(polygon.data(), coords.data(), polygon.size() * sizeof(Point));
    if (check_values) {
        validate_polygon(polygon, name);
    } else if (polygon.size() < 3) {
        validate_polygon(polygon, name);  // the count check, with the same message
    }
    return polygon;
}

py::array polygon_view(const Polygon& polygon, py::handle owner) {
    py::array_t<double> view({static_cast<py::ssize_t>(polygon.size()), static_cast<py::ssize_t>(2)},
                             {static_cast<py::ssize_t>(sizeof(Point)), static_cast<py::ssize_t>(sizeof(double))},
                             polygon.empty() ? nullptr : &polygon.front().x, owner);
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return view;
}

py::array polygon_copy(const Polygon& polygon) {
    py::array_t<double> out({static_cast<py::ssize_t>(polygon.size()), static_cast<py::ssize_t>(2)});
    if (!polygon.empty()) std::memcpy(out.mutable_data(), polygon.data(), polygon.size() * sizeof(Point));
    return out;
}

py::list items_of(py::handle obj, const std::string& name) {
    if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || py::isinstance<py::dict>(obj) ||
        !py::hasattr(obj, "__iter__")) {
        throw py::type_error(name + ": expected a list, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    }
    return py::list(py::reinterpret_borrow<py::object>(obj));
}

void warn(const std::string& message) {
    if (PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 2) != 0) throw py::error_already_set();
}

}  // namespace vertx::bindings
