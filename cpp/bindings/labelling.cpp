#include <cmath>
#include <sstream>

#include "convert.hpp"
#include "vertx/labelling.hpp"

namespace vertx::bindings {

namespace {

// The labelling as Python objects, built once with the GIL held.
struct PyLabelling {
    py::list labels;
    py::object view;
    std::string reference;
    py::list flags;
    py::dict excluded;
};

// A mask given as an object with .polygon/.cls/.score or as a (polygon, cls, score) tuple; its
// centroid is computed later without the GIL.
struct PendingMask {
    Polygon polygon;
    bool needs_centroid = false;
};

LabelInput label_input_from_python(py::handle item, const std::string& name, PendingMask& pending) {
    LabelInput input;
    if (py::isinstance<EnsembleMask>(item)) {
        const EnsembleMask& mask = item.cast<const EnsembleMask&>();
        input.centroid = mask.centroid;
        input.cls = mask.cls;
        input.score = mask.score;
        return input;
    }
    py::object polygon, cls, score;
    if (py::hasattr(item, "polygon") && py::hasattr(item, "cls") && py::hasattr(item, "score")) {
        polygon = item.attr("polygon");
        cls = item.attr("cls");
        score = item.attr("score");
    } else if (py::isinstance<py::sequence>(item) && !py::isinstance<py::str>(item) && py::len(item) == 3) {
        const py::sequence seq = py::reinterpret_borrow<py::sequence>(item);
        polygon = seq[0];
        cls = seq[1];
        score = seq[2];
    } else {
        throw py::value_error(name + ": expected an EnsembleMask or a (polygon, cls, score) tuple");
    }
    pending.polygon = polygon_from_python(polygon, name + ".polygon");
    pending.needs_centroid = true;
    if (!py::isinstance<py::str>(cls)) throw py::value_error(name + ".cls: expected 'vertebra', 'C2' or 'S1'");
    input.cls = parse_mask_class(cls.cast<std::string>(), name + ".cls");
    if (py::isinstance<py::bool_>(score) || !(py::isinstance<py::float_>(score) || py::isinstance<py::int_>(score) ||
                                              py::hasattr(score, "__float__"))) {
        throw py::value_error(name + ".score: expected a number");
    }
    try {
        input.score = score.cast<double>();
    } catch (const py::cast_error&) {
        throw py::value_error(name + ".score: expected a real number");
    }
    if (!std::isfinite(input.score)) throw py::value_error(name + ".score: score is not finite");
    return input;
}

}  // namespace

void bind_labelling(py::module_& m) {
    py::class_<PyLabelling>(m, "Labelling", "Anatomical names of a list of masks (SPEC section 4).")
        .def_readonly("labels", &PyLabelling::labels, "Per mask (input order): level name or None.")
        .def_readonly("view", &PyLabelling::view, "'cervical', 'lumbar', 'whole' or None.")
        .def_readonly("reference", &PyLabelling::reference, "'C2', 'S1', 'C2+S1' or 'none'.")
        .def_readonly("flags", &PyLabelling::flags, "e.g. 'no_reference', 'gap_inferred', 'label_conflict'.")
        .def_readonly("excluded", &PyLabelling::excluded,
                      "Mask index -> 'above_reference', 'below_reference' or 'past_sequence_end'.")
        .def("__repr__", [](const PyLabelling& l) {
            return "Labelling(labels=" + py::repr(l.labels).cast<std::string>() +
                   ", view=" + py::repr(l.view).cast<std::string>() + ", reference='" + l.reference +
                   "', flags=" + py::repr(l.flags).cast<std::string>() +
                   ", excluded=" + py::repr(l.excluded).cast<std::string>() + ")";
        });

    m.def(
        "zip_labels",
        [](py::handle masks, double gap_factor) {
            const py::list items = items_of(masks, "masks");
            std::vector<LabelInput> inputs(items.size());
            std::vector<PendingMask> pending(items.size());
            for (size_t i = 0; i < items.size(); ++i) {
                inputs[i] = label_input_from_python(items[i], "masks[" + std::to_string(i) + "]", pending[i]);
            }
            Labelling result;
            {
                py::gil_scoped_release release;
                for (size_t i = 0; i < inputs.size(); ++i) {
                    if (!pending[i].needs_centroid) continue;
                    if (!(vertx::polygon_area(pending[i].polygon) > 0.0)) {
                        throw InvalidInput("masks[" + std::to_string(i) + "].polygon: polygon encloses no area");
                    }
                    inputs[i].centroid = vertx::polygon_centroid(pending[i].polygon);
                }
                result = vertx::zip_labels(inputs, gap_factor);
            }
            PyLabelling out;
            for (const int level : result.levels) {
                out.labels.append(level > 0 ? py::object(py::str(level_name(level))) : py::object(py::none()));
            }
            out.view = result.view.empty() ? py::object(py::none()) : py::object(py::str(result.view));
            out.reference = result.reference;
            for (const std::string& flag : result.flags) out.flags.append(flag);
            for (const auto& [index, reason] : result.excluded) out.excluded[py::int_(index)] = to_string(reason);
            return out;
        },
        py::arg("masks"), py::kw_only(), py::arg("gap_factor") = 1.6,
        "Zipper labelling (SPEC section 4) of EnsembleMask objects or (polygon, cls, score) tuples.");
}

}  // namespace vertx::bindings
