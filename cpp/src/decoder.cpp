#include "vertx/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace vertx {

namespace {

constexpr int kA = 0;                // above the named run
constexpr int kB = kLevelCount + 1;  // below it
constexpr int kStates = kLevelCount + 2;
constexpr int kBand = 5;             // at most the skips z-2 .. z+2 around the zipper's skip z
constexpr double kProbFloor = 1e-6;  // keeps every state possible
constexpr double kTie = 1e-10;       // relative: values this close are equal (smaller index wins)
constexpr double kDecisionTol = 1e-9;
constexpr double kProbSumTol = 1e-3;
constexpr double kDefaultLandmarkPrior = 0.075;
const double kInvSqrt2Pi = 1.0 / std::sqrt(2.0 * std::acos(-1.0));

using States = std::array<double, kStates>;

const char* const kViewNames[kViewCount] = {"cervical", "cervicothoracic", "thoracic", "thoracolumbar",
                                            "lumbar"};

double pdf(double x, double mean, double sd) {
    const double z = (x - mean) / sd;
    return std::exp(-0.5 * z * z) * kInvSqrt2Pi / sd;
}

// Index of the largest value, scanning in increasing index: a later value wins only when it is
// larger by more than the relative tie tolerance (so near-ties go to the smaller index).
template <class It>
int first_max(It begin, It end) {
    int best = 0;
    for (It it = begin + 1; it < end; ++it) {
        if (*it > begin[best] * (1.0 + kTie)) best = static_cast<int>(it - begin);
    }
    return best;
}

std::string number(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

[[noreturn]] void fail(const std::string& name, const char* what, double value) {
    throw InvalidInput(name + ": must be " + what + ", got " + number(value));
}

void require(bool ok, const char* name, const char* what, double value) {
    if (!ok) fail(name, what, value);
}

// As require, with the argument's name built only on failure.
template <class Name>
void require_named(bool ok, Name&& name, const char* what, double value) {
    if (!ok) fail(name(), what, value);
}

int skip_of(double step, double spacing, double gap_factor) {
    if (spacing > 0.0 && step > gap_factor * spacing) {
        const double ratio = std::min(step / spacing, 1.0e6);
        return std::max(1, static_cast<int>(std::floor(ratio + 0.5)) - 1);
    }
    return 0;
}

double skip_distance(double r, int j, double g) {
    const double lo = j == 0 ? -std::numeric_limits<double>::infinity() : (j == 1 ? g : std::max(g, j + 0.5));
    const double hi = j == 0 ? g : j + 1.5;
    return std::max({lo - r, r - hi, 0.0});
}

using StepTable = std::array<std::array<double, kBand>, kLevelCount>;

// One step's weights of level l -> t = l + 1 + lo + b: go_on x skip weight w[b] x the size density
// pdf(delta; g_t - g_l, sigma) (g: log typical areas), and of l -> B (the end hazard plus skips
// past S1). The density is factorised as exp(-d^2/2) exp(d u_t) exp(-d u_l) exp(-(u_t - u_l)^2/2)
// (d = delta / sigma, u = centred g / sigma; the last factor cached per level offset), so a step
// costs 25 exponentials rather than 125; evaluated directly where the factors could leave the
// double range.
class SizeDensity {
public:
    SizeDensity(const std::array<double, kLevelCount>& g, double sigma) : g_(g), sigma_(sigma) {
        double mean = 0.0;
        for (double x : g) mean += x / kLevelCount;
        for (int l = 0; l < kLevelCount; ++l) {
            u_[l] = (g[l] - mean) / sigma;
            u_max_ = std::max(u_max_, std::abs(u_[l]));
        }
    }

    void fill_step(double delta, int lo, const std::array<double, kBand>& w, double go_on, double end_hazard,
                   StepTable& table, std::array<double, kLevelCount>& ends) {
        const double d = delta / sigma_;
        const bool direct = !(std::abs(d) <= 20.0 && std::abs(d) * u_max_ <= 300.0);
        double base = 0.0;
        if (!direct) {
            base = std::exp(-0.5 * d * d) * kInvSqrt2Pi / sigma_;
            for (int l = 0; l < kLevelCount; ++l) {
                up_[l] = std::exp(d * u_[l]);
                down_[l] = base / up_[l];
            }
        }
        ends.fill(end_hazard);
        for (int b = 0; b < kBand; ++b) {
            const int offset = 1 + lo + b;  // t - l
            const double weight = go_on * w[b];
            const int last = kLevelCount - offset;  // the highest level l with t <= S1
            if (last >= 1) {
                if (direct) {
                    for (int l = 1; l <= last; ++l) {
                        table[l - 1][b] = weight * pdf(delta, g_[l + offset - 1] - g_[l - 1], sigma_);
                    }
                } else {
                    const std::array<double, kLevelCount>& q = shift_factor(offset);
                    for (int l = 1; l <= last; ++l) table[l - 1][b] = weight * up_[l + offset - 1] * down_[l - 1] * q[l - 1];
                }
            }
            for (int l = std::max(last + 1, 1); l <= kLevelCount; ++l) {
                table[l - 1][b] = 0.0;
                ends[l - 1] += weight;
            }
        }
    }

private:
    const std::array<double, kLevelCount>& shift_factor(int offset) {
        if (!done_[offset]) {
            for (int l = 1; l + offset <= kLevelCount; ++l) {
                const double m = u_[l + offset - 1] - u_[l - 1];
                q_[offset][l - 1] = std::exp(-0.5 * m * m);
            }
            done_[offset] = true;
        }
        return q_[offset];
    }

    const std::array<double, kLevelCount>& g_;
    double sigma_;
    std::array<double, kLevelCount> u_{}, up_{}, down_{};
    std::array<std::array<double, kLevelCount>, kLevelCount> q_{};
    std::array<bool, kLevelCount> done_{};
    double u_max_ = 0.0;
};

// Everything about one film that does not depend on the view or on conditioning.
struct Film {
    int n = 0;
    std::vector<States> emission;
    std::vector<int> skip_lo;  // per step: the first skip of the band
    // per step: weight of level src -> src + 1 + skip_lo + b: (1 - end_hazard) x skip x size density
    std::vector<StepTable> level_step;
    std::vector<std::array<double, kLevelCount>> level_end;  // per step: weight of src -> B
    std::vector<double> pair_out;  // size density of a pair with an outside mask
    std::vector<long> chain_pos;   // zipper chain positions (positions plus inferred missing levels)
};

struct Inference {
    std::vector<States> marginals;
    std::array<double, kViewCount> posterior{};
    std::vector<int> path;
};

using Start = std::array<double, kLevelCount + 1>;  // over levels 1..25; [0] unused
// Levels indexed like States, padded so that a band of skips from any level stays inside
// (used only while the band starts below S1: skip_lo < 25).
using Padded = std::array<double, 2 * kLevelCount + kBand + 2>;

class Model {
public:
    Model(const Film& film, const DecoderParams& params) : film_(film), p_(params) {}

    // Inference over chain positions [begin, end), optionally restricted to allowed states.
    //
    // A view only sets the distribution of the first named level, which enters every path once;
    // so the prior mixture over views is itself a chain with the mixed start, one forward-backward
    // pass gives the marginals, and each view's evidence follows from the same pass (the sum,
    // over where the named run starts, of the view's start weight times the backward value).
    // The path is the joint most probable (view, labelling): Viterbi with max_v prior x start.
    // Without want_path only the marginals are computed (no view posterior, no path).
    Inference infer(int begin, int end, const std::vector<States>* allowed,
                    const std::array<double, kViewCount>& view_prior, bool want_path) const {
        const int n = end - begin;
        const double al = p_.outside_start;
        Inference out;
        std::vector<States> L(n);
        for (int i = 0; i < n; ++i) {
            for (int s = 0; s < kStates; ++s) L[i][s] = film_.emission[begin + i][s] * (allowed ? (*allowed)[i][s] : 1.0);
        }
        std::array<Start, kViewCount> f;
        Start mix{}, best{};
        for (int v = 0; v < kViewCount; ++v) {
            f[v] = start(v);
            for (int l = 1; l <= kLevelCount; ++l) {
                mix[l] += view_prior[v] * f[v][l];
                best[l] = std::max(best[l], view_prior[v] * f[v][l]);
            }
        }
        std::vector<States> alpha(n), beta(n);
        std::vector<double> scale(n);
        forward(begin, L, mix, alpha, scale);
        backward(begin, L, mix, scale, beta);
        out.marginals.resize(n);
        for (int i = 0; i < n; ++i) {
            double total = 0.0;
            for (int s = 0; s < kStates; ++s) total += out.marginals[i][s] = alpha[i][s] * beta[i][s];
            for (double& x : out.marginals[i]) x /= total;
        }
        if (!want_path) return out;  // conditioning: the marginals are all that is asked for
        // Evidence of each view relative to the mixture's.
        std::array<double, kViewCount> evidence;
        evidence.fill(alpha[n - 1][kA]);  // the path with every mask outside
        for (int i = 0; i < n; ++i) {
            const double lead = (i == 0 ? 1.0 : alpha[i - 1][kA] * film_.pair_out[begin + i - 1]) * (1.0 - al) / scale[i];
            Start g;
            for (int l = 1; l <= kLevelCount; ++l) g[l] = L[i][l] * beta[i][l];
            for (int v = 0; v < kViewCount; ++v) {
                double sum = 0.0;
                for (int l = 1; l <= kLevelCount; ++l) sum += f[v][l] * g[l];
                evidence[v] += lead * sum;
            }
        }
        double total = 0.0;
        for (int v = 0; v < kViewCount; ++v) total += out.posterior[v] = view_prior[v] * evidence[v];
        for (double& x : out.posterior) x /= total;
        viterbi(begin, L, best, out.path);
        return out;
    }

private:
    // The view's start distribution: uniform in its window, out_of_view_weight elsewhere.
    Start start(int v) const {
        Start f{};
        double total = 0.0;
        for (int l = 1; l <= kLevelCount; ++l) {
            f[l] = l >= p_.view_windows[v][0] && l <= p_.view_windows[v][1] ? 1.0 : p_.out_of_view_weight;
            total += f[l];
        }
        for (int l = 1; l <= kLevelCount; ++l) f[l] /= total;
        return f;
    }

    // Scaled forward pass: alpha[i] sums to one, scale[i] is the factor divided out.
    void forward(int begin, const std::vector<States>& L, const Start& f, std::vector<States>& alpha,
                 std::vector<double>& scale) const {
        const double al = p_.outside_start;
        const int n = static_cast<int>(L.size());
        States a{};
        a[kA] = al * L[0][kA];
        for (int l = 1; l <= kLevelCount; ++l) a[l] = (1.0 - al) * f[l] * L[0][l];
        for (int i = 0; i < n; ++i) {
            if (i > 0) {
                const int k = begin + i - 1;
                const double po = film_.pair_out[k];
                const int lo = film_.skip_lo[k];
                const auto& step = film_.level_step[k];
                const auto& stop = film_.level_end[k];
                Padded next{};  // targets past S1 have zero weight and land in the padding
                const double from_a = a[kA] * (1.0 - al) * po;
                double to_b = a[kB];
                if (lo < kLevelCount) {
                    for (int src = 1; src <= kLevelCount; ++src) {
                        const double x = a[src];
                        double* out = &next[src + 1 + lo];
                        for (int b = 0; b < kBand; ++b) out[b] += x * step[src - 1][b];
                    }
                }
                for (int src = 1; src <= kLevelCount; ++src) to_b += a[src] * stop[src - 1];
                States na;
                na[kA] = a[kA] * al * po * L[i][kA];
                for (int l = 1; l <= kLevelCount; ++l) na[l] = (from_a * f[l] + next[l]) * L[i][l];
                na[kB] = to_b * po * L[i][kB];
                a = na;
            }
            double c = 0.0;
            for (double x : a) c += x;
            if (!(c > 0.0)) throw std::logic_error("decode_labels: no labelling is possible (internal error)");
            for (double& x : a) x /= c;
            scale[i] = c;
            alpha[i] = a;
        }
    }

    // Backward pass scaled by the forward factors, so that alpha[i] . beta[i] = 1.
    void backward(int begin, const std::vector<States>& L, const Start& f, const std::vector<double>& scale,
                  std::vector<States>& beta) const {
        const double al = p_.outside_start;
        const int n = static_cast<int>(L.size());
        beta[n - 1].fill(1.0);
        for (int i = n - 2; i >= 0; --i) {
            const int k = begin + i;
            const double po = film_.pair_out[k];
            const int lo = film_.skip_lo[k];
            const auto& step = film_.level_step[k];
            const auto& stop = film_.level_end[k];
            Padded nxt{};  // levels 1..25 (and A at 0); zero beyond S1
            for (int s = 0; s <= kLevelCount; ++s) nxt[s] = L[i + 1][s] * beta[i + 1][s];
            const double to_b = po * L[i + 1][kB] * beta[i + 1][kB];
            States b;
            double start_sum = 0.0;
            for (int l = 1; l <= kLevelCount; ++l) start_sum += f[l] * nxt[l];
            b[kA] = al * po * nxt[kA] + (1.0 - al) * po * start_sum;
            for (int src = 1; src <= kLevelCount; ++src) {
                double total = stop[src - 1] * to_b;
                if (lo < kLevelCount) {
                    const double* in = &nxt[src + 1 + lo];
                    for (int j = 0; j < kBand; ++j) total += step[src - 1][j] * in[j];
                }
                b[src] = total;
            }
            b[kB] = to_b;
            for (int s = 0; s < kStates; ++s) beta[i][s] = b[s] / scale[i + 1];
        }
    }

    // Most probable path with start f (ties: the smaller state index).
    void viterbi(int begin, const std::vector<States>& L, const Start& f, std::vector<int>& path) const {
        const double al = p_.outside_start;
        const int n = static_cast<int>(L.size());
        std::vector<std::array<int, kStates>> back(n);
        States d{};
        d[kA] = al * L[0][kA];
        for (int l = 1; l <= kLevelCount; ++l) d[l] = (1.0 - al) * f[l] * L[0][l];
        for (int i = 0; i < n; ++i) {
            if (i > 0) {
                const int k = begin + i - 1;
                const double po = film_.pair_out[k];
                const int lo = film_.skip_lo[k];
                const auto& step = film_.level_step[k];
                const auto& stop = film_.level_end[k];
                States next{};
                next[kA] = d[kA] * al * po * L[i][kA];
                back[i][kA] = kA;
                // Candidates of each level in increasing state order: A, then the sources.
                Padded best_val{};
                std::array<int, 2 * kLevelCount + kBand + 2> best_idx{};
                const double from_a = d[kA] * (1.0 - al) * po;
                for (int target = 1; target <= kLevelCount; ++target) best_val[target] = from_a * f[target];
                if (lo < kLevelCount) {
                    for (int src = 1; src <= kLevelCount; ++src) {
                        for (int b = 0; b < kBand; ++b) {
                            const int target = src + 1 + lo + b;
                            const double v = d[src] * step[src - 1][b];
                            if (v > best_val[target] * (1.0 + kTie)) {
                                best_val[target] = v;
                                best_idx[target] = src;
                            }
                        }
                    }
                }
                for (int target = 1; target <= kLevelCount; ++target) {
                    back[i][target] = best_idx[target];
                    next[target] = best_val[target] * L[i][target];
                }
                States cand{};
                for (int s = 1; s <= kLevelCount; ++s) cand[s] = d[s] * stop[s - 1] * po;
                cand[kB] = d[kB] * po;
                const int best = first_max(cand.begin(), cand.end());
                back[i][kB] = best;
                next[kB] = cand[best] * L[i][kB];
                d = next;
            }
            const double m = *std::max_element(d.begin(), d.end());
            if (!(m > 0.0)) throw std::logic_error("decode_labels: no labelling is possible (internal error)");
            for (double& x : d) x /= m;
        }
        path.assign(n, 0);
        int state = first_max(d.begin(), d.end());
        for (int i = n - 1; i >= 0; --i) {
            path[i] = state;
            state = back[i][state];
        }
    }

    const Film& film_;
    const DecoderParams& p_;
};

int class_column(MaskClass cls) {
    switch (cls) {
        case MaskClass::C2: return 1;
        case MaskClass::S1: return 2;
        case MaskClass::Vertebra: break;
    }
    return 0;
}

}  // namespace

const char* view_name(int view) {
    if (view < 0 || view >= kViewCount) throw std::out_of_range("view index " + std::to_string(view) + " outside 0..4");
    return kViewNames[view];
}

void DecoderParams::validate() const {
    auto unit = [](double v) { return std::isfinite(v) && v >= 0.0 && v <= 1.0; };
    auto positive = [](double v) { return std::isfinite(v) && v > 0.0; };
    auto weight = [](double v) { return std::isfinite(v) && v > 0.0 && v <= 1.0; };
    require(unit(confidence_threshold), "confidence_threshold", "in [0, 1]", confidence_threshold);
    require(unit(ref_score), "ref_score", "in [0, 1]", ref_score);
    require(std::isfinite(gap_factor) && gap_factor > 1.0, "gap_factor", "finite and > 1", gap_factor);
    require(positive(gap_sharpness), "gap_sharpness", "finite and > 0", gap_sharpness);
    require(weight(off_gap_weight), "off_gap_weight", "in (0, 1]", off_gap_weight);
    auto below_one = [](double v) { return std::isfinite(v) && v >= 0.0 && v < 1.0; };
    require(weight(outside_weight), "outside_weight", "in (0, 1]", outside_weight);
    require(below_one(outside_start), "outside_start", "in [0, 1)", outside_start);
    require(below_one(end_hazard), "end_hazard", "in [0, 1)", end_hazard);
    require(weight(out_of_view_weight), "out_of_view_weight", "in (0, 1]", out_of_view_weight);
    require(positive(size_sigma), "size_sigma", "finite and > 0", size_sigma);
    require(positive(outside_size_sigma), "outside_size_sigma", "finite and > 0", outside_size_sigma);
    require(std::isfinite(vertebra_aspect_mean), "vertebra_aspect_mean", "finite", vertebra_aspect_mean);
    require(std::isfinite(c2_aspect_mean), "c2_aspect_mean", "finite", c2_aspect_mean);
    require(std::isfinite(s1_aspect_mean), "s1_aspect_mean", "finite", s1_aspect_mean);
    require(positive(vertebra_aspect_sd), "vertebra_aspect_sd", "finite and > 0", vertebra_aspect_sd);
    require(positive(c2_aspect_sd), "c2_aspect_sd", "finite and > 0", c2_aspect_sd);
    require(positive(s1_aspect_sd), "s1_aspect_sd", "finite and > 0", s1_aspect_sd);
    for (int l = 0; l < kLevelCount; ++l) {
        require_named(positive(level_area[l]), [&] { return "level_area[" + std::to_string(l) + "]"; }, "finite and > 0",
                      level_area[l]);
    }
    for (int v = 0; v < kViewCount; ++v) {
        const auto& w = view_windows[v];
        if (!(w[0] >= 1 && w[0] <= w[1] && w[1] <= kLevelCount)) {
            throw InvalidInput("view_windows[" + std::to_string(v) + "]: expected 1 <= first <= last <= 25, got (" +
                               std::to_string(w[0]) + ", " + std::to_string(w[1]) + ")");
        }
    }
    const int columns = static_cast<int>(class_levels.size());
    if (columns < 3 || class_levels[0] != 0 || class_levels[1] != kLevelC2 || class_levels[2] != kLevelS1) {
        throw InvalidInput("class_levels: must start with vertebra, C2, S1 (levels 0, 2, 25)");
    }
    if (columns > 13) throw InvalidInput("class_levels: at most 13 columns, got " + std::to_string(columns));
    std::vector<bool> seen(kLevelCount + 1, false);
    seen[kLevelC2] = seen[kLevelS1] = true;
    for (int c = 3; c < columns; ++c) {
        const int level = class_levels[c];
        if (level < 1 || level > kLevelCount || seen[level]) {
            throw InvalidInput("class_levels[" + std::to_string(c) + "]: expected a level 1..25 not listed before, got " +
                               std::to_string(level));
        }
        seen[level] = true;
    }
    if (!class_prior.empty()) {
        if (static_cast<int>(class_prior.size()) != columns) {
            throw InvalidInput("class_prior: expected " + std::to_string(columns) + " values, got " +
                               std::to_string(class_prior.size()));
        }
        double sum = 0.0;
        for (size_t c = 0; c < class_prior.size(); ++c) {
            require_named(std::isfinite(class_prior[c]) && class_prior[c] > 0.0 && class_prior[c] < 1.0,
                          [&] { return "class_prior[" + std::to_string(c) + "]"; }, "in (0, 1)", class_prior[c]);
            sum += class_prior[c];
        }
        require(std::abs(sum - 1.0) <= kProbSumTol, "class_prior", "summing to 1", sum);
    }
}

void measure_chain_extents(std::vector<DecoderMask>& masks, const std::vector<Polygon>& polygons) {
    std::vector<const Polygon*> outlines(polygons.size());
    for (size_t i = 0; i < polygons.size(); ++i) outlines[i] = &polygons[i];
    measure_chain_extents(masks, outlines);
}

void measure_chain_extents(std::vector<DecoderMask>& masks, const std::vector<const Polygon*>& polygons) {
    if (polygons.size() != masks.size()) {
        throw InvalidInput("polygons: expected one per mask (" + std::to_string(masks.size()) + "), got " +
                           std::to_string(polygons.size()));
    }
    std::vector<int> order;
    for (int i = 0; i < static_cast<int>(masks.size()); ++i) {
        if (!masks[i].excluded) order.push_back(i);
        if (!std::isfinite(masks[i].centroid.x) || !std::isfinite(masks[i].centroid.y)) {
            throw InvalidInput("masks[" + std::to_string(i) + "]: centroid is not finite");
        }
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return masks[a].centroid.y < masks[b].centroid.y; });
    const int n = static_cast<int>(order.size());
    for (int k = 0; k < n; ++k) {
        const Point& lo = masks[order[std::max(k - 1, 0)]].centroid;
        const Point& hi = masks[order[std::min(k + 1, n - 1)]].centroid;
        double ux = hi.x - lo.x, uy = hi.y - lo.y;
        const double norm = std::hypot(ux, uy);
        if (norm == 0.0) {
            ux = 0.0;
            uy = 1.0;
        } else {
            ux /= norm;
            uy /= norm;
        }
        const Polygon& poly = *polygons[order[k]];
        double a_min = std::numeric_limits<double>::infinity(), a_max = -a_min, c_min = a_min, c_max = -a_min;
        for (const Point& p : poly) {
            const double along = p.x * ux + p.y * uy;
            const double across = -p.x * uy + p.y * ux;
            a_min = std::min(a_min, along);
            a_max = std::max(a_max, along);
            c_min = std::min(c_min, across);
            c_max = std::max(c_max, across);
        }
        masks[order[k]].height = poly.empty() ? 0.0 : a_max - a_min;
        masks[order[k]].width = poly.empty() ? 0.0 : c_max - c_min;
    }
}

Decoding decode_labels(const std::vector<DecoderMask>& masks, const DecoderParams& params,
                       const std::vector<double>& view_prior) {
    params.validate();
    const int columns = static_cast<int>(params.class_levels.size());
    std::vector<double> prior = params.class_prior;
    if (prior.empty()) {
        prior.assign(columns, kDefaultLandmarkPrior);
        prior[0] = 1.0 - kDefaultLandmarkPrior * (columns - 1);
    } else {
        const double sum = std::accumulate(prior.begin(), prior.end(), 0.0);
        for (double& x : prior) x /= sum;
    }

    // View prior over the five regions.
    std::array<double, kViewCount> qv{};
    if (view_prior.empty()) {
        qv.fill(1.0 / kViewCount);
    } else if (view_prior.size() == kViewCount) {
        double sum = 0.0;
        for (int v = 0; v < kViewCount; ++v) {
            require_named(std::isfinite(view_prior[v]) && view_prior[v] >= 0.0 && view_prior[v] <= 1.0,
                          [&] { return "view_prior[" + std::to_string(v) + "]"; }, "in [0, 1]", view_prior[v]);
            sum += view_prior[v];
        }
        require(std::abs(sum - 1.0) <= kProbSumTol, "view_prior", "summing to 1", sum);
        for (int v = 0; v < kViewCount; ++v) qv[v] = view_prior[v] / sum;
    } else {
        throw InvalidInput("view_prior: expected 5 probabilities (cervical, cervicothoracic, thoracic, "
                           "thoracolumbar, lumbar), got " + std::to_string(view_prior.size()));
    }

    // Masks.
    for (size_t i = 0; i < masks.size(); ++i) {
        const DecoderMask& m = masks[i];
        auto name = [&](const std::string& field) { return "masks[" + std::to_string(i) + "]" + field; };
        if (!std::isfinite(m.centroid.x) || !std::isfinite(m.centroid.y)) throw InvalidInput(name(": centroid is not finite"));
        require_named(std::isfinite(m.area) && m.area > 0.0, [&] { return name(".area"); }, "finite and > 0", m.area);
        require_named(std::isfinite(m.height) && m.height >= 0.0, [&] { return name(".height"); }, "finite and >= 0",
                      m.height);
        require_named(std::isfinite(m.width) && m.width >= 0.0, [&] { return name(".width"); }, "finite and >= 0", m.width);
        require_named(std::isfinite(m.score) && m.score >= 0.0 && m.score <= 1.0, [&] { return name(".score"); },
                      "in [0, 1]", m.score);
        if (!m.probs.empty()) {
            if (static_cast<int>(m.probs.size()) != columns) {
                throw InvalidInput(name(".probs") + ": expected " + std::to_string(columns) + " class probabilities, got " +
                                   std::to_string(m.probs.size()));
            }
            double sum = 0.0;
            for (int c = 0; c < columns; ++c) {
                require_named(std::isfinite(m.probs[c]) && m.probs[c] >= 0.0 && m.probs[c] <= 1.0,
                              [&] { return name(".probs[" + std::to_string(c) + "]"); }, "in [0, 1]", m.probs[c]);
                sum += m.probs[c];
            }
            require_named(std::abs(sum - 1.0) <= kProbSumTol, [&] { return name(".probs"); }, "summing to 1", sum);
        }
    }

    const int n_in = static_cast<int>(masks.size());
    Decoding out;
    out.levels.assign(n_in, 0);
    out.confidence.assign(n_in, 0.0);
    out.view_posterior = qv;
    std::vector<int> order;
    for (int i = 0; i < n_in; ++i) {
        if (!masks[i].excluded) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return masks[a].centroid.y < masks[b].centroid.y; });
    const int n = static_cast<int>(order.size());
    if (n == 0) {
        out.reference = "none";
        out.flags.push_back("no_reference");
        out.method = "chain";
        return out;
    }

    // The film: steps, skip weights, size densities, emissions.
    Film film;
    film.n = n;
    {
        const double g = params.gap_factor;
        std::vector<double> steps(n - 1);
        for (int k = 0; k + 1 < n; ++k) {
            const Point& a = masks[order[k]].centroid;
            const Point& b = masks[order[k + 1]].centroid;
            steps[k] = std::hypot(b.x - a.x, b.y - a.y);
        }
        double spacing = 0.0;
        if (!steps.empty()) {
            std::vector<double> s = steps;
            std::sort(s.begin(), s.end());
            const size_t m = s.size();
            spacing = m % 2 == 1 ? s[m / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
        }
        std::array<double, kLevelCount> log_level;
        for (int l = 0; l < kLevelCount; ++l) log_level[l] = std::log(params.level_area[l]);
        SizeDensity size(log_level, params.size_sigma);
        film.skip_lo.resize(n - 1);
        std::vector<std::array<double, kBand>> skip_w(n - 1);
        film.level_step.resize(n - 1);
        film.level_end.resize(n - 1);
        film.pair_out.resize(n - 1);
        film.chain_pos.assign(n, 0);
        for (int k = 0; k + 1 < n; ++k) {
            const int z = skip_of(steps[k], spacing, g);
            const double r = spacing > 0.0 ? std::min(steps[k] / spacing, 1.0e6) : 1.0;
            const int lo = std::max(0, z - 2);
            double total = 0.0;
            for (int b = 0; b < kBand; ++b) {
                const int j = lo + b;  // the band is max(0, z - 2) .. z + 2
                const double w = j > z + 2 ? 0.0
                                 : j == z  ? 1.0
                                           : params.off_gap_weight * std::exp(-params.gap_sharpness * skip_distance(r, j, g));
                skip_w[k][b] = w;
                total += w;
            }
            for (double& w : skip_w[k]) w /= total;
            film.skip_lo[k] = lo;
            const double go_on = 1.0 - params.end_hazard;
            const double delta = std::log(masks[order[k + 1]].area) - std::log(masks[order[k]].area);
            size.fill_step(delta, lo, skip_w[k], go_on, params.end_hazard, film.level_step[k], film.level_end[k]);
            film.pair_out[k] = pdf(delta, 0.0, params.outside_size_sigma);
            film.chain_pos[k + 1] = film.chain_pos[k] + 1 + z;
        }
        std::array<int, kLevelCount + 1> column_of_level{};
        for (int c = 1; c < columns; ++c) column_of_level[params.class_levels[c]] = c;
        film.emission.resize(n);
        std::vector<double> p(columns), shape(columns);
        for (int k = 0; k < n; ++k) {
            const DecoderMask& m = masks[order[k]];
            if (m.probs.empty()) {
                const int c = class_column(m.cls);
                if (m.score > prior[c]) {
                    for (int j = 0; j < columns; ++j) p[j] = prior[j] * ((1.0 - m.score) / (1.0 - prior[c]));
                    p[c] = m.score;
                } else {
                    p = prior;
                }
            } else {
                const double sum = std::accumulate(m.probs.begin(), m.probs.end(), 0.0);
                for (int j = 0; j < columns; ++j) p[j] = m.probs[j] / sum;
            }
            for (int j = 0; j < columns; ++j) p[j] = (p[j] + kProbFloor) / (1.0 + columns * kProbFloor);
            std::fill(shape.begin(), shape.end(), 1.0);
            if (m.height > 0.0 && m.width > 0.0) {
                const double a = std::log(m.height / m.width);
                const double base = pdf(a, params.vertebra_aspect_mean, params.vertebra_aspect_sd);
                shape[1] = pdf(a, params.c2_aspect_mean, params.c2_aspect_sd) / base;
                shape[2] = pdf(a, params.s1_aspect_mean, params.s1_aspect_sd) / base;
            }
            States& e = film.emission[k];
            e[kA] = e[kB] = params.outside_weight;  // an outside object passing as a vertebral body
            for (int level = 1; level <= kLevelCount; ++level) {
                const int c = column_of_level[level];
                e[level] = p[c] / prior[c] * shape[c];
            }
        }
    }

    const Model model(film, params);
    const Inference U = model.infer(0, n, nullptr, qv, true);
    out.view_posterior = U.posterior;
    const double thr = params.confidence_threshold - kDecisionTol;

    auto candidates = [&](MaskClass cls) {
        std::vector<int> c;
        for (int k = 0; k < n; ++k) {
            if (masks[order[k]].cls == cls && masks[order[k]].score >= params.ref_score) c.push_back(k);
        }
        return c;
    };
    auto pick = [&](const std::vector<int>& cands, int level) {
        int best = -1;
        for (int k : cands) {
            if (best < 0) {
                best = k;
                continue;
            }
            const double mk = U.marginals[k][level], mb = U.marginals[best][level];
            const double sk = masks[order[k]].score, sb = masks[order[best]].score;
            if (mk > mb + kDecisionTol ||
                (std::abs(mk - mb) <= kDecisionTol && (sk > sb || (sk == sb && order[k] < order[best])))) {
                best = k;
            }
        }
        return best;
    };
    auto share = [&](const std::vector<int>& cands, int k, int level) {
        double total = 0.0;
        for (int j : cands) total += U.marginals[j][level];
        return total > 0.0 ? U.marginals[k][level] / total : 1.0 / static_cast<double>(cands.size());
    };

    const std::vector<int> c2_cands = candidates(MaskClass::C2), s1_cands = candidates(MaskClass::S1);
    // The zipper's choice: the best score, ties to the lower input index.
    auto best_scoring = [&](const std::vector<int>& cands) {
        int best = -1;
        for (int k : cands) {
            if (best < 0 || masks[order[k]].score > masks[order[best]].score ||
                (masks[order[k]].score == masks[order[best]].score && order[k] < order[best])) {
                best = k;
            }
        }
        return best;
    };
    int c2 = pick(c2_cands, kLevelC2), s1 = pick(s1_cands, kLevelS1);
    // The chain prefers another candidate than the network's best score: flagged.
    bool conflict = c2 != best_scoring(c2_cands) || s1 != best_scoring(s1_cands);
    if (c2 >= 0 && s1 >= 0 && s1 < c2) {
        // S1 above C2 cannot both be right: keep the one the chain supports more.
        conflict = true;
        const double ms = U.marginals[s1][kLevelS1], mc = U.marginals[c2][kLevelC2];
        const bool keep_s1 = ms > mc + kDecisionTol ||
                             (std::abs(ms - mc) <= kDecisionTol && masks[order[s1]].score > masks[order[c2]].score);
        if (keep_s1) {
            c2 = -1;
        } else {
            s1 = -1;
        }
    }

    struct Segment {
        int begin, end, c2, s1;
    };
    auto plan = [&](int rc2, int rs1) {
        std::vector<Segment> segs;
        if (rc2 >= 0 && rs1 >= 0 && kLevelC2 + (film.chain_pos[rs1] - film.chain_pos[rc2]) != kLevelS1) {
            // The references disagree: each part of the chain is read from its nearer one (SPEC 4).
            int split = 0;
            while (split < n && split - rc2 <= rs1 - split) ++split;
            segs.push_back({0, split, rc2, -1});
            segs.push_back({split, n, -1, rs1});
        } else {
            segs.push_back({0, n, rc2, rs1});
        }
        return segs;
    };

    bool overruled = false;
    while (c2 >= 0 || s1 >= 0) {
        const std::vector<Segment> segs = plan(c2, s1);
        bool reject_c2 = false, reject_s1 = false;
        for (const Segment& seg : segs) {
            std::vector<int> sub;
            const std::vector<int>* path = &U.path;
            if (segs.size() > 1) {
                sub = model.infer(seg.begin, seg.end, nullptr, qv, true).path;
                path = &sub;
            }
            if (seg.c2 >= 0 && (*path)[seg.c2 - seg.begin] != kLevelC2) reject_c2 = true;
            if (seg.s1 >= 0 && (*path)[seg.s1 - seg.begin] != kLevelS1) reject_s1 = true;
        }
        if (!reject_c2 && !reject_s1) break;
        overruled = true;
        if (reject_c2) c2 = -1;
        if (reject_s1) s1 = -1;
    }
    if (conflict || overruled) out.flags.push_back("label_conflict");
    auto add_flag = [&](const std::string& flag) {
        if (std::find(out.flags.begin(), out.flags.end(), flag) == out.flags.end()) out.flags.push_back(flag);
    };

    if (c2 >= 0 || s1 >= 0) {
        // Reference regime: the SPEC 4 names from the chosen references, with confidences from the
        // model conditioned on them.
        std::vector<LabelInput> zin(n);
        for (int k = 0; k < n; ++k) {
            zin[k].centroid = masks[order[k]].centroid;
            zin[k].score = masks[order[k]].score;
            zin[k].cls = k == c2 ? MaskClass::C2 : (k == s1 ? MaskClass::S1 : MaskClass::Vertebra);
        }
        const Labelling zipped = zip_labels(zin, params.gap_factor);
        for (const std::string& flag : zipped.flags) add_flag(flag);
        std::vector<double> conf(n, 0.0);
        for (const Segment& seg : plan(c2, s1)) {
            std::vector<States> allowed(seg.end - seg.begin);
            for (int k = seg.begin; k < seg.end; ++k) {
                States& a = allowed[k - seg.begin];
                a.fill(1.0);
                if (seg.c2 >= 0 && k <= seg.c2) {
                    a.fill(0.0);
                    a[k == seg.c2 ? kLevelC2 : kA] = 1.0;
                }
                if (seg.s1 >= 0 && k >= seg.s1) {
                    a.fill(0.0);
                    a[k == seg.s1 ? kLevelS1 : kB] = 1.0;
                }
            }
            const Inference cond = model.infer(seg.begin, seg.end, &allowed, qv, false);
            const double factor = (seg.c2 >= 0 ? share(c2_cands, seg.c2, kLevelC2) : 1.0) *
                                  (seg.s1 >= 0 ? share(s1_cands, seg.s1, kLevelS1) : 1.0);
            for (int k = seg.begin; k < seg.end; ++k) {
                const int level = zipped.levels[k];
                if (level > 0) conf[k] = cond.marginals[k - seg.begin][level] * factor;
            }
        }
        bool withheld = false;
        for (int k = 0; k < n; ++k) {
            const int level = zipped.levels[k];
            if (level > 0 && conf[k] >= thr) {
                out.levels[order[k]] = level;
                out.confidence[order[k]] = conf[k];
            } else if (level > 0) {
                withheld = true;
            }
        }
        for (const auto& [k, reason] : zipped.excluded) out.excluded.emplace_back(order[k], reason);
        if (withheld) add_flag("labels_uncertain");
        out.view = zipped.view;
        out.reference = zipped.reference;
        if (out.view == "whole") {
            // As sure as the less sure of its two references.
            out.view_probability = 1.0;
            for (int k = 0; k < n; ++k) {
                if (zipped.levels[k] == kLevelC2 || zipped.levels[k] == kLevelS1) {
                    out.view_probability = std::min(out.view_probability, conf[k]);
                }
            }
        } else {
            for (int v = 0; v < kViewCount; ++v) {
                if (out.view == kViewNames[v]) out.view_probability = U.posterior[v];
            }
        }
        out.method = "reference";
    } else {
        // Chain regime: the most probable labelling, names that reach the threshold.
        const std::vector<int>& path = U.path;
        std::vector<int> named(n, 0);
        bool withheld = false;
        for (int k = 0; k < n; ++k) {
            const int s = path[k];
            if (s < 1 || s > kLevelCount) continue;
            if (U.marginals[k][s] >= thr) {
                named[k] = s;
                out.levels[order[k]] = s;
                out.confidence[order[k]] = U.marginals[k][s];
            } else {
                withheld = true;
            }
        }
        int first = -1, last = -1;
        for (int k = 0; k < n; ++k) {
            if (path[k] >= 1 && path[k] <= kLevelCount) {
                if (first < 0) first = k;
                last = k;
            }
        }
        if (first >= 0) {
            for (int k = 0; k < n; ++k) {
                if (path[k] == kA && k < first && (named[first] == 1 || named[first] == kLevelC2)) {
                    out.excluded.emplace_back(order[k], named[first] == kLevelC2 ? ExclusionReason::AboveReference
                                                                                 : ExclusionReason::PastSequenceEnd);
                }
                if (path[k] == kB && k > last && named[last] == kLevelS1) {
                    out.excluded.emplace_back(order[k], ExclusionReason::BelowReference);
                }
            }
        }
        const bool has_c2 = std::find(named.begin(), named.end(), kLevelC2) != named.end();
        const bool has_s1 = std::find(named.begin(), named.end(), kLevelS1) != named.end();
        out.reference = has_c2 && has_s1 ? "C2+S1" : has_c2 ? "C2" : has_s1 ? "S1" : "none";
        const int v = first_max(U.posterior.begin(), U.posterior.end());
        if (U.posterior[v] >= thr) {
            out.view = kViewNames[v];
            out.view_probability = U.posterior[v];
        }
        if (has_c2 && has_s1) {
            out.view = "whole";
            out.view_probability = 1.0;
            for (int k = 0; k < n; ++k) {
                if (named[k] == kLevelC2 || named[k] == kLevelS1) {
                    out.view_probability = std::min(out.view_probability, U.marginals[k][named[k]]);
                }
            }
        }
        if (out.reference == "none") add_flag("no_reference");
        int prev = -1;
        bool any_named = false, gap = false;
        for (int k = 0; k < n; ++k) {
            if (!named[k]) continue;
            any_named = true;
            if (prev >= 0 && named[k] - named[prev] > k - prev) gap = true;
            prev = k;
        }
        if (gap) add_flag("gap_inferred");
        // Nothing named: the bodies come in top-to-bottom order only. Any level withheld below the
        // threshold (named run or not) makes the film's labels uncertain.
        if (!any_named) add_flag("relative_order_only");
        if (withheld) add_flag("labels_uncertain");
        out.method = "chain";
    }
    std::sort(out.excluded.begin(), out.excluded.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

}  // namespace vertx
