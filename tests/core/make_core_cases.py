"""Writes the reference cases under tests/data/ensemble and tests/data/labelling.

Each case is built so that its expected result follows from the rules of SPEC §3-4 by
construction (the assumptions are checked here with shapely, independently of both
implementations). Run from the repository root:

    PYTHONPATH=python python tests/core/make_core_cases.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_cases import format_polygon  # noqa: E402
from core_scenes import traced_outline, vertebra_outline  # noqa: E402

from vertxnet.levels import LEVELS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "tests" / "data"


def write(folder: str, name: str, comment: str, lines: list[str]) -> None:
    path = ROOT / folder / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"# {c}\n" for c in comment.strip().splitlines()) + "\n".join(lines) + "\n"
    path.write_text(text)
    print("wrote", path.relative_to(ROOT.parent.parent))


def area(p: np.ndarray) -> float:
    return Polygon(p).area


def jittered(p: np.ndarray, rng: np.random.Generator, scale: float = 0.03) -> np.ndarray:
    """A second network's view of the same body: slightly scaled and shifted."""
    centre = p.mean(axis=0)
    return centre + (p - centre) * rng.uniform(1 - scale, 1 + scale) + rng.normal(0, 0.8, 2)


def spine(count: int, *, top: float, spacing: float, width: float, height: float, x: float = 150.0,
          rng: np.random.Generator, vertices: int = 96) -> list[np.ndarray]:
    return [vertebra_outline(x + rng.normal(0, 2), top + i * spacing, width * rng.uniform(0.95, 1.05),
                             height * rng.uniform(0.95, 1.05), angle=rng.normal(0, 0.04),
                             concavity=0.06, wedge=0.05, vertices=vertices) for i in range(count)]


def window(areas: list[float], lam: float = 2.0) -> tuple[float, float]:
    mu = float(np.mean(areas))
    sigma = max(float(np.std(areas)), 0.1 * mu)
    return mu - lam * sigma, mu + lam * sigma


def ensemble_cases() -> None:
    rng = np.random.default_rng(2024)
    shape = (420, 300)

    # --- Fig. 3a: Mask R-CNN misses the partial T1 at the bottom edge; the U-Net finds it.
    bodies = spine(7, top=70, spacing=46, width=48, height=34, rng=rng)
    bodies[0] = vertebra_outline(150, 60, 50, 46, concavity=0.02, vertices=120)  # C2 (with dens) is taller
    partial_shape = (int(bodies[6][:, 1].max() - 5), 300)  # the film ends through T1
    unet = [traced_outline([jittered(b, rng)], partial_shape) for b in bodies]
    mrcnn = [jittered(b, rng) for b in bodies[:6]]
    agreed = [area(Polygon(u).union(Polygon(m)).exterior.coords) for u, m in zip(unet, mrcnn)]
    low, high = window(agreed)
    assert low < area(unet[6]) < high and area(unet[6]) < 0.9 * area(bodies[6]), "partial T1 must fit the window"
    lines = [f"unet {format_polygon(u)}" for u in unet]
    lines += [f"mrcnn {'C2' if i == 0 else 'vertebra'} {0.97 - 0.03 * i:.2f} {format_polygon(m)}" for i, m in enumerate(mrcnn)]
    lines += [f"expect_mask agreement {'C2' if i == 0 else 'vertebra'} {i} {i}" for i in range(6)]
    lines += ["expect_mask rescued vertebra 6 -", "expect_labels C2 C3 C4 C5 C6 C7 T1", "expect_view cervical",
              "expect_reference C2", "expect_flags", "expect_excluded"]
    write("ensemble", "fig3a_partial_t1_rescued", """
Seed 000 Fig. 3a: cervical film C2-T1. Mask R-CNN misses T1, which the film edge cuts (about
85 % visible); the U-Net (contour-traced outlines) finds it. Six agreements, then T1 is rescued:
its area lies inside mu +- 2 sigma of the agreed masks and it does not overlap them.""", lines)

    # --- Fig. 3b: the U-Net fuses two touching vertebrae; Mask R-CNN separates them.
    bodies = spine(6, top=60, spacing=54, width=62, height=42, rng=rng)
    bodies[5] = vertebra_outline(152, 60 + 5 * 54 + 4, 64, 44, angle=0.35, wedge=0.3, vertices=120)  # S1
    fused = traced_outline([jittered(bodies[2], rng), jittered(bodies[3], rng),
                            np.array([[135, 175], [165, 175], [165, 215], [135, 215]])], shape)
    unet = [traced_outline([jittered(b, rng)], shape) for b in bodies[:2]] + [fused]
    unet += [traced_outline([jittered(b, rng)], shape) for b in bodies[4:]]
    mrcnn = [jittered(b, rng) for b in bodies]
    assert area(fused) > 1.8 * area(bodies[2])
    lines = [f"unet {format_polygon(u)}" for u in unet]
    lines += [f"mrcnn {'S1' if i == 5 else 'vertebra'} {0.9 + 0.01 * i:.2f} {format_polygon(m)}" for i, m in enumerate(mrcnn)]
    lines += ["expect_mask agreement vertebra 0 0", "expect_mask agreement vertebra 1 1",
              "expect_mask split vertebra - 2", "expect_mask split vertebra - 3",
              "expect_mask agreement vertebra 3 4", "expect_mask agreement S1 4 5",
              "expect_labels L1 L2 L3 L4 L5 S1", "expect_view lumbar", "expect_reference S1",
              "expect_flags", "expect_excluded"]
    write("ensemble", "fig3b_fused_blob_split", """
Seed 000 Fig. 3b: lumbar film L1-S1. The U-Net fuses L3 and L4 into one blob; each Mask R-CNN
outline covers > eta of itself inside the blob but < eta of the blob, so both are split off
(the blob stays and is later rejected: twice the typical area). S1 is the reference.""", lines)

    # --- A small false-positive blob from each network is rejected by the area window.
    bodies = spine(5, top=70, spacing=46, width=48, height=34, rng=rng)
    blob_u = vertebra_outline(60, 200, 16, 10, roundness=2.5, vertices=40)
    blob_m = vertebra_outline(250, 120, 18, 12, roundness=2.5, vertices=40)
    unet = [traced_outline([jittered(b, rng)], shape) for b in bodies] + [traced_outline([blob_u], shape)]
    mrcnn = [jittered(b, rng) for b in bodies] + [blob_m]
    low, _ = window([area(b) for b in bodies])
    assert area(blob_u) < low and area(blob_m) < low
    lines = [f"unet {format_polygon(u)}" for u in unet]
    lines += [f"mrcnn {'C2' if i == 0 else 'vertebra'} {0.95 if i < 5 else 0.62:.2f} {format_polygon(m)}" for i, m in enumerate(mrcnn)]
    lines += [f"expect_mask agreement {'C2' if i == 0 else 'vertebra'} {i} {i}" for i in range(5)]
    lines += ["expect_labels C2 C3 C4 C5 C6"]
    write("ensemble", "false_positive_blobs_rejected", """
Two small false positives (one U-Net blob, one Mask R-CNN blob with score 0.62) far from the
spine: both fall below mu - 2 sigma and are rejected; the five vertebrae agree.""", lines)

    # --- A reference vertebra is never dropped (and one below ref_score is).
    bodies = spine(4, top=60, spacing=54, width=62, height=42, rng=rng)
    s1 = vertebra_outline(150, 60 + 4 * 54 + 14, 90, 70, angle=0.4, wedge=0.35, vertices=120)
    _, high = window([area(b) for b in bodies])
    assert area(s1) > high
    unet = [traced_outline([jittered(b, rng)], shape) for b in bodies]
    mrcnn = [jittered(b, rng) for b in bodies] + [s1]
    for score, name, expect in ((0.8, "reference_never_dropped", True), (0.3, "low_score_reference_dropped", False)):
        lines = [f"unet {format_polygon(u)}" for u in unet]
        lines += [f"mrcnn {'S1' if i == 4 else 'vertebra'} {score if i == 4 else 0.9:.2f} {format_polygon(m)}" for i, m in enumerate(mrcnn)]
        lines += [f"expect_mask agreement vertebra {i} {i}" for i in range(4)]
        if expect:
            lines += ["expect_mask rescued S1 - 4", "expect_labels L2 L3 L4 L5 S1", "expect_reference S1"]
            comment = """
The U-Net misses S1; Mask R-CNN finds it as class S1 with score 0.8 >= ref_score. Its area is far
outside mu +- 2 sigma, yet a reference vertebra is never dropped: rescued, and it anchors the names."""
        else:
            lines += ["expect_labels - - - -", "expect_reference none", "expect_flags no_reference", "expect_view none"]
            comment = """
As reference_never_dropped, but the S1 outline scores 0.3 < ref_score: it is an ordinary
candidate, its area is outside mu +- 2 sigma, so it is dropped and nothing can be named."""
        write("ensemble", name, comment, lines)

    # --- Empty inputs.
    write("ensemble", "empty_inputs", "No outlines at all: no masks, nothing to name.",
          ["expect_count 0", "expect_labels", "expect_view none", "expect_reference none", "expect_flags no_reference",
           "expect_excluded"])

    # --- Nothing agrees: fallbacks.
    bodies = spine(4, top=70, spacing=46, width=48, height=34, rng=rng)
    tiny = np.array([[20.0, 20.0], [21.0, 20.0], [20.0, 20.8]])  # 0.4 px^2 < min_area
    lines = [f"unet {format_polygon(traced_outline([b], shape))}" for b in bodies] + [f"unet {format_polygon(tiny)}"]
    lines += [f"expect_mask rescued vertebra {i} -" for i in range(4)]
    write("ensemble", "unet_only_fallback", """
Only U-Net outlines (Mask R-CNN found nothing): E is empty before R, so every U-Net outline of
area >= min_area (1 px^2) is kept; the 0.4 px^2 speck is not.""", lines)
    lines = [f"mrcnn {'C2' if i == 0 else 'vertebra'} 0.8 {format_polygon(jittered(b, rng))}" for i, b in enumerate(bodies[:3])]
    lines += ["expect_mask rescued C2 - 0", "expect_mask rescued vertebra - 1", "expect_mask rescued vertebra - 2",
              "expect_labels C2 C3 C4", "expect_view cervical"]
    write("ensemble", "mrcnn_only_fallback", """
Only Mask R-CNN outlines: E is empty before R, so every one of area >= min_area is kept.""", lines)

    # --- The overlap guard tau.
    bodies = spine(4, top=70, spacing=46, width=48, height=34, rng=rng)
    ghost = bodies[2] + [0.0, 0.4 * 34]  # C4 again, shifted down by 40 % of its height
    lines = [f"unet {format_polygon(traced_outline([b], shape))}" for b in bodies] + [f"unet {format_polygon(ghost)}"]
    lines += [f"mrcnn {'C2' if i == 0 else 'vertebra'} 0.9 {format_polygon(jittered(b, rng))}" for i, b in enumerate(bodies)]
    lines += [f"expect_mask agreement {'C2' if i == 0 else 'vertebra'} {i} {i}" for i in range(4)]
    write("ensemble", "overlap_guard_rejects", """
An extra U-Net outline (C4 shifted down by 40 % of its height) has a typical area but more than
tau = 0.3 of it lies inside union(E): rejected.""", lines)
    lines[-4:] = [f"expect_mask agreement {'C2' if i == 0 else 'vertebra'} {i} {i}" for i in range(3)]
    lines += ["expect_mask rescued vertebra 4 -", "expect_mask agreement vertebra 3 3", "param tau 0.9"]
    write("ensemble", "overlap_guard_tau_09", """
The same outlines with tau = 0.9: the shifted C4 copy now passes the guard and is rescued
(it sorts between C4 and C5 by centroid y).""", lines)

    # --- Degenerate outlines are dropped with a warning; a bow-tie does no harm.
    bodies = spine(3, top=70, spacing=46, width=48, height=34, rng=rng)
    bow_tie = np.array([[250.0, 60.0], [262.0, 72.0], [262.0, 60.0], [250.0, 72.0]])
    lines = [f"unet {format_polygon(traced_outline([b], shape))}" for b in bodies]
    lines += ["unet 10 10 20 20 30 30", f"unet {format_polygon(bow_tie)}"]
    lines += [f"mrcnn vertebra 0.9 {format_polygon(jittered(b, rng))}" for b in bodies]
    lines += ["mrcnn vertebra 0.7 40 40 40 40 40 40 40 40"]
    lines += [f"expect_mask agreement vertebra {i} {i}" for i in range(3)] + ["expect_warnings 2"]
    write("ensemble", "degenerate_dropped", """
A collinear U-Net outline and a Mask R-CNN outline of one repeated point are dropped (counted in
one RuntimeWarning); a bow-tie outline (two 36 px^2 lobes under the non-zero rule) is a valid
but small candidate and is rejected by the area window.""", lines)


def bow_tie_case() -> None:
    """The union rule on two near-identical bow-ties (issue 12's reproducer)."""
    a = np.array([[10.0, 10.0], [36.5, 50.0], [36.5, 10.0], [10.0, 50.0]])  # 530 px^2
    b = np.array([[10.6, 10.3], [35.9, 50.3], [35.9, 10.3], [10.6, 50.3]])  # 506 px^2
    c = np.array([[10.6, 10.0], [35.9, 50.0], [35.9, 10.0], [10.6, 50.0]]) + [0.0, 100.0]
    lines = [f"unet {format_polygon(a)}", f"unet {format_polygon(a + [0.0, 100.0])}",
             f"mrcnn vertebra 0.9 {format_polygon(b)}", f"mrcnn vertebra 0.9 {format_polygon(c)}",
             "expect_mask agreement vertebra 0 0", "expect_mask agreement vertebra 1 1",
             "expect_area 0 554.155 0.01", "expect_area 1 552.899 0.01"]
    write("ensemble", "bow_tie_union", """
Two near-identical bow-ties of 530 and 506 px^2 agree. The lobes of their union touch at two
points around a small hole (top pair) or at one point (bottom pair, the second copy only
narrower); the agreement mask is one outline around both lobes with the hole filled (554.155
and 552.899 px^2), never the larger lobe alone (about 300 px^2, smaller than either input).""", lines)


def labelling_cases() -> None:
    def stack(classes: list[str], *, steps: list[float] | None = None, order: list[int] | None = None,
              scores: list[float] | None = None) -> list[str]:
        """Masks top to bottom with the given step between centroids; written in `order`."""
        steps = steps or [40.0] * (len(classes) - 1)
        ys = np.concatenate([[50.0], 50.0 + np.cumsum(steps)])
        masks = [(vertebra_outline(120, y, 44, 28, vertices=40), c, (scores or [0.9] * len(classes))[i])
                 for i, (y, c) in enumerate(zip(ys, classes))]
        order = order if order is not None else list(range(len(masks)))
        return [f"mask {masks[i][1]} {masks[i][2]:.2f} {format_polygon(masks[i][0])}" for i in order]

    def labels_line(names: list[str | None]) -> str:
        return "expect_labels " + " ".join(n or "-" for n in names)

    v = "vertebra"
    order = [3, 0, 5, 1, 6, 2, 4]
    top_down = [None, "C2", "C3", "C4", "C5", "C6", "C7"]
    write("labelling", "cervical_c2", """
C2 plus five vertebrae below and one above, given in shuffled order: names zip down from C2;
the mask above C2 is excluded (above_reference).""",
          stack([v, "C2", v, v, v, v, v], order=order)
          + [labels_line([top_down[i] for i in order]), "expect_view cervical", "expect_reference C2", "expect_flags",
             f"expect_excluded {order.index(0)}:above_reference"])

    write("labelling", "lumbar_s1", """
S1 with five vertebrae above and one below: names zip up from S1 (L5 ... L1); the one below is
excluded (below_reference).""",
          stack([v, v, v, v, v, "S1", v]) + [labels_line(["L1", "L2", "L3", "L4", "L5", "S1", None]),
                                           "expect_view lumbar", "expect_reference S1", "expect_flags",
                                           "expect_excluded 6:below_reference"])

    whole = list(LEVELS[1:])  # C2 ... S1: 24 masks
    write("labelling", "whole_consistent", """
A whole-spine film C2 ... S1 (24 masks): both references, and the chains agree.""",
          stack(["C2"] + [v] * 22 + ["S1"]) + [labels_line(whole), "expect_view whole", "expect_reference C2+S1",
                                              "expect_flags", "expect_excluded"])

    names = [LEVELS[1 + k] if k <= 10 else LEVELS[len(LEVELS) - 1 - (21 - k)] for k in range(22)]
    write("labelling", "whole_conflict", """
C2 and S1 with only 20 masks between them (22 would fit): each mask is named from the nearer
reference, and the chains disagree (label_conflict).""",
          stack(["C2"] + [v] * 20 + ["S1"]) + [labels_line(names), "expect_view whole", "expect_reference C2+S1",
                                              "expect_flags label_conflict", "expect_excluded"])

    write("labelling", "whole_tie_goes_to_c2", """
C2, three masks, S1: the middle mask is as far from both references and is named from C2.""",
          stack(["C2", v, v, v, "S1"]) + [labels_line(["C2", "C3", "C4", "L5", "S1"]), "expect_view whole",
                                          "expect_flags label_conflict"])

    write("labelling", "no_reference", "Five vertebrae, no C2 or S1: nothing is named, flag no_reference.",
          stack([v] * 5) + [labels_line([None] * 5), "expect_view none", "expect_reference none",
                            "expect_flags no_reference", "expect_excluded"])

    write("labelling", "gap_one_missing", """
Cervical film with C5 missed by both networks: the step C4 -> C6 is twice the median (> 1.6x),
so one level is skipped and flag gap_inferred is set.""",
          stack(["C2", v, v, v, v], steps=[40, 40, 80, 40]) + [labels_line(["C2", "C3", "C4", "C6", "C7"]),
                                                               "expect_flags gap_inferred", "expect_view cervical"])

    write("labelling", "gap_two_missing", """
Lumbar film with L2 and L3 missed: the step L1 -> L4 is three times the median (>= 2.5x), so two
levels are skipped.""",
          stack([v, v, v, "S1"], steps=[120, 40, 40]) + [labels_line(["L1", "L4", "L5", "S1"]),
                                                         "expect_flags gap_inferred", "expect_reference S1"])

    write("labelling", "gap_below_factor", """
Steps of 1.5x the median stay below gap_factor 1.6: no level is skipped.""",
          stack(["C2", v, v, v, v], steps=[40, 40, 60, 40]) + [labels_line(["C2", "C3", "C4", "C5", "C6"]),
                                                               "expect_flags"])

    below = list(LEVELS[1:]) + [None, None]
    write("labelling", "past_sequence_end_below", """
C2 with 25 masks below: C3 ... S1 name 23 of them; the last two would run past S1 and stay
unnamed (past_sequence_end).""",
          stack(["C2"] + [v] * 25) + [labels_line(below), "expect_excluded 24:past_sequence_end 25:past_sequence_end"])

    above = [None] + list(LEVELS)
    write("labelling", "past_sequence_end_above", """
S1 with 25 masks above: L5 ... C1 name 24 of them; the topmost would run past C1 and stays
unnamed (past_sequence_end).""",
          stack([v] * 25 + ["S1"]) + [labels_line(above), "expect_excluded 0:past_sequence_end",
                                      "expect_reference S1"])

    write("labelling", "s1_above_c2", """
An S1-class mask above a C2-class mask cannot both be right: label_conflict, and the better
scoring reference (S1, 0.9 > 0.6) is used alone.""",
          stack([v, "S1", "C2", v], scores=[0.9, 0.9, 0.6, 0.9]) + [
              labels_line(["L5", "S1", None, None]), "expect_view lumbar", "expect_reference S1",
              "expect_flags label_conflict", "expect_excluded 2:below_reference 3:below_reference"])

    write("labelling", "best_scoring_reference", """
Two C2-class masks: the better-scoring one (0.95, the second) is the reference; the first
(0.6) is above it and excluded.""",
          stack(["C2", "C2", v, v], scores=[0.6, 0.95, 0.9, 0.9]) + [
              labels_line([None, "C2", "C3", "C4"]), "expect_excluded 0:above_reference"])


if __name__ == "__main__":
    ensemble_cases()
    bow_tie_case()
    labelling_cases()
