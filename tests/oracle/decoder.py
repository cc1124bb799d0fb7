"""Plain numpy implementation of the labelling decoder (docs/DESIGN.md, "Labelling as sequence
decoding"): the test oracle of ``vertxnet.core.decode_chain`` / ``decode_labels``.

Written for reading, not speed: one loop per mask, states as numpy vectors. It follows the same
definitions and the same tie rules as cpp/src/decoder.cpp, so that labels agree exactly and
confidences to rounding. Test-only; not part of the package.

States per mask: 0 = A (above the named run), 1..25 = the levels C1..S1, 26 = B (below it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

VIEWS = ("cervical", "cervicothoracic", "thoracic", "thoracolumbar", "lumbar")
NVIEWS = len(VIEWS)
LEVELS = (*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 13)), *(f"L{i}" for i in range(1, 6)), "S1")
A, B, NSTATES = 0, 26, 27
C2, S1 = 2, 25
PROB_FLOOR = 1e-6
TIE = 1e-10  # relative: a later value must exceed the best so far by more than this to win
DECISION_TOL = 1e-9  # confidences within this of the threshold count as reaching it
CLASS_OF = {"vertebra": 0, "C2": 1, "S1": 2}


def _default_level_area() -> list[float]:
    return [209, 248, 209, 216, 216, 223, 247, 280, 313, 348, 385, 424, 464, 506, 550, 596, 644, 693, 744,
            825, 884, 945, 972, 936, 1080]


@dataclass
class Params:
    confidence_threshold: float = 0.5
    ref_score: float = 0.5
    gap_factor: float = 1.6
    gap_sharpness: float = 8.0
    off_gap_weight: float = 0.5
    outside_weight: float = 0.15
    outside_start: float = 0.3
    end_hazard: float = 0.05
    out_of_view_weight: float = 0.05
    size_sigma: float = 0.25
    outside_size_sigma: float = 0.4
    vertebra_aspect_mean: float = -0.2
    vertebra_aspect_sd: float = 0.35
    c2_aspect_mean: float = 0.2
    c2_aspect_sd: float = 0.5
    s1_aspect_mean: float = -0.4
    s1_aspect_sd: float = 0.4
    level_area: list[float] = field(default_factory=_default_level_area)
    view_windows: list[tuple[int, int]] = field(
        default_factory=lambda: [(1, 4), (4, 7), (6, 10), (13, 18), (17, 24)])


@dataclass
class Decoding:
    labels: list
    confidence: np.ndarray
    view: str | None
    view_probability: float | None
    view_posterior: dict
    reference: str
    flags: list
    excluded: dict
    method: str


def _pdf(x: float, mean: float, sd: float) -> float:
    z = (x - mean) / sd
    return math.exp(-0.5 * z * z) / (sd * math.sqrt(2.0 * math.pi))


def _first_max(values) -> int:
    """Index of the largest value, scanning in increasing index: a later value wins only when it
    is larger by more than the relative tolerance TIE (near-ties go to the smaller index)."""
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best] * (1.0 + TIE):
            best = i
    return best


# ---------------------------------------------------------------------------------------------
# Features


def chain_order(centroids: np.ndarray, excluded: np.ndarray) -> list[int]:
    """Input indices of the non-excluded masks, top to bottom (centroid y; ties keep input order)."""
    keep = [i for i in range(len(centroids)) if not excluded[i]]
    return sorted(keep, key=lambda i: centroids[i][1])


def chain_features(polygons, excluded=None):
    """Centroids, areas and (height, width) extents along the local chain direction.

    Areas and centroids by the shoelace formula; the core computes them from Clipper's quantised
    rings, so they agree to about 1e-3 relative, not exactly.
    """
    n = len(polygons)
    excluded = np.zeros(n, bool) if excluded is None else np.asarray(excluded, bool)
    centroids, areas = np.zeros((n, 2)), np.zeros(n)
    for i, p in enumerate(polygons):
        p = np.asarray(p, float)
        x, y = p[:, 0], p[:, 1]
        x1, y1 = np.roll(x, -1), np.roll(y, -1)
        cross = x * y1 - x1 * y
        a = cross.sum() / 2.0
        areas[i] = abs(a)
        centroids[i] = ((x + x1) @ cross / (6 * a), (y + y1) @ cross / (6 * a))
    extents = np.zeros((n, 2))
    order = chain_order(centroids, excluded)
    for k, i in enumerate(order):
        lo, hi = order[max(k - 1, 0)], order[min(k + 1, len(order) - 1)]
        u = centroids[hi] - centroids[lo]
        norm = math.hypot(u[0], u[1])
        u = np.array([0.0, 1.0]) if norm == 0 else u / norm
        v = np.array([-u[1], u[0]])
        p = np.asarray(polygons[i], float)
        along, across = p @ u, p @ v
        extents[i] = (along.max() - along.min(), across.max() - across.min())
    return centroids, areas, extents


# ---------------------------------------------------------------------------------------------
# The model on one chain


@dataclass
class _Film:
    n: int
    emission: np.ndarray  # (n, 27)
    skip_lo: list[int]  # per step: first skip of the band
    skip_w: list[np.ndarray]  # per step: normalised weights of skips skip_lo.. skip_lo+len-1
    pair_level: list[np.ndarray]  # per step: (25, band) size density for level -> level + 1 + j
    pair_out: list[float]  # per step: size density for any pair involving A or B
    chain_pos: list[int]  # zipper chain positions (positions plus inferred missing levels)


def _skip_distance(r: float, j: int, g: float) -> float:
    lo = -math.inf if j == 0 else (g if j == 1 else max(g, j + 0.5))
    hi = g if j == 0 else j + 1.5
    return max(lo - r, r - hi, 0.0)


def _build_film(centroids, areas, extents, probs, params: Params) -> _Film:
    n = len(centroids)
    g = params.gap_factor
    steps = [math.hypot(centroids[k + 1][0] - centroids[k][0], centroids[k + 1][1] - centroids[k][1])
             for k in range(n - 1)]
    if steps:
        s = sorted(steps)
        m = len(s)
        spacing = s[m // 2] if m % 2 == 1 else 0.5 * (s[m // 2 - 1] + s[m // 2])
    else:
        spacing = 0.0
    skip_lo, skip_w, pair_level, pair_out, chain_pos = [], [], [], [], [0]
    log_level = np.log(np.asarray(params.level_area, float))
    for k, step in enumerate(steps):
        z = 0
        if spacing > 0.0 and step > g * spacing:
            ratio = min(step / spacing, 1.0e6)
            z = max(1, math.floor(ratio + 0.5) - 1)
        r = min(step / spacing, 1.0e6) if spacing > 0.0 else 1.0
        lo = max(0, z - 2)
        w = np.array([1.0 if j == z else params.off_gap_weight * math.exp(-params.gap_sharpness * _skip_distance(r, j, g))
                      for j in range(lo, z + 3)])
        skip_lo.append(lo)
        skip_w.append(w / w.sum())
        delta = math.log(areas[k + 1]) - math.log(areas[k])
        table = np.zeros((25, len(w)))
        for level in range(1, 26):
            for b, j in enumerate(range(lo, z + 3)):
                target = level + 1 + j
                if target <= 25:
                    table[level - 1, b] = _pdf(delta, log_level[target - 1] - log_level[level - 1], params.size_sigma)
        pair_level.append(table)
        pair_out.append(_pdf(delta, 0.0, params.outside_size_sigma))
        chain_pos.append(chain_pos[-1] + 1 + z)

    emission = np.zeros((n, NSTATES))
    for k in range(n):
        p, prior, col_of_level = probs[k]
        shape = np.ones(len(p))
        h, wd = extents[k]
        if h > 0 and wd > 0:
            a = math.log(h / wd)
            base = _pdf(a, params.vertebra_aspect_mean, params.vertebra_aspect_sd)
            shape[1] = _pdf(a, params.c2_aspect_mean, params.c2_aspect_sd) / base
            shape[2] = _pdf(a, params.s1_aspect_mean, params.s1_aspect_sd) / base
        ratio = p / prior * shape
        emission[k, A] = emission[k, B] = params.outside_weight  # an outside object passing as a body
        for level in range(1, 26):
            emission[k, level] = ratio[col_of_level[level]]
    return _Film(n, emission, skip_lo, skip_w, pair_level, pair_out, chain_pos)


@dataclass
class _Inference:
    marginals: np.ndarray  # (n, 27)
    posterior: np.ndarray  # (6,)
    path: list[int]  # joint Viterbi path (states)
    view: int  # view of the joint Viterbi path


def _start(view: int | None, view_prior: np.ndarray, params: Params, best: bool = False) -> np.ndarray:
    """Start distribution f over levels 1..25 (index 0 unused): uniform in the view's window,
    out_of_view_weight elsewhere, normalised. view None: the prior mixture (best: the maximum
    over views of prior x start, for the joint most probable path)."""
    def one(v):
        lo, hi = params.view_windows[v]
        f = np.zeros(26)
        f[1:] = [1.0 if lo <= level <= hi else params.out_of_view_weight for level in range(1, 26)]
        return f / f.sum()
    if view is not None:
        return one(view)
    stack = np.array([view_prior[v] * one(v) for v in range(NVIEWS)])
    return stack.max(axis=0) if best else stack.sum(axis=0)


def _level_transitions(film: _Film, k: int, params: Params):
    """Weights level src -> level target of step k (25 x 25, prior x size density) and the
    probability of each level's run ending there (to B; skips past S1 end it too)."""
    beta = params.end_hazard
    lo, w = film.skip_lo[k], film.skip_w[k]
    T = np.zeros((26, 26))
    end = np.zeros(26)
    for src in range(1, 26):
        end[src] = beta
        for b in range(len(w)):
            target = src + 1 + lo + b
            if target <= 25:
                T[src, target] = (1 - beta) * w[b] * film.pair_level[k][src - 1, b]
            else:
                end[src] += (1 - beta) * w[b]
    return T, end


def _forward(film: _Film, pos: list[int], L: np.ndarray, f: np.ndarray, params: Params):
    """Scaled forward pass over chain positions `pos` (contiguous) with start distribution f."""
    al = params.outside_start
    n = len(pos)
    alpha = np.zeros((n, NSTATES))
    a = np.zeros(NSTATES)
    a[A] = al * L[0, A]
    a[1:26] = (1 - al) * f[1:] * L[0, 1:26]
    logz = 0.0
    for i in range(n):
        if i > 0:
            k = pos[i - 1]
            po = film.pair_out[k]
            T, end = _level_transitions(film, k, params)
            new = np.zeros(NSTATES)
            new[A] = a[A] * al * po * L[i, A]
            new[1:26] = (a[A] * (1 - al) * f[1:] * po + a[1:26] @ T[1:, 1:]) * L[i, 1:26]
            new[B] = (a[1:26] @ end[1:] + a[B]) * po * L[i, B]
            a = new
        c = a.sum()
        if not c > 0:
            return alpha, -math.inf
        a = a / c
        logz += math.log(c)
        alpha[i] = a
    return alpha, logz


def _backward(film: _Film, pos: list[int], L: np.ndarray, alpha: np.ndarray, f: np.ndarray,
              params: Params) -> np.ndarray:
    al = params.outside_start
    n = len(pos)
    beta = np.zeros((n, NSTATES))
    beta[n - 1] = 1.0
    for i in range(n - 2, -1, -1):
        k = pos[i]
        po = film.pair_out[k]
        T, end = _level_transitions(film, k, params)
        nxt = L[i + 1] * beta[i + 1]
        b = np.zeros(NSTATES)
        b[A] = al * po * nxt[A] + (1 - al) * po * float(f[1:] @ nxt[1:26])
        b[1:26] = T[1:, 1:] @ nxt[1:26] + end[1:] * po * nxt[B]
        b[B] = po * nxt[B]
        beta[i] = b / float(alpha[i] @ b)  # marginals of step i sum to one
    return beta


def _viterbi(film: _Film, pos: list[int], L: np.ndarray, f: np.ndarray, params: Params) -> list[int]:
    al = params.outside_start
    n = len(pos)
    back = np.zeros((n, NSTATES), int)
    d = np.zeros(NSTATES)
    d[A] = al * L[0, A]
    d[1:26] = (1 - al) * f[1:] * L[0, 1:26]
    for i in range(n):
        if i > 0:
            k = pos[i - 1]
            po = film.pair_out[k]
            T, end = _level_transitions(film, k, params)
            new = np.zeros(NSTATES)
            new[A] = d[A] * al * po * L[i, A]
            for target in range(1, 26):
                cand = np.zeros(NSTATES)
                cand[A] = d[A] * (1 - al) * f[target] * po
                cand[1:26] = d[1:26] * T[1:, target]
                best = _first_max(cand)
                back[i, target] = best
                new[target] = cand[best] * L[i, target]
            cand = np.zeros(NSTATES)
            cand[1:26] = d[1:26] * end[1:] * po
            cand[B] = d[B] * po
            best = _first_max(cand)
            back[i, B] = best
            new[B] = cand[best] * L[i, B]
            d = new
        m = float(d.max())
        if not m > 0:
            return []
        d = d / m
    state = _first_max(d)
    path = [state]
    for i in range(n - 1, 0, -1):
        state = int(back[i, state])
        path.append(state)
    return path[::-1]


def _infer(film: _Film, pos: list[int], allowed: np.ndarray | None, view_prior: np.ndarray,
           params: Params) -> _Inference:
    """One forward-backward per view (each view's start distribution); the view posterior from
    the views' evidences, the marginals as the posterior mixture. The path: the joint most
    probable (view, labelling), i.e. Viterbi with the start max_v prior(v) x f_v."""
    n = len(pos)
    L = film.emission[pos].copy()
    if allowed is not None:
        L = L * allowed
    log_post = np.full(NVIEWS, -math.inf)
    gammas = np.zeros((NVIEWS, n, NSTATES))
    for v in range(NVIEWS):
        if not view_prior[v] > 0:
            continue
        f = _start(v, view_prior, params)
        alpha, log_z = _forward(film, pos, L, f, params)
        if log_z == -math.inf:
            continue
        gammas[v] = alpha * _backward(film, pos, L, alpha, f, params)
        log_post[v] = math.log(view_prior[v]) + log_z
    top = log_post.max()
    post = np.where(np.isfinite(log_post), np.exp(log_post - top), 0.0)
    post /= post.sum()
    marg = np.tensordot(post, gammas, axes=1)
    path = _viterbi(film, pos, L, _start(None, view_prior, params, best=True), params)
    return _Inference(marg, post, path, _first_max(post))


# ---------------------------------------------------------------------------------------------
# SPEC section 4 zipper from given reference positions


def _zip(film: _Film, c2: int | None, s1: int | None):
    """Levels (0 = none) per chain position, excluded {position: reason}, flags, view, reference."""
    n, chain = film.n, film.chain_pos
    levels, excluded, gap_used = [0] * n, {}, False
    for k in range(n):
        if c2 is not None and k < c2:
            excluded[k] = "above_reference"
            continue
        if s1 is not None and k > s1:
            excluded[k] = "below_reference"
            continue
        if s1 is None or (c2 is not None and k - c2 <= s1 - k):
            level = C2 + chain[k] - chain[c2]
            gap_used |= chain[k] - chain[c2] != k - c2
        else:
            level = S1 - (chain[s1] - chain[k])
            gap_used |= chain[s1] - chain[k] != s1 - k
        if 1 <= level <= 25:
            levels[k] = level
        else:
            excluded[k] = "past_sequence_end"
    flags = []
    if c2 is not None and s1 is not None:
        view, reference = "whole", "C2+S1"
        if C2 + chain[s1] - chain[c2] != S1:
            flags.append("label_conflict")
    elif c2 is not None:
        view, reference = "cervical", "C2"
    else:
        view, reference = "lumbar", "S1"
    if gap_used:
        flags.append("gap_inferred")
    return levels, excluded, flags, view, reference


# ---------------------------------------------------------------------------------------------
# Inputs


def _class_setup(class_names, class_prior):
    names = list(class_names or ("vertebra", "C2", "S1"))
    if names[:3] != ["vertebra", "C2", "S1"]:
        raise ValueError("class_names: must start with 'vertebra', 'C2', 'S1'")
    col_of_level = [0] * 26
    for c, name in enumerate(names):
        if c > 0:
            col_of_level[LEVELS.index(name) + 1] = c
    if class_prior is None:
        prior = np.array([1.0 - 0.075 * (len(names) - 1)] + [0.075] * (len(names) - 1))
    else:
        prior = np.asarray(class_prior, float)
        prior = prior / prior.sum()
    return names, prior, col_of_level


def derived_probs(cls: str, score: float, prior: np.ndarray) -> np.ndarray:
    """Class probabilities of a mask known only by its class and score (old bundles, U-Net masks).

    A score above the class's prior is read as that class's softmax probability, the rest shared
    by the other classes in proportion to their priors; a score at or below the prior (a U-Net-only
    mask has score 0) carries no evidence: the prior itself. Continuous at score = prior.
    """
    c = CLASS_OF[cls]
    if not score > prior[c]:
        return prior.copy()
    p = prior * ((1.0 - score) / (1.0 - prior[c]))
    p[c] = score
    return p


def _view_prior(view_prior) -> np.ndarray:
    if view_prior is None:
        return np.full(NVIEWS, 1.0 / NVIEWS)
    if isinstance(view_prior, dict):
        values = [float(view_prior.get(v, 0.0)) for v in VIEWS]
    else:
        values = [float(v) for v in view_prior]
    p = np.asarray(values, float)
    return p / p.sum()


def decode_chain(centroids, areas, classes, scores, *, extents=None, class_probs=None, view_prior=None,
                 excluded=None, class_names=None, class_prior=None, params: Params | None = None,
                 confidence_threshold=None, ref_score=None, gap_factor=None) -> Decoding:
    params = Params(**vars(params)) if params is not None else Params()
    for key, value in (("confidence_threshold", confidence_threshold), ("ref_score", ref_score),
                       ("gap_factor", gap_factor)):
        if value is not None:
            setattr(params, key, float(value))
    centroids = np.asarray(centroids, float).reshape(-1, 2)
    n_in = len(centroids)
    areas = np.asarray(areas, float).reshape(-1)
    extents = np.zeros((n_in, 2)) if extents is None else np.asarray(extents, float).reshape(-1, 2)
    excluded = np.zeros(n_in, bool) if excluded is None else np.asarray(excluded, bool)
    names, prior, col_of_level = _class_setup(class_names, class_prior)
    qv = _view_prior(view_prior)

    order = chain_order(centroids, excluded)
    n = len(order)
    probs = []
    for i in order:
        row = None if class_probs is None else class_probs[i]
        if row is None:
            p = derived_probs(classes[i], scores[i], prior)
        else:
            p = np.asarray(row, float)
            p = p / p.sum()
        p = (p + PROB_FLOOR) / (1.0 + len(names) * PROB_FLOOR)
        probs.append((p, prior, col_of_level))

    labels_out = [None] * n_in
    conf_out = np.zeros(n_in)
    if n == 0:
        return Decoding(labels_out, conf_out, None, None, dict(zip(VIEWS, qv.tolist())), "none",
                        ["no_reference"], {}, "chain")
    film = _build_film(centroids[order], areas[order], extents[order], probs, params)
    everything = list(range(n))
    U = _infer(film, everything, None, qv, params)
    thr = params.confidence_threshold - DECISION_TOL

    def candidates(cls):
        return [k for k, i in enumerate(order) if classes[i] == cls and scores[i] >= params.ref_score]

    def pick(cands, level):
        best = None
        for k in cands:
            if best is None:
                best = k
                continue
            mk, mb = U.marginals[k, level], U.marginals[best, level]
            sk, sb = scores[order[k]], scores[order[best]]
            if mk > mb + DECISION_TOL or (abs(mk - mb) <= DECISION_TOL and (sk > sb or (sk == sb and order[k] < order[best]))):
                best = k
        return best

    def share(cands, k, level):
        total = sum(U.marginals[j, level] for j in cands)
        return U.marginals[k, level] / total if total > 0 else 1.0 / len(cands)

    c2_cands, s1_cands = candidates("C2"), candidates("S1")
    def best_scoring(cands):
        best = None
        for k in cands:
            if best is None or scores[order[k]] > scores[order[best]] or (
                    scores[order[k]] == scores[order[best]] and order[k] < order[best]):
                best = k
        return best

    c2, s1 = pick(c2_cands, C2), pick(s1_cands, S1)
    # the chain prefers another candidate than the network's best score: flagged
    conflict = c2 != best_scoring(c2_cands) or s1 != best_scoring(s1_cands)
    if c2 is not None and s1 is not None and s1 < c2:
        conflict = True
        ms, mc = U.marginals[s1, S1], U.marginals[c2, C2]
        keep_s1 = ms > mc + DECISION_TOL or (abs(ms - mc) <= DECISION_TOL and scores[order[s1]] > scores[order[c2]])
        if keep_s1:
            c2 = None
        else:
            s1 = None

    def segments(c2, s1):
        if c2 is not None and s1 is not None and C2 + film.chain_pos[s1] - film.chain_pos[c2] != S1:
            top = [k for k in everything if k - c2 <= s1 - k]
            bottom = [k for k in everything if k - c2 > s1 - k]
            return [(top, c2, None), (bottom, None, s1)]
        return [(everything, c2, s1)]

    overruled = False
    while c2 is not None or s1 is not None:
        plan = segments(c2, s1)
        rejected = set()
        for pos, sc2, ss1 in plan:
            path = U.path if len(plan) == 1 else _infer(film, pos, None, qv, params).path
            at = {p: state for p, state in zip(pos, path)}
            if sc2 is not None and at[sc2] != C2:
                rejected.add("C2")
            if ss1 is not None and at[ss1] != S1:
                rejected.add("S1")
        if not rejected:
            break
        overruled = True
        c2 = None if "C2" in rejected else c2
        s1 = None if "S1" in rejected else s1

    flags: list[str] = ["label_conflict"] if (conflict or overruled) else []
    excluded_out: dict[int, str] = {}
    if c2 is not None or s1 is not None:
        levels, exc, zflags, view, reference = _zip(film, c2, s1)
        for f in zflags:
            if f not in flags:
                flags.append(f)
        conf = np.zeros(n)
        for pos, sc2, ss1 in segments(c2, s1):
            allowed = np.ones((len(pos), NSTATES))
            for idx, k in enumerate(pos):
                if sc2 is not None and (k < sc2 or k == sc2):
                    allowed[idx] = 0.0
                    allowed[idx, C2 if k == sc2 else A] = 1.0
                if ss1 is not None and (k > ss1 or k == ss1):
                    allowed[idx] = 0.0
                    allowed[idx, S1 if k == ss1 else B] = 1.0
            cond = _infer(film, pos, allowed, qv, params)
            factor = (share(c2_cands, sc2, C2) if sc2 is not None else 1.0) * (
                share(s1_cands, ss1, S1) if ss1 is not None else 1.0)
            for idx, k in enumerate(pos):
                if levels[k]:
                    conf[k] = cond.marginals[idx, levels[k]] * factor
        withheld = False
        for k, i in enumerate(order):
            if levels[k] and conf[k] >= thr:
                labels_out[i] = LEVELS[levels[k] - 1]
                conf_out[i] = conf[k]
            elif levels[k]:
                withheld = True
        for k, reason in exc.items():
            excluded_out[order[k]] = reason
        if withheld:
            flags.append("labels_uncertain")
        if view == "whole":  # as sure as the less sure of its two references
            probability = float(min(conf[k] for k in range(n) if levels[k] in (C2, S1)))
        else:
            probability = float(U.posterior[VIEWS.index(view)])
        return Decoding(labels_out, conf_out, view, probability, dict(zip(VIEWS, U.posterior.tolist())),
                        reference, flags, dict(sorted(excluded_out.items())), "reference")

    # Chain regime: the joint Viterbi path, names that reach the threshold.
    path = U.path
    named = [0] * n
    withheld = False
    for k in range(n):
        s = path[k]
        if 1 <= s <= 25:
            if U.marginals[k, s] >= thr:
                named[k] = s
                labels_out[order[k]] = LEVELS[s - 1]
                conf_out[order[k]] = U.marginals[k, s]
            else:
                withheld = True
    level_pos = [k for k in range(n) if 1 <= path[k] <= 25]
    if level_pos:
        first, last = level_pos[0], level_pos[-1]
        for k in range(n):
            if path[k] == A and k < first and named[first] in (1, C2):
                excluded_out[order[k]] = "above_reference" if named[first] == C2 else "past_sequence_end"
            if path[k] == B and k > last and named[last] == S1:
                excluded_out[order[k]] = "below_reference"
    has_c2, has_s1 = C2 in named, S1 in named
    reference = "C2+S1" if has_c2 and has_s1 else "C2" if has_c2 else "S1" if has_s1 else "none"
    v = _first_max(U.posterior)
    view, probability = (VIEWS[v], float(U.posterior[v])) if U.posterior[v] >= thr else (None, None)
    if reference == "C2+S1":
        view = "whole"
        probability = float(min(U.marginals[k, named[k]] for k in range(n) if named[k] in (C2, S1)))
    if reference == "none":
        flags.append("no_reference")
    named_pos = [k for k in range(n) if named[k]]
    if any(named[q] - named[p] > q - p for p, q in zip(named_pos, named_pos[1:])):
        flags.append("gap_inferred")
    if not named_pos:
        flags.append("relative_order_only")
    if withheld:
        flags.append("labels_uncertain")
    return Decoding(labels_out, conf_out, view, probability, dict(zip(VIEWS, U.posterior.tolist())), reference,
                    flags, dict(sorted(excluded_out.items())), "chain")


def decode_labels(masks, *, excluded=None, **kwargs) -> Decoding:
    """``decode_chain`` of (polygon, cls, score) masks (or objects with .polygon/.cls/.score)."""
    polygons, classes, scores = [], [], []
    for m in masks:
        if hasattr(m, "polygon"):
            polygons.append(np.asarray(m.polygon, float))
            classes.append(m.cls)
            scores.append(float(m.score))
        else:
            polygons.append(np.asarray(m[0], float))
            classes.append(m[1])
            scores.append(float(m[2]))
    centroids, areas, extents = chain_features(polygons, excluded)
    return decode_chain(centroids, areas, classes, scores, extents=extents, excluded=excluded, **kwargs)
