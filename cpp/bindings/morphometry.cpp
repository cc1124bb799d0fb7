// Bindings of vertx/morphometry.hpp: validate and convert only.
#include <cmath>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "convert.hpp"
#include "vertx/labelling.hpp"
#include "vertx/morphometry.hpp"

namespace vertx::bindings {

void bind_morphometry(py::module_& m);

namespace {

// NaN (unknown) as None.
py::object number_or_none(double value) {
    return std::isfinite(value) ? py::object(py::float_(value)) : py::object(py::none());
}

py::tuple point_tuple(Point p) { return py::make_tuple(p.x, p.y); }

double real_number(py::handle obj, const std::string& name) {
    if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::float_>(obj) || py::isinstance<py::int_>(obj) ||
                                           py::hasattr(obj, "__float__"))) {
        throw py::value_error(name + ": expected a real number");
    }
    return obj.cast<double>();
}

// pixel_spacing_mm as (row, column) = (y, x) spacing, the project's convention; None = unknown.
void read_spacing(py::handle spacing, MorphometryParams& params) {
    if (spacing.is_none()) return;
    const py::list items = items_of(spacing, "pixel_spacing_mm");
    if (items.size() != 2) throw py::value_error("pixel_spacing_mm: expected (row, column) spacing in mm");
    params.spacing_y_mm = real_number(items[0], "pixel_spacing_mm[0]");
    params.spacing_x_mm = real_number(items[1], "pixel_spacing_mm[1]");
    if (!(params.spacing_x_mm > 0.0 && params.spacing_y_mm > 0.0 && std::isfinite(params.spacing_x_mm) &&
          std::isfinite(params.spacing_y_mm))) {
        throw py::value_error("pixel_spacing_mm: expected two finite positive numbers (mm)");
    }
}

// A level as None (unnamed), a name "C1".."S1" or a 1-based index; 0 = unnamed.
int level_from_python(py::handle obj, const std::string& name) {
    if (obj.is_none()) return 0;
    if (py::isinstance<py::str>(obj)) {
        const std::string text = obj.cast<std::string>();
        for (int level = 1; level <= kLevelCount; ++level) {
            if (level_name(level) == text) return level;
        }
        throw py::value_error(name + ": unknown vertebral level '" + text + "'");
    }
    if (py::isinstance<py::int_>(obj) && !py::isinstance<py::bool_>(obj)) {
        const long level = obj.cast<long>();
        if (level < 0 || level > kLevelCount) throw py::value_error(name + ": level index must lie in 0..25");
        return static_cast<int>(level);
    }
    throw py::value_error(name + ": expected a level name, a level index or None");
}

Facing facing_from_python(const std::string& text) { return parse_facing(text, "facing"); }

py::object body_value(const BodyMorphometry& b, double value) {
    return b.measured ? number_or_none(value) : py::object(py::none());
}

}  // namespace

void bind_morphometry(py::module_& m) {
    using B = BodyMorphometry;
    py::class_<B>(m, "BodyMorphometry",
                  "Corners, endplates, heights and tilts of one vertebral body (lengths in px; *_mm when "
                  "the pixel spacing is known). Every measure is None when the body is not measured.")
        .def_readonly("measured", &B::measured)
        .def_property_readonly(
            "corners",
            [](const B& b) -> py::object {
                if (!b.measured) return py::none();
                py::array_t<double> out({4, 2});
                auto r = out.mutable_unchecked<2>();
                for (int c = 0; c < 4; ++c) r(c, 0) = b.corners[c].x, r(c, 1) = b.corners[c].y;
                return std::move(out);
            },
            "(4, 2) rim corners: posterior-superior, anterior-superior, anterior-inferior, posterior-inferior.")
        .def_property_readonly("superior_middle", [](const B& b) -> py::object {
            return b.measured ? py::object(point_tuple(b.superior_middle)) : py::object(py::none());
        })
        .def_property_readonly("inferior_middle", [](const B& b) -> py::object {
            return b.measured ? py::object(point_tuple(b.inferior_middle)) : py::object(py::none());
        })
        .def_property_readonly("caudal_axis", [](const B& b) -> py::object {
            return b.measured ? py::object(point_tuple(b.caudal_axis)) : py::object(py::none());
        })
        .def_property_readonly("height_anterior", [](const B& b) { return body_value(b, b.height_anterior); })
        .def_property_readonly("height_middle", [](const B& b) { return body_value(b, b.height_middle); })
        .def_property_readonly("height_posterior", [](const B& b) { return body_value(b, b.height_posterior); })
        .def_property_readonly("height_anterior_mm", [](const B& b) { return body_value(b, b.height_anterior_mm); })
        .def_property_readonly("height_middle_mm", [](const B& b) { return body_value(b, b.height_middle_mm); })
        .def_property_readonly("height_posterior_mm", [](const B& b) { return body_value(b, b.height_posterior_mm); })
        .def_property_readonly("depth_superior", [](const B& b) { return body_value(b, b.depth_superior); })
        .def_property_readonly("depth_inferior", [](const B& b) { return body_value(b, b.depth_inferior); })
        .def_property_readonly("depth_superior_mm", [](const B& b) { return body_value(b, b.depth_superior_mm); })
        .def_property_readonly("depth_inferior_mm", [](const B& b) { return body_value(b, b.depth_inferior_mm); })
        .def_property_readonly("superior_tilt_deg", [](const B& b) { return body_value(b, b.superior_tilt_deg); })
        .def_property_readonly("inferior_tilt_deg", [](const B& b) { return body_value(b, b.inferior_tilt_deg); })
        .def_property_readonly("endplate_angle_deg", [](const B& b) { return body_value(b, b.endplate_angle_deg); })
        .def_property_readonly("flags", [](const B& b) {
            py::list out;
            for (const std::string& f : b.flags) out.append(f);
            return out;
        })
        .def("__repr__", [](const B& b) {
            if (!b.measured) return std::string("BodyMorphometry(measured=False)");
            return "BodyMorphometry(height_anterior=" + std::to_string(b.height_anterior) +
                   ", height_middle=" + std::to_string(b.height_middle) +
                   ", height_posterior=" + std::to_string(b.height_posterior) + ")";
        });

    using G = GenantResult;
    py::class_<G>(m, "GenantGrade", "Genant semi-quantitative grade of one body (reductions are shares, 0.2 = 20 %).")
        .def_property_readonly("grade", [](const G& g) -> py::object {
            return g.grade >= 0 ? py::object(py::int_(g.grade)) : py::object(py::none());
        }, "0..3, None when the body is not graded.")
        .def_property_readonly("deformity", [](const G& g) -> py::object {
            return g.grade >= 0 ? py::object(py::str(to_string(g.deformity))) : py::object(py::none());
        }, "'none', 'wedge', 'biconcave' or 'crush'; None when not graded.")
        .def_property_readonly("reduction", [](const G& g) { return number_or_none(g.reduction); })
        .def_property_readonly("wedge_reduction", [](const G& g) { return number_or_none(g.wedge_reduction); })
        .def_property_readonly("biconcave_reduction", [](const G& g) { return number_or_none(g.biconcave_reduction); })
        .def_property_readonly("crush_reduction", [](const G& g) { return number_or_none(g.crush_reduction); })
        .def("__repr__", [](const G& g) {
            return "GenantGrade(grade=" + (g.grade >= 0 ? std::to_string(g.grade) : std::string("None")) +
                   ", deformity='" + to_string(g.deformity) + "')";
        });

    using S = SegmentMorphometry;
    py::class_<S>(m, "SegmentMorphometry", "Disc and alignment between two neighbouring bodies.")
        .def_readonly("upper", &S::upper, "Input index of the upper body.")
        .def_readonly("lower", &S::lower, "Input index of the lower body.")
        .def_readonly("disc_height_anterior", &S::disc_height_anterior)
        .def_readonly("disc_height_middle", &S::disc_height_middle)
        .def_readonly("disc_height_posterior", &S::disc_height_posterior)
        .def_property_readonly("disc_height_anterior_mm", [](const S& s) { return number_or_none(s.disc_height_anterior_mm); })
        .def_property_readonly("disc_height_middle_mm", [](const S& s) { return number_or_none(s.disc_height_middle_mm); })
        .def_property_readonly("disc_height_posterior_mm", [](const S& s) { return number_or_none(s.disc_height_posterior_mm); })
        .def_readonly("disc_angle_deg", &S::disc_angle_deg)
        .def_readonly("segmental_angle_deg", &S::segmental_angle_deg)
        .def_readonly("slip", &S::slip, "px; + = anterolisthesis of the upper body.")
        .def_property_readonly("slip_mm", [](const S& s) { return number_or_none(s.slip_mm); })
        .def_property_readonly("slip_percent", [](const S& s) { return number_or_none(s.slip_percent); })
        .def_readonly("meyerding_grade", &S::meyerding_grade)
        .def_readonly("listhesis", &S::listhesis)
        .def_property_readonly("flags", [](const S& s) {
            py::list out;
            for (const std::string& f : s.flags) out.append(f);
            return out;
        });

    using P = SpineMorphometry;
    py::class_<P>(m, "SpineMorphometry", "Bodies, grades, segments and lordosis of one film.")
        .def_property_readonly("facing", [](const P& p) { return std::string(to_string(p.facing)); })
        .def_readonly("facing_source", &P::facing_source)
        .def_readonly("bodies", &P::bodies)
        .def_readonly("genant", &P::genant)
        .def_property_readonly("reference_posterior", [](const P& p) {
            py::list out;
            for (double v : p.reference_posterior) out.append(number_or_none(v));
            return out;
        })
        .def_readonly("segments", &P::segments)
        .def_property_readonly("lumbar_lordosis_deg", [](const P& p) -> py::object {
            return p.lumbar_lordosis.available ? py::object(py::float_(p.lumbar_lordosis.degrees)) : py::object(py::none());
        })
        .def_property_readonly("cervical_lordosis_deg", [](const P& p) -> py::object {
            return p.cervical_lordosis.available ? py::object(py::float_(p.cervical_lordosis.degrees)) : py::object(py::none());
        })
        .def_property_readonly("flags", [](const P& p) {
            py::list out;
            for (const std::string& f : p.flags) out.append(f);
            return out;
        });

    m.def(
        "measure_body",
        [](py::handle polygon, const std::string& facing, py::handle caudal_axis, py::handle pixel_spacing_mm,
           double side_margin) {
            const Polygon p = polygon_from_python(polygon, "polygon");
            const Facing f = facing_from_python(facing);
            Point hint{0.0, 0.0};
            if (!caudal_axis.is_none()) {
                const py::list items = items_of(caudal_axis, "caudal_axis");
                if (items.size() != 2) throw py::value_error("caudal_axis: expected (x, y)");
                hint = {real_number(items[0], "caudal_axis[0]"), real_number(items[1], "caudal_axis[1]")};
            }
            MorphometryParams params;
            params.side_margin = side_margin;
            read_spacing(pixel_spacing_mm, params);
            py::gil_scoped_release release;
            return vertx::measure_body(p, f, hint, params);
        },
        py::arg("polygon"), py::kw_only(), py::arg("facing"), py::arg("caudal_axis") = py::none(),
        py::arg("pixel_spacing_mm") = py::none(), py::arg("side_margin") = 0.1,
        "Corners, endplates and heights of one body outline. facing: 'left' or 'right' (side of the "
        "image the patient's front is on); caudal_axis: spine direction at the body (default image down).");

    m.def(
        "measure_spine",
        [](py::handle polygons, py::handle levels, const std::string& facing, py::handle partial,
           py::handle pixel_spacing_mm, double side_margin, double min_slip_percent) {
            const py::list items = items_of(polygons, "polygons");
            const py::list level_items = items_of(levels, "levels");
            if (level_items.size() != items.size()) {
                throw py::value_error("levels: expected one level per polygon (" + std::to_string(items.size()) + ")");
            }
            std::vector<SpineBody> bodies(items.size());
            for (size_t i = 0; i < items.size(); ++i) {
                bodies[i].polygon = polygon_from_python(items[i], "polygons[" + std::to_string(i) + "]");
                bodies[i].level = level_from_python(level_items[i], "levels[" + std::to_string(i) + "]");
            }
            if (!partial.is_none()) {
                const py::list flags = items_of(partial, "partial");
                if (flags.size() != items.size()) throw py::value_error("partial: expected one flag per polygon");
                for (size_t i = 0; i < flags.size(); ++i) bodies[i].partial = py::bool_(flags[i]);
            }
            const bool given = facing != "auto";
            const Facing f = given ? facing_from_python(facing) : Facing::Left;
            MorphometryParams params;
            params.side_margin = side_margin;
            params.min_slip_percent = min_slip_percent;
            read_spacing(pixel_spacing_mm, params);
            py::gil_scoped_release release;
            return vertx::measure_spine(bodies, given, f, params);
        },
        py::arg("polygons"), py::arg("levels"), py::kw_only(), py::arg("facing") = "auto",
        py::arg("partial") = py::none(), py::arg("pixel_spacing_mm") = py::none(), py::arg("side_margin") = 0.1,
        py::arg("min_slip_percent") = 5.0,
        "Morphometry of a film's bodies: heights, Genant grades, segments, lordosis. levels: a name, "
        "an index or None per polygon; facing: 'left', 'right' or 'auto' (from the lordotic bow).");

    m.def(
        "infer_facing",
        [](py::handle polygons, py::handle levels, double min_bow) -> py::object {
            const py::list items = items_of(polygons, "polygons");
            const py::list level_items = items_of(levels, "levels");
            if (level_items.size() != items.size()) throw py::value_error("levels: expected one level per polygon");
            std::vector<SpineBody> bodies(items.size());
            for (size_t i = 0; i < items.size(); ++i) {
                bodies[i].polygon = polygon_from_python(items[i], "polygons[" + std::to_string(i) + "]");
                bodies[i].level = level_from_python(level_items[i], "levels[" + std::to_string(i) + "]");
            }
            if (!(min_bow >= 0.0 && std::isfinite(min_bow))) throw py::value_error("min_bow: must be a finite number >= 0");
            Facing f = Facing::Left;
            bool found = false;
            {
                py::gil_scoped_release release;
                found = vertx::infer_facing(bodies, f, min_bow);
            }
            return found ? py::object(py::str(to_string(f))) : py::object(py::none());
        },
        py::arg("polygons"), py::arg("levels"), py::kw_only(), py::arg("min_bow") = 0.015,
        "'left' or 'right' from the lordotic bow of the chain of centroids; None when undecidable.");

    m.def(
        "genant_grade",
        [](double ha, double hm, double hp, py::handle reference) {
            const double ref = reference.is_none() ? std::nan("") : real_number(reference, "reference_posterior");
            for (const double h : {ha, hm, hp}) {
                if (!std::isfinite(h) || h < 0.0) throw py::value_error("heights: expected finite numbers >= 0");
            }
            if (!reference.is_none() && !(std::isfinite(ref) && ref > 0.0)) {
                throw py::value_error("reference_posterior: expected a finite number > 0 or None");
            }
            return vertx::genant_grade(ha, hm, hp, ref);
        },
        py::arg("height_anterior"), py::arg("height_middle"), py::arg("height_posterior"),
        py::arg("reference_posterior") = py::none(),
        "Genant grade from a body's heights and its neighbours' mean posterior height.");
    m.def("genant_grade_of_reduction", &vertx::genant_grade_of_reduction, py::arg("reduction"),
          "0 below 0.20, 1 below 0.25, 2 up to 0.40, 3 above; -1 for NaN.");
    m.def("meyerding_grade", &vertx::meyerding_grade, py::arg("slip_percent"), py::arg("min_percent") = 5.0,
          "0 below min_percent, then 1..5 in steps of 25 % of the lower body's depth; -1 for NaN.");
}

}  // namespace vertx::bindings
