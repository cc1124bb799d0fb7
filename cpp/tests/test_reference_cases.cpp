// The plain-text reference cases under tests/data (shared with the Python tests; format in
// tests/core/core_cases.py) run through the native core.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "vertx/ensemble.hpp"
#include "vertx/labelling.hpp"

#ifndef VERTX_TEST_DATA_DIR
#error "VERTX_TEST_DATA_DIR must name the tests/data folder"
#endif

namespace vertx {
namespace {

namespace fs = std::filesystem;

struct ExpectedMask {
    std::string source, cls;
    int unet = -1, mrcnn = -1;
    bool operator==(const ExpectedMask& o) const {
        return source == o.source && cls == o.cls && unet == o.unet && mrcnn == o.mrcnn;
    }
};

std::ostream& operator<<(std::ostream& out, const ExpectedMask& m) {
    return out << "(" << m.source << ", " << m.cls << ", " << m.unet << ", " << m.mrcnn << ")";
}

struct Case {
    std::map<std::string, double> params;
    std::vector<Polygon> unet, mrcnn, masks;
    std::vector<MaskClass> mrcnn_classes, mask_classes;
    std::vector<double> mrcnn_scores, mask_scores;
    std::optional<std::vector<ExpectedMask>> expect_masks;
    int expect_warnings = 0;
    std::map<size_t, std::pair<double, double>> expect_areas;  // position -> (px^2, tolerance)
    std::optional<std::vector<std::string>> labels, flags, excluded;
    std::optional<std::string> view, reference;
};

Polygon read_polygon(std::istringstream& in) {
    Polygon p;
    double x, y;
    while (in >> x >> y) p.push_back({x, y});
    return p;
}

std::vector<std::string> rest_of(std::istringstream& in) {
    std::vector<std::string> words;
    std::string w;
    while (in >> w) words.push_back(w);
    return words;
}

Case read_case(const fs::path& path) {
    Case c;
    std::ifstream file(path);
    std::string line;
    while (std::getline(file, line)) {
        std::istringstream in(line);
        std::string key;
        if (!(in >> key) || key[0] == '#') continue;
        if (key == "param") {
            std::string name;
            double value;
            in >> name >> value;
            c.params[name] = value;
        } else if (key == "unet") {
            c.unet.push_back(read_polygon(in));
        } else if (key == "mrcnn" || key == "mask") {
            std::string cls;
            double score;
            in >> cls >> score;
            (key == "mrcnn" ? c.mrcnn_classes : c.mask_classes).push_back(parse_mask_class(cls, path.string()));
            (key == "mrcnn" ? c.mrcnn_scores : c.mask_scores).push_back(score);
            (key == "mrcnn" ? c.mrcnn : c.masks).push_back(read_polygon(in));
        } else if (key == "expect_mask") {
            std::string source, cls, u, m;
            in >> source >> cls >> u >> m;
            if (!c.expect_masks) c.expect_masks.emplace();
            c.expect_masks->push_back({source, cls, u == "-" ? -1 : std::stoi(u), m == "-" ? -1 : std::stoi(m)});
        } else if (key == "expect_count") {
            int n;
            in >> n;
            if (n == 0 && !c.expect_masks) c.expect_masks.emplace();
        } else if (key == "expect_warnings") {
            in >> c.expect_warnings;
        } else if (key == "expect_area") {
            size_t position;
            double area, tolerance;
            in >> position >> area >> tolerance;
            c.expect_areas[position] = {area, tolerance};
        } else if (key == "expect_labels") {
            c.labels = rest_of(in);
        } else if (key == "expect_view") {
            in >> c.view.emplace();
            if (*c.view == "none") c.view = "";
        } else if (key == "expect_reference") {
            in >> c.reference.emplace();
        } else if (key == "expect_flags") {
            c.flags = rest_of(in);
        } else if (key == "expect_excluded") {
            c.excluded = rest_of(in);
        } else {
            ADD_FAILURE() << path << ": unknown key " << key;
        }
    }
    return c;
}

void check_labelling(const Case& c, const Labelling& l) {
    if (c.labels) {
        std::vector<std::string> got;
        for (int level : l.levels) got.push_back(level > 0 ? level_name(level) : "-");
        EXPECT_EQ(got, *c.labels);
    }
    if (c.view) {
        EXPECT_EQ(l.view, *c.view);
    }
    if (c.reference) {
        EXPECT_EQ(l.reference, *c.reference);
    }
    if (c.flags) {
        EXPECT_EQ(l.flags, *c.flags);
    }
    if (c.excluded) {
        std::vector<std::string> got;
        for (const auto& [index, reason] : l.excluded) got.push_back(std::to_string(index) + ":" + to_string(reason));
        EXPECT_EQ(got, *c.excluded);
    }
}

std::vector<fs::path> cases_in(const char* folder) {
    std::vector<fs::path> paths;
    for (const auto& entry : fs::directory_iterator(fs::path(VERTX_TEST_DATA_DIR) / folder)) {
        if (entry.path().extension() == ".txt") paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

double param(const Case& c, const char* name, double fallback) {
    const auto it = c.params.find(name);
    return it == c.params.end() ? fallback : it->second;
}

TEST(ReferenceCases, Ensemble) {
    const auto paths = cases_in("ensemble");
    ASSERT_GE(paths.size(), 3u);
    for (const fs::path& path : paths) {
        SCOPED_TRACE(path.filename().string());
        const Case c = read_case(path);
        EnsembleParams params;
        params.eta = param(c, "eta", params.eta);
        params.lam = param(c, "lam", params.lam);
        params.tau = param(c, "tau", params.tau);
        params.ref_score = param(c, "ref_score", params.ref_score);
        params.min_area = param(c, "min_area", params.min_area);
        const EnsembleResult r = ensemble(c.unet, c.mrcnn, c.mrcnn_classes, c.mrcnn_scores, params);
        EXPECT_EQ(static_cast<int>(r.dropped_unet.size() + r.dropped_mrcnn.size()), c.expect_warnings);
        std::vector<ExpectedMask> got;
        std::vector<LabelInput> inputs;
        for (const EnsembleMask& m : r.masks) {
            got.push_back({to_string(m.source), to_string(m.cls), m.unet_index, m.mrcnn_index});
            inputs.push_back({m.centroid, m.cls, m.score});
            EXPECT_GT(m.area, 0.0);
        }
        if (c.expect_masks) {
            EXPECT_EQ(got, *c.expect_masks);
        }
        for (const auto& [position, expected] : c.expect_areas) {
            ASSERT_LT(position, r.masks.size());
            EXPECT_NEAR(r.masks[position].area, expected.first, expected.second) << "mask " << position;
        }
        check_labelling(c, zip_labels(inputs, param(c, "gap_factor", 1.6)));
    }
}

TEST(ReferenceCases, Labelling) {
    const auto paths = cases_in("labelling");
    ASSERT_GE(paths.size(), 10u);
    for (const fs::path& path : paths) {
        SCOPED_TRACE(path.filename().string());
        const Case c = read_case(path);
        std::vector<LabelInput> inputs;
        for (size_t k = 0; k < c.masks.size(); ++k) {
            inputs.push_back({polygon_centroid(c.masks[k]), c.mask_classes[k], c.mask_scores[k]});
        }
        const Labelling l = zip_labels(inputs, param(c, "gap_factor", 1.6));
        EXPECT_EQ(l.levels.size(), c.masks.size());
        check_labelling(c, l);
    }
}

}  // namespace
}  // namespace vertx
