// Bindings of the labelling decoder: validation and conversion only; the model is in vertx_core.
#include <cmath>
#include <optional>
#include <sstream>

#include <pybind11/stl.h>

#include "convert.hpp"
#include "vertx/decoder.hpp"

namespace vertx::bindings {

namespace {

// The decoding as Python objects, built once with the GIL held.
struct PyDecoding {
    py::list labels;
    py::array confidence;
    py::object view;
    py::object view_probability;
    py::dict view_posterior;
    std::string reference;
    py::list flags;
    py::dict excluded;
    std::string method;
};

std::string type_name(py::handle obj) { return py::str(py::type::of(obj).attr("__name__")).cast<std::string>(); }

double real_number(py::handle obj, const std::string& name) {
    if (py::isinstance<py::bool_>(obj) || py::isinstance<py::str>(obj) || !py::hasattr(obj, "__float__")) {
        throw py::value_error(name + ": expected a number, got " + type_name(obj));
    }
    return obj.cast<double>();
}

// A 1-D array of n real numbers (any real dtype); ValueError naming `name` otherwise.
std::vector<double> real_vector(py::handle obj, const std::string& name, py::ssize_t n = -1) {
    if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || py::isinstance<py::dict>(obj)) {
        throw py::value_error(name + ": expected a sequence of numbers, got " + type_name(obj));
    }
    py::array array = py::array::ensure(obj);
    if (!array) throw py::value_error(name + ": cannot be read as an array of numbers");
    const char kind = array.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(name + ": expected real numbers, got dtype " + py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 1) {
        throw py::value_error(name + ": expected a 1-D sequence, got " + std::to_string(array.ndim()) + " dimensions");
    }
    if (n >= 0 && array.shape(0) != n) {
        throw py::value_error(name + ": expected " + std::to_string(n) + " values, got " + std::to_string(array.shape(0)));
    }
    auto values = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
    if (!values) throw py::value_error(name + ": cannot be converted to float64");
    return std::vector<double>(values.data(), values.data() + values.shape(0));
}

// An (n, k) array of real numbers as rows.
std::vector<std::vector<double>> real_matrix(py::handle obj, const std::string& name, py::ssize_t n, py::ssize_t k) {
    py::array array = py::array::ensure(obj);
    if (!array) throw py::value_error(name + ": cannot be read as an array of numbers");
    const char kind = array.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::value_error(name + ": expected real numbers, got dtype " + py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 2 || array.shape(0) != n || array.shape(1) != k) {
        std::string shape = "(";
        for (py::ssize_t d = 0; d < array.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(array.shape(d));
        shape += array.ndim() == 1 ? ",)" : ")";
        throw py::value_error(name + ": expected shape (" + std::to_string(n) + ", " + std::to_string(k) + "), got " + shape);
    }
    auto values = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
    if (!values) throw py::value_error(name + ": cannot be converted to float64");
    std::vector<std::vector<double>> rows(static_cast<size_t>(n));
    for (py::ssize_t i = 0; i < n; ++i) rows[i].assign(values.data() + i * k, values.data() + (i + 1) * k);
    return rows;
}

MaskClass mask_class(py::handle cls, const std::string& name) {
    if (!py::isinstance<py::str>(cls)) throw py::value_error(name + ": expected 'vertebra', 'C2' or 'S1'");
    return parse_mask_class(cls.cast<std::string>(), name);
}

int level_of_name(const std::string& text) {
    for (int level = 1; level <= kLevelCount; ++level) {
        if (level_name(level) == text) return level;
    }
    return -1;
}

// Everything decode_* share: parameters, class columns, class probabilities, view prior, excluded.
struct Options {
    DecoderParams params;
    std::vector<double> view_prior;
};

Options options_from_python(py::handle params, py::handle class_names, py::handle class_prior, py::handle view_prior,
                            std::optional<double> confidence_threshold, std::optional<double> ref_score,
                            std::optional<double> gap_factor) {
    Options o;
    if (!params.is_none()) {
        if (!py::isinstance<DecoderParams>(params)) {
            throw py::type_error("params: expected a DecoderParams, got " + type_name(params));
        }
        o.params = params.cast<DecoderParams>();
    }
    if (confidence_threshold) o.params.confidence_threshold = *confidence_threshold;
    if (ref_score) o.params.ref_score = *ref_score;
    if (gap_factor) o.params.gap_factor = *gap_factor;
    if (!class_names.is_none()) {
        const py::list names = items_of(class_names, "class_names");
        o.params.class_levels.clear();
        for (size_t c = 0; c < names.size(); ++c) {
            const std::string where = "class_names[" + std::to_string(c) + "]";
            if (!py::isinstance<py::str>(names[c])) throw py::value_error(where + ": expected a class name");
            const std::string text = names[c].cast<std::string>();
            const int level = text == "vertebra" ? 0 : level_of_name(text);
            if (level < 0) throw py::value_error(where + ": '" + text + "' is neither 'vertebra' nor a level C1..S1");
            o.params.class_levels.push_back(level);
        }
    }
    if (!class_prior.is_none()) o.params.class_prior = real_vector(class_prior, "class_prior");
    if (!view_prior.is_none()) {
        if (py::isinstance<py::dict>(view_prior)) {
            const py::dict d = py::reinterpret_borrow<py::dict>(view_prior);
            std::vector<double> values(kViewCount, 0.0);
            for (auto item : d) {
                if (!py::isinstance<py::str>(item.first)) throw py::value_error("view_prior: keys must be view names");
                const std::string key = item.first.cast<std::string>();
                int v = -1;
                for (int j = 0; j < kViewCount; ++j) {
                    if (key == view_name(j)) v = j;
                }
                if (v < 0) throw py::value_error("view_prior: unknown view '" + key + "'");
                values[v] = real_number(item.second, "view_prior['" + key + "']");
            }
            o.view_prior = values;
        } else {
            o.view_prior = real_vector(view_prior, "view_prior");
        }
    }
    return o;
}

std::vector<std::vector<double>> probs_from_python(py::handle class_probs, size_t n, size_t columns) {
    std::vector<std::vector<double>> rows(n);
    if (class_probs.is_none()) return rows;
    if (py::isinstance<py::array>(class_probs)) {
        return real_matrix(class_probs, "class_probs", static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(columns));
    }
    const py::list items = items_of(class_probs, "class_probs");
    if (items.size() != n) {
        throw py::value_error("class_probs: expected one row per mask (" + std::to_string(n) + "), got " +
                              std::to_string(items.size()));
    }
    for (size_t i = 0; i < n; ++i) {
        if (items[i].is_none()) continue;  // derived from the mask's class and score
        rows[i] = real_vector(items[i], "class_probs[" + std::to_string(i) + "]", static_cast<py::ssize_t>(columns));
    }
    return rows;
}

std::vector<bool> excluded_from_python(py::handle excluded, size_t n) {
    std::vector<bool> out(n, false);
    if (excluded.is_none()) return out;
    const py::list items = items_of(excluded, "excluded");
    if (items.size() != n) {
        throw py::value_error("excluded: expected one flag per mask (" + std::to_string(n) + "), got " +
                              std::to_string(items.size()));
    }
    for (size_t i = 0; i < n; ++i) {
        py::handle item = items[i];
        const std::string name = "excluded[" + std::to_string(i) + "]";
        const std::string kind = type_name(item);
        const bool numpy_bool = py::hasattr(item, "dtype") &&
                                py::str(item.attr("dtype").attr("kind")).cast<std::string>() == "b";
        if (py::isinstance<py::bool_>(item) || numpy_bool) {
            out[i] = py::bool_(py::reinterpret_borrow<py::object>(item)).cast<bool>();
        } else if (py::isinstance<py::int_>(item) || py::hasattr(item, "__index__")) {
            const long v = item.attr("__index__")().cast<long>();
            if (v != 0 && v != 1) throw py::value_error(name + ": expected True/False (or 0/1), got " + std::to_string(v));
            out[i] = v == 1;
        } else {
            throw py::value_error(name + ": expected True/False, got " + kind);
        }
    }
    return out;
}

// Masks as ensemble() returns them, objects with .polygon/.cls/.score, or (polygon, cls, score).
struct PendingMask {
    const Polygon* outline = nullptr;  // an EnsembleMask's own ring (kept alive by the caller's list)
    Polygon polygon;                    // or a converted array
    bool needs_measure = false;         // centroid and area still to compute (without the GIL)
};

void mask_from_python(py::handle item, const std::string& name, DecoderMask& mask, PendingMask& pending) {
    if (py::isinstance<EnsembleMask>(item)) {
        const EnsembleMask& e = item.cast<const EnsembleMask&>();
        mask.centroid = e.centroid;
        mask.area = e.area;
        mask.cls = e.cls;
        mask.score = e.score;
        pending.outline = &e.polygon;
        return;
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
    pending.outline = &pending.polygon;
    pending.needs_measure = true;
    mask.cls = mask_class(cls, name + ".cls");
    mask.score = real_number(score, name + ".score");
}

py::tuple features_tuple(const std::vector<DecoderMask>& masks) {
    const py::ssize_t n = static_cast<py::ssize_t>(masks.size());
    py::array_t<double> centroids({n, static_cast<py::ssize_t>(2)});
    py::array_t<double> areas(n);
    py::array_t<double> extents({n, static_cast<py::ssize_t>(2)});
    auto c = centroids.mutable_unchecked<2>();
    auto a = areas.mutable_unchecked<1>();
    auto e = extents.mutable_unchecked<2>();
    for (py::ssize_t i = 0; i < n; ++i) {
        c(i, 0) = masks[i].centroid.x;
        c(i, 1) = masks[i].centroid.y;
        a(i) = masks[i].area;
        e(i, 0) = masks[i].height;
        e(i, 1) = masks[i].width;
    }
    return py::make_tuple(centroids, areas, extents);
}

// Centroids, areas and chain extents of Python masks (the GIL is released while measuring).
std::vector<DecoderMask> measured_masks(py::handle masks, const std::vector<bool>* excluded_flags,
                                        py::handle excluded) {
    const py::list items = items_of(masks, "masks");
    std::vector<DecoderMask> out(items.size());
    std::vector<PendingMask> pending(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        mask_from_python(items[i], "masks[" + std::to_string(i) + "]", out[i], pending[i]);
    }
    const std::vector<bool> flags = excluded_flags ? *excluded_flags : excluded_from_python(excluded, items.size());
    for (size_t i = 0; i < out.size(); ++i) out[i].excluded = flags[i];
    std::vector<const Polygon*> outlines(out.size());
    {
        py::gil_scoped_release release;
        for (size_t i = 0; i < out.size(); ++i) {
            if (pending[i].needs_measure) {
                out[i].area = vertx::polygon_area(pending[i].polygon);
                if (!(out[i].area > 0.0)) {
                    throw InvalidInput("masks[" + std::to_string(i) + "].polygon: polygon encloses no area");
                }
                out[i].centroid = vertx::polygon_centroid(pending[i].polygon);
            }
            outlines[i] = pending[i].outline;
        }
        measure_chain_extents(out, outlines);
    }
    return out;
}

PyDecoding to_python(const Decoding& d) {
    PyDecoding out;
    for (const int level : d.levels) {
        out.labels.append(level > 0 ? py::object(py::str(level_name(level))) : py::object(py::none()));
    }
    py::array_t<double> confidence(static_cast<py::ssize_t>(d.confidence.size()));
    std::copy(d.confidence.begin(), d.confidence.end(), confidence.mutable_data());
    out.confidence = confidence;
    out.view = d.view.empty() ? py::object(py::none()) : py::object(py::str(d.view));
    out.view_probability = d.view.empty() ? py::object(py::none()) : py::object(py::float_(d.view_probability));
    for (int v = 0; v < kViewCount; ++v) out.view_posterior[py::str(view_name(v))] = d.view_posterior[v];
    out.reference = d.reference;
    for (const std::string& flag : d.flags) out.flags.append(flag);
    for (const auto& [index, reason] : d.excluded) out.excluded[py::int_(index)] = to_string(reason);
    out.method = d.method;
    return out;
}

Decoding run_decoder(std::vector<DecoderMask>& masks, py::handle class_probs, const Options& o) {
    const std::vector<std::vector<double>> rows = probs_from_python(class_probs, masks.size(), o.params.class_levels.size());
    for (size_t i = 0; i < masks.size(); ++i) masks[i].probs = rows[i];
    py::gil_scoped_release release;
    return vertx::decode_labels(masks, o.params, o.view_prior);
}

// Names of the parameters Python sees, in definition order (pickling, equality, repr).
std::vector<std::string>& param_names() {
    static std::vector<std::string> names;
    return names;
}

template <class T>
void def_param(py::class_<DecoderParams>& cls, const char* name, T DecoderParams::*member, const char* doc) {
    cls.def_readwrite(name, member, doc);
    param_names().emplace_back(name);
}

py::dict param_values(const py::object& self) {
    py::dict out;
    for (const std::string& name : param_names()) out[name.c_str()] = self.attr(name.c_str());
    return out;
}

}  // namespace

void bind_decoder(py::module_& m) {
    py::class_<DecoderParams> params(m, "DecoderParams",
                                     "Parameters of decode_labels (docs/DESIGN.md, 'Labelling as sequence decoding').");
    params.def(py::init([](py::kwargs kwargs) {
                   DecoderParams p;
                   py::object self = py::cast(p);
                   for (auto item : kwargs) {
                       const std::string key = item.first.cast<std::string>();
                       if (!py::hasattr(self, key.c_str()) || key.rfind("_", 0) == 0) {
                           throw py::type_error("DecoderParams: unknown parameter '" + key + "'");
                       }
                       self.attr(key.c_str()) = item.second;
                   }
                   DecoderParams out = self.cast<DecoderParams>();
                   out.validate();
                   return out;
               }),
               "DecoderParams(**fields): the defaults, with the given fields replaced (validated).");
    def_param(params, "confidence_threshold", &DecoderParams::confidence_threshold,
              "Names whose confidence is below this are withheld (0.5), in [0, 1].");
    def_param(params, "ref_score", &DecoderParams::ref_score, "C2/S1 masks scoring at least this are references (0.5).");
    def_param(params, "gap_factor", &DecoderParams::gap_factor, "SPEC section 4 gap factor (1.6), > 1.");
    def_param(params, "gap_sharpness", &DecoderParams::gap_sharpness,
              "Decay per median step of a skip other than the zipper's (8.0), > 0.");
    def_param(params, "off_gap_weight", &DecoderParams::off_gap_weight,
              "Weight of a skip other than the zipper's before the decay (0.5), in (0, 1].");
    def_param(params, "outside_weight", &DecoderParams::outside_weight,
              "Likelihood of a mask being an outside object rather than a body (0.15), in (0, 1].");
    def_param(params, "outside_start", &DecoderParams::outside_start,
              "Probability that the top mask (and each next) lies above the named run (0.3), in [0, 1).");
    def_param(params, "end_hazard", &DecoderParams::end_hazard,
              "Probability that the named run ends after a level before S1 (0.05), in [0, 1).");
    def_param(params, "out_of_view_weight", &DecoderParams::out_of_view_weight,
              "Start weight of a level outside the view's start window (0.05), in (0, 1].");
    def_param(params, "size_sigma", &DecoderParams::size_sigma,
              "Sd of log(area ratio) between named neighbours (0.25), > 0.");
    def_param(params, "outside_size_sigma", &DecoderParams::outside_size_sigma,
              "Sd of log(area ratio) next to an outside mask (0.4), > 0.");
    def_param(params, "vertebra_aspect_mean", &DecoderParams::vertebra_aspect_mean,
              "Mean log(height/width) of a body along the chain (-0.2).");
    def_param(params, "vertebra_aspect_sd", &DecoderParams::vertebra_aspect_sd, "(0.35), > 0.");
    def_param(params, "c2_aspect_mean", &DecoderParams::c2_aspect_mean, "C2 with its dens (0.2).");
    def_param(params, "c2_aspect_sd", &DecoderParams::c2_aspect_sd, "(0.5), > 0.");
    def_param(params, "s1_aspect_mean", &DecoderParams::s1_aspect_mean, "S1 (-0.4).");
    def_param(params, "s1_aspect_sd", &DecoderParams::s1_aspect_sd, "(0.4), > 0.");
    params.def_property(
        "level_area", [](const DecoderParams& p) { return std::vector<double>(p.level_area.begin(), p.level_area.end()); },
        [](DecoderParams& p, py::handle values) {
            const std::vector<double> v = real_vector(values, "level_area", kLevelCount);
            std::copy(v.begin(), v.end(), p.level_area.begin());
        },
        "Typical body area per level C1..S1 (25 values, mm^2; only ratios matter).");
    params.def_property(
        "view_windows",
        [](const DecoderParams& p) {
            py::list out;
            for (const auto& w : p.view_windows) out.append(py::make_tuple(w[0], w[1]));
            return out;
        },
        [](DecoderParams& p, py::handle values) {
            const py::list items = items_of(values, "view_windows");
            if (items.size() != kViewCount) throw py::value_error("view_windows: expected 5 (first, last) pairs");
            for (int v = 0; v < kViewCount; ++v) {
                const py::list pair = items_of(items[v], "view_windows[" + std::to_string(v) + "]");
                if (pair.size() != 2) throw py::value_error("view_windows[" + std::to_string(v) + "]: expected (first, last)");
                p.view_windows[v] = {pair[0].cast<int>(), pair[1].cast<int>()};
            }
        },
        "Levels (first, last), 1-based, where each view's topmost named vertebra lies, in VIEWS order.");
    param_names().emplace_back("level_area");
    param_names().emplace_back("view_windows");
    params.def("validate", &DecoderParams::validate, "Raises ValueError naming the first parameter out of range.");
    // Value semantics, so that a PipelineConfig holding one compares, copies and pickles by value.
    params.def("_asdict", [](const py::object& self) { return param_values(self); },
               "Every parameter by name (the keyword arguments that rebuild it).");
    params.def("__eq__", [](const py::object& self, const py::object& other) -> py::object {
        if (!py::isinstance<DecoderParams>(other)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
        return py::bool_(param_values(self).equal(param_values(other)));
    });
    params.attr("__hash__") = py::none();  // mutable
    params.def(py::pickle([](const py::object& self) { return param_values(self); },
                          [](const py::dict& state) {
                              py::object cls = py::module_::import("vertxnet._core").attr("DecoderParams");
                              return cls(**state).cast<DecoderParams>();
                          }));
    params.def("__repr__", [](const py::object& self) {
        std::string s = "DecoderParams(";
        bool first = true;
        for (const std::string& name : param_names()) {
            if (name == "level_area" || name == "view_windows") continue;
            s += (first ? "" : ", ") + name + "=" + py::repr(self.attr(name.c_str())).cast<std::string>();
            first = false;
        }
        return s + ", level_area=[...], view_windows=[...])";
    });

    py::class_<PyDecoding>(m, "Decoding", "Result of decode_labels / decode_chain.")
        .def_readonly("labels", &PyDecoding::labels, "Per mask (input order): level name or None.")
        .def_readonly("confidence", &PyDecoding::confidence,
                      "Per mask: marginal probability of its level, float64 (n,); 0.0 for unnamed masks.")
        .def_readonly("view", &PyDecoding::view, "One of VIEWS, 'whole' (named from C2 and S1) or None.")
        .def_readonly("view_probability", &PyDecoding::view_probability, "Posterior probability of view, or None.")
        .def_readonly("view_posterior", &PyDecoding::view_posterior, "View name -> posterior probability.")
        .def_readonly("reference", &PyDecoding::reference, "'C2', 'S1', 'C2+S1' or 'none'.")
        .def_readonly("flags", &PyDecoding::flags, "e.g. 'labels_uncertain', 'gap_inferred', 'label_conflict'.")
        .def_readonly("excluded", &PyDecoding::excluded,
                      "Mask index -> 'above_reference', 'below_reference' or 'past_sequence_end'.")
        .def_readonly("method", &PyDecoding::method, "'reference' (SPEC section 4 names) or 'chain' (decoded).")
        .def("__repr__", [](const PyDecoding& d) {
            return "Decoding(labels=" + py::repr(d.labels).cast<std::string>() +
                   ", view=" + py::repr(d.view).cast<std::string>() + ", reference='" + d.reference +
                   "', flags=" + py::repr(d.flags).cast<std::string>() + ", method='" + d.method + "')";
        });

    py::tuple views(kViewCount);
    for (int v = 0; v < kViewCount; ++v) views[v] = py::str(view_name(v));
    m.attr("VIEWS") = views;

    m.def(
        "chain_features",
        [](py::handle masks, py::handle excluded) { return features_tuple(measured_masks(masks, nullptr, excluded)); },
        py::arg("masks"), py::kw_only(), py::arg("excluded") = py::none(),
        "(centroids (n, 2), areas (n,), extents (n, 2)) that decode_labels computes: extents are the "
        "(height, width) of each polygon along and across the chain; (0, 0) for excluded masks.");

    m.def(
        "decode_labels",
        [](py::handle masks, py::handle class_probs, py::handle view_prior, py::handle excluded, py::handle class_names,
           py::handle class_prior, py::handle params, std::optional<double> confidence_threshold,
           std::optional<double> ref_score, std::optional<double> gap_factor) {
            const Options o = options_from_python(params, class_names, class_prior, view_prior, confidence_threshold,
                                                  ref_score, gap_factor);
            std::vector<DecoderMask> decoder_masks = measured_masks(masks, nullptr, excluded);
            return to_python(run_decoder(decoder_masks, class_probs, o));
        },
        py::arg("masks"), py::kw_only(), py::arg("class_probs") = py::none(), py::arg("view_prior") = py::none(),
        py::arg("excluded") = py::none(), py::arg("class_names") = py::none(), py::arg("class_prior") = py::none(),
        py::arg("params") = py::none(), py::arg("confidence_threshold") = py::none(),
        py::arg("ref_score") = py::none(), py::arg("gap_factor") = py::none(),
        "Labelling as sequence decoding of EnsembleMask objects or (polygon, cls, score) tuples.");

    m.def(
        "decode_chain",
        [](py::handle centroids, py::handle areas, py::handle classes, py::handle scores, py::handle extents,
           py::handle class_probs, py::handle view_prior, py::handle excluded, py::handle class_names,
           py::handle class_prior, py::handle params, std::optional<double> confidence_threshold,
           std::optional<double> ref_score, std::optional<double> gap_factor) {
            const Options o = options_from_python(params, class_names, class_prior, view_prior, confidence_threshold,
                                                  ref_score, gap_factor);
            const py::list class_items = items_of(classes, "classes");
            const py::ssize_t n = static_cast<py::ssize_t>(class_items.size());
            const auto c = real_matrix(centroids, "centroids", n, 2);
            const std::vector<double> a = real_vector(areas, "areas", n);
            const std::vector<double> s = real_vector(scores, "scores", n);
            std::vector<std::vector<double>> e;
            if (!extents.is_none()) e = real_matrix(extents, "extents", n, 2);
            const std::vector<bool> flags = excluded_from_python(excluded, static_cast<size_t>(n));
            std::vector<DecoderMask> masks(static_cast<size_t>(n));
            for (py::ssize_t i = 0; i < n; ++i) {
                masks[i].centroid = {c[i][0], c[i][1]};
                masks[i].area = a[i];
                masks[i].score = s[i];
                masks[i].cls = mask_class(class_items[i], "classes[" + std::to_string(i) + "]");
                if (!e.empty()) {
                    masks[i].height = e[i][0];
                    masks[i].width = e[i][1];
                }
                masks[i].excluded = flags[i];
            }
            return to_python(run_decoder(masks, class_probs, o));
        },
        py::arg("centroids"), py::arg("areas"), py::arg("classes"), py::arg("scores"), py::kw_only(),
        py::arg("extents") = py::none(), py::arg("class_probs") = py::none(), py::arg("view_prior") = py::none(),
        py::arg("excluded") = py::none(), py::arg("class_names") = py::none(), py::arg("class_prior") = py::none(),
        py::arg("params") = py::none(), py::arg("confidence_threshold") = py::none(),
        py::arg("ref_score") = py::none(), py::arg("gap_factor") = py::none(),
        "The decoder on per-mask features (centroids, areas, classes, scores, optional extents).");
}

}  // namespace vertx::bindings
