#include <sstream>

#include "convert.hpp"
#include "vertx/ensemble.hpp"

namespace vertx::bindings {

namespace {

std::vector<Polygon> polygons_from_python(py::handle obj, const char* name) {
    const py::list items = items_of(obj, name);
    std::vector<Polygon> polygons;
    polygons.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        // vertx::ensemble checks the coordinates itself, under the same names.
        polygons.push_back(polygon_from_python(items[i], std::string(name) + "[" + std::to_string(i) + "]", false));
    }
    return polygons;
}

std::vector<MaskClass> classes_from_python(py::handle obj) {
    const py::list items = items_of(obj, "mrcnn_classes");
    std::vector<MaskClass> classes;
    classes.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        const std::string name = "mrcnn_classes[" + std::to_string(i) + "]";
        if (!py::isinstance<py::str>(items[i])) {
            throw py::value_error(name + ": expected a class name ('vertebra', 'C2' or 'S1'), got " +
                                  py::str(py::type::of(items[i]).attr("__name__")).cast<std::string>());
        }
        classes.push_back(parse_mask_class(items[i].cast<std::string>(), name));
    }
    return classes;
}

std::vector<double> scores_from_python(py::handle obj) {
    if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj)) {
        throw py::type_error("mrcnn_scores: expected a list or 1-D array of numbers");
    }
    py::array array = py::array::ensure(obj);
    if (!array) throw py::value_error("mrcnn_scores: cannot be read as an array of numbers");
    const char kind = array.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error("mrcnn_scores: expected real numbers, got dtype " +
                              py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 1) {
        throw py::value_error("mrcnn_scores: expected a 1-D list of scores, got " +
                              std::to_string(array.ndim()) + " dimensions");
    }
    auto values = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
    if (!values) throw py::value_error("mrcnn_scores: cannot be converted to float64");
    return std::vector<double>(values.data(), values.data() + values.shape(0));
}

std::string index_list(const std::vector<int>& indices, const char* name) {
    std::ostringstream out;
    for (size_t k = 0; k < indices.size(); ++k) out << (k ? ", " : "") << name << "[" << indices[k] << "]";
    return out.str();
}

py::object index_or_none(int index) { return index < 0 ? py::object(py::none()) : py::object(py::int_(index)); }

}  // namespace

void bind_ensemble(py::module_& m) {
    py::class_<EnsembleMask>(m, "EnsembleMask",
                             "One vertebra of the ensemble: polygon, class, score, source, area.")
        .def_property_readonly(
            "polygon", [](py::object self) { return polygon_view(self.cast<const EnsembleMask&>().polygon, self); },
            "(N, 2) float64 ring, read-only: the input ring, or the union ring for agreements.")
        .def_property_readonly("cls", [](const EnsembleMask& e) { return to_string(e.cls); },
                               "'vertebra', 'C2' or 'S1'.")
        .def_readonly("score", &EnsembleMask::score, "Mask R-CNN score; 0.0 for U-Net-only masks.")
        .def_property_readonly("source", [](const EnsembleMask& e) { return to_string(e.source); },
                               "'agreement', 'split' or 'rescued'.")
        .def_readonly("area", &EnsembleMask::area, "Enclosed area in px^2.")
        .def_property_readonly("centroid", [](const EnsembleMask& e) { return py::make_tuple(e.centroid.x, e.centroid.y); },
                               "(x, y) centroid of the enclosed region.")
        .def_property_readonly("unet_index", [](const EnsembleMask& e) { return index_or_none(e.unet_index); },
                               "Index of the U-Net input it came from, or None.")
        .def_property_readonly("mrcnn_index", [](const EnsembleMask& e) { return index_or_none(e.mrcnn_index); },
                               "Index of the Mask R-CNN input it came from, or None.")
        .def("__repr__", [](const EnsembleMask& e) {
            std::ostringstream out;
            out << "EnsembleMask(cls='" << to_string(e.cls) << "', score=" << e.score << ", source='"
                << to_string(e.source) << "', area=" << e.area << ", centroid=(" << e.centroid.x << ", "
                << e.centroid.y << "), vertices=" << e.polygon.size() << ")";
            return out.str();
        });

    m.def(
        "ensemble",
        [](py::handle unet, py::handle mrcnn, py::handle mrcnn_classes, py::handle mrcnn_scores, double eta,
           double lam, double tau, double ref_score, double min_area) {
            EnsembleParams params{eta, lam, tau, ref_score, min_area};
            params.validate();
            const std::vector<Polygon> cu = polygons_from_python(unet, "unet");
            const std::vector<Polygon> cm = polygons_from_python(mrcnn, "mrcnn");
            const std::vector<MaskClass> classes = classes_from_python(mrcnn_classes);
            const std::vector<double> scores = scores_from_python(mrcnn_scores);
            EnsembleResult result;
            {
                py::gil_scoped_release release;
                result = vertx::ensemble(cu, cm, classes, scores, params);
            }
            const size_t dropped = result.dropped_unet.size() + result.dropped_mrcnn.size();
            if (dropped > 0) {
                std::string which = index_list(result.dropped_unet, "unet");
                const std::string more = index_list(result.dropped_mrcnn, "mrcnn");
                if (!more.empty()) which += (which.empty() ? "" : ", ") + more;
                warn("ensemble: dropped " + std::to_string(dropped) +
                     " degenerate polygon(s) (fewer than 3 distinct points or no enclosed area): " + which);
            }
            py::list out;
            for (EnsembleMask& mask : result.masks) out.append(py::cast(std::move(mask)));
            return out;
        },
        py::arg("unet"), py::arg("mrcnn"), py::arg("mrcnn_classes"), py::arg("mrcnn_scores"), py::kw_only(),
        py::arg("eta") = 0.6, py::arg("lam") = 2.0, py::arg("tau") = 0.3, py::arg("ref_score") = 0.5,
        py::arg("min_area") = 1.0,
        "VertXNet ensemble of U-Net and Mask R-CNN outlines (SPEC section 3); list of EnsembleMask "
        "ordered top to bottom. Degenerate polygons are dropped with a RuntimeWarning.");
}

}  // namespace vertx::bindings
