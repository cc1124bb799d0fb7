"""Writes the decoder reference cases under tests/data/decoding.

Films are built from standard anatomy (lateral body height x depth per level, disc heights; the
table below) at 1.6 px/mm, so sizes grow caudally as on a radiograph. Each case states what the
decoder must do and why; the expectation is checked here against the numpy oracle
(tests/oracle/decoder.py) and against SPEC section 4's zipper (tests/oracle/reference.py) before
the file is written, and tests/core/test_decoder_cases.py runs it through the C++ core and the
oracle. Run from the repository root:

    PYTHONPATH=python python tests/core/make_decoder_cases.py
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from core_cases import format_polygon  # noqa: E402
from core_scenes import vertebra_outline  # noqa: E402

from vertxnet.levels import LEVELS  # noqa: E402

ROOT = HERE.parents[1]
OUT = ROOT / "tests" / "data" / "decoding"
MM = 1.6  # px per mm


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


oracle = _load("vertx_oracle_decoder", ROOT / "tests" / "oracle" / "decoder.py")
zipper = _load("vertx_oracle_reference", ROOT / "tests" / "oracle" / "reference.py")

# Lateral body height and antero-posterior depth (mm), and the disc below (mm): standard adult
# anatomy tables (cervical bodies 13-16 mm high, lumbar 25-28 mm; discs 4-12 mm).
ANATOMY: dict[str, tuple[float, float, float]] = {
    "C2": (22.0, 15.5, 4.5),  # with the dens
    **{f"C{i}": (13.5, 15.5 + 0.4 * (i - 3), 5.0) for i in range(3, 7)},
    "C7": (14.5, 17.0, 5.0),
    **{f"T{i}": (16.0 + (i - 1) * 8.0 / 11, 17.5 + (i - 1) * 13.5 / 11, 4.0 + (i - 1) * 3.5 / 11) for i in range(1, 13)},
    "L1": (25.0, 33.0, 9.0), "L2": (26.0, 34.0, 10.0), "L3": (27.0, 35.0, 11.0), "L4": (27.0, 36.0, 12.0),
    "L5": (26.0, 36.0, 12.0),
    "S1": (27.0, 45.0, 0.0),  # the sacral promontory: wider than tall
}


def film(levels: list[str], *, missing: tuple[str, ...] = (), x: float = 200.0, top: float = 60.0,
         seed: int = 0, uniform: str | None = None) -> list[tuple[str, np.ndarray]]:
    """Outlines (level, polygon) of consecutive levels top to bottom, without the missing ones;
    every body with the dimensions of level `uniform` when given."""
    rng = np.random.default_rng(seed)
    out, y = [], top
    for i, level in enumerate(levels):
        h, d, disc = ANATOMY[uniform or level]
        if i:
            y += h * MM / 2
        if level not in missing:
            poly = vertebra_outline(x + rng.normal(0, 1.5), y, d * MM * rng.uniform(0.97, 1.03),
                                    h * MM * rng.uniform(0.97, 1.03), angle=rng.normal(0, 0.03), concavity=0.05,
                                    wedge=0.04, vertices=48)
            out.append((level, poly))
        y += h * MM / 2 + disc * MM
    return out


def levels_between(first: str, last: str) -> list[str]:
    return list(LEVELS[LEVELS.index(first): LEVELS.index(last) + 1])


def mask_lines(bodies, classes: dict[str, tuple[str, float]] | None = None,
               probs: dict[str, list[float]] | None = None, excluded: tuple[int, ...] = ()) -> list[str]:
    lines = []
    for i, (level, poly) in enumerate(bodies):
        cls, score = (classes or {}).get(level, ("vertebra", 0.9))
        lines.append(f"mask {cls} {score:.2f} {format_polygon(poly)}")
        if probs and level in probs:
            lines.append("probs " + " ".join(f"{p:.3f}" for p in probs[level]))
        if i in excluded:
            lines.append("excluded")
    return lines


def run(lines: list[str]):
    """The oracle's and the zipper's results on the case lines (read like the tests read them)."""
    from decoder_cases import read_decoder_case

    tmp = OUT / ".tmp-case.txt"
    tmp.write_text("\n".join(lines) + "\n")
    try:
        case = read_decoder_case(tmp)
    finally:
        tmp.unlink()
    params = oracle.Params(**case.model_params()) if case.model_params() else None
    got = oracle.decode_labels(case.masks, params=params, **case.decoder_kwargs())
    kept = [m for m, e in zip(case.masks, case.excluded) if not e]
    zipped = zipper.zip_labels(kept)
    zip_labels, it = [], iter(zipped.labels)
    for e in case.excluded:
        zip_labels.append(None if e else next(it))
    return got, zip_labels


def fmt(labels) -> str:
    return " ".join("-" if v is None else v for v in labels)


def write(name: str, comment: str, lines: list[str], *, labels, view, reference, flags, excluded=None,
          method, min_confidence=None, zip_labels=None) -> None:
    got, zipped = run(lines)
    expected = dict(labels=labels, view=view, reference=reference, flags=flags, method=method)
    actual = dict(labels=got.labels, view=got.view, reference=got.reference, flags=got.flags, method=got.method)
    if excluded is not None:
        expected["excluded"], actual["excluded"] = excluded, got.excluded
    if zip_labels is not None:
        expected["zip_labels"], actual["zip_labels"] = zip_labels, zipped
    if expected != actual or (min_confidence is not None and min(
            (c for c, lab in zip(got.confidence, got.labels) if lab), default=1.0) < min_confidence):
        raise AssertionError(f"{name}: the decoder does not do what the case says:\n  expected {expected}\n"
                             f"  got      {actual}\n  confidence {np.round(got.confidence, 3).tolist()}")
    body = lines + [f"expect_labels {fmt(labels)}", f"expect_view {view or 'none'}", f"expect_reference {reference}",
                    "expect_flags " + " ".join(flags), f"expect_method {method}"]
    if excluded is not None:
        body.append("expect_excluded " + " ".join(f"{k}:{v}" for k, v in sorted(excluded.items())))
    if min_confidence is not None:
        body.append(f"expect_min_confidence {min_confidence}")
    if zip_labels is not None:
        body.append(f"expect_zip_labels {fmt(zip_labels)}")
    path = OUT / f"{name}.txt"
    text = "".join(f"# {c}\n" for c in comment.strip().splitlines()) + "\n".join(body) + "\n"
    path.write_text(text)
    print("wrote", path.relative_to(ROOT), "| confidence", np.round(got.confidence, 2).tolist())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lumbar = levels_between("T12", "S1")

    # 1. A wrong low-score S1 against a strong chain.
    bodies = film(lumbar, seed=1)
    wrong_s1 = mask_lines(bodies, classes={"L5": ("S1", 0.40), "S1": ("vertebra", 0.60)},
                          probs={"L5": [0.58, 0.02, 0.40], "S1": [0.60, 0.05, 0.35]})
    write("wrong_low_score_s1", """
Lumbar film T12-S1 (the view model says lumbar, 0.8). The Mask R-CNN calls L5 'S1' at 0.40
(below ref_score) and the sacrum 'vertebra' (its softmax still gives S1 0.35). SPEC 4's zipper
takes the S1-class mask as the reference and shifts every name by one; the decoder has no
confident reference and reads the chain: the false S1 has a vertebra-like mask below it, the
sacrum is the widest body, the film is lumbar. It names the sacrum S1.""",
          wrong_s1 + ["view_prior 0.05 0.05 0.05 0.05 0.80"],
          labels=lumbar, view="lumbar", reference="S1", flags=[], method="chain", min_confidence=0.6,
          zip_labels=["L1", "L2", "L3", "L4", "L5", "S1", None])
    write("wrong_low_score_s1_no_view", """
The film of wrong_low_score_s1 without a view prior: the two S1 readings and the readings without
an S1 are too close to call, so nothing is named (never a silent guess) and the flag says why.""",
          wrong_s1, labels=[None] * 7, view=None, reference="none", flags=["no_reference", "relative_order_only", "labels_uncertain"], method="chain",
          zip_labels=["L1", "L2", "L3", "L4", "L5", "S1", None])

    # 2. Two candidate references.
    bodies = film(levels_between("T11", "S1"), seed=2)
    write("two_candidate_references", """
Lumbar film T11-S1 with two confident S1-class masks: bowel gas over L3 scored 0.75 and the
sacrum 0.65. The zipper takes the better score and names L3 'S1' (three vertebrae below it
excluded); the decoder chooses the candidate the chain supports (the one with no vertebra-like
masks below it and the sacrum's size and shape), names from it as SPEC 4 does, and flags
label_conflict because it overrules the network's best-scoring reference.""",
          mask_lines(bodies, classes={"L3": ("S1", 0.75), "S1": ("S1", 0.65)}),
          labels=levels_between("T11", "S1"), view="lumbar", reference="S1", flags=["label_conflict"],
          excluded={}, method="reference", min_confidence=0.5,
          zip_labels=["L2", "L3", "L4", "L5", "S1", None, None, None])

    # 3. The view prior deciding.
    bodies = film(["C3"] * 7, seed=3)  # seven look-alike bodies: sizes say nothing
    ambiguous = mask_lines(bodies, probs={"C3": [0.90, 0.05, 0.05]})
    ambiguous[0:2] = [ambiguous[0].replace("mask vertebra 0.90", "mask C2 0.48"), "probs 0.47 0.48 0.05"]
    ambiguous[-2:] = [ambiguous[-2].replace("mask vertebra 0.90", "mask S1 0.48"), "probs 0.47 0.05 0.48"]
    cervical, lumbar7 = levels_between("C2", "T1"), levels_between("T12", "S1")
    write("view_prior_cervical", """
Seven look-alike bodies; the top one may be C2 (0.48) and the bottom one S1 (0.48), neither a
confident reference (ref_score 0.5). The view model says cervical (0.8): the decoder reads the film
from C2 down (confidences just above one half: honest, not certain).""",
          ambiguous + ["view_prior 0.80 0.05 0.05 0.05 0.05"],
          labels=cervical, view="cervical", reference="C2", flags=[], method="chain", min_confidence=0.5)
    write("view_prior_lumbar", """
The film of view_prior_cervical with the view model saying lumbar (0.8): the decoder reads the
same masks from S1 up.""",
          ambiguous + ["view_prior 0.05 0.05 0.05 0.05 0.80"],
          labels=lumbar7, view="lumbar", reference="S1", flags=[], method="chain", min_confidence=0.5)
    write("view_prior_none", """
The film of view_prior_cervical without a view prior: the cervical and the lumbar reading are
equally good, so nothing is named.""",
          ambiguous, labels=[None] * 7, view=None, reference="none", flags=["no_reference", "relative_order_only", "labels_uncertain"], method="chain")

    # 4. Gaps on either side of the reference.
    whole = levels_between("C2", "S1")
    bodies = film(whole, missing=("C5", "L2"), seed=4, uniform="T6")
    named = [lv for lv in whole if lv not in ("C5", "L2")]
    write("gaps_both_sides_whole", """
Whole-spine film C2-S1 of look-alike bodies with C5 and L2 missed by both networks: two steps of
twice the median, one on each side of the spine's middle. With the skipped levels the chain from
C2 reaches S1 exactly, so the two references agree (no label_conflict, unlike whole_conflict of
the labelling cases); the names equal SPEC 4's and carry gap_inferred. (On a real whole-spine film
the steps grow caudally and SPEC 4's single median step misjudges gaps; sizes are uniform here.)""",
          mask_lines(bodies, classes={"C2": ("C2", 0.9), "S1": ("S1", 0.9)}),
          labels=named, view="whole", reference="C2+S1", flags=["gap_inferred"], excluded={}, method="reference",
          min_confidence=0.5, zip_labels=named)
    span = levels_between("C4", "T6")
    bodies = film(span, missing=("C6", "T3"), seed=5, uniform="C7")
    named = [lv for lv in span if lv not in ("C6", "T3")]
    probs = {lv: [0.95, 0.0, 0.0, 0.05] for lv in span}
    probs["T1"] = [0.15, 0.0, 0.0, 0.85]
    write("landmark_t1_gaps_both_sides", """
Cervicothoracic film C4-T6 from a bundle whose Mask R-CNN also has a T1 class (the first
rib-bearing body): T1 is found (0.85) in the middle of a chain of look-alike bodies, C6 above
it and T3 below it are missed (steps of twice the median). Neither C2 nor S1 is on the film; the decoder names every body from the landmark through
the gaps (gap_inferred) - the zipper could name none.""",
          ["class_names vertebra C2 S1 T1", "view_prior 0.10 0.60 0.20 0.05 0.05"]
          + mask_lines(bodies, probs=probs),
          labels=named, view="cervicothoracic", reference="none", flags=["no_reference", "gap_inferred"],
          method="chain", min_confidence=0.5, zip_labels=[None] * len(named))

    # 5. A thoracic chain without landmarks.
    thoracic = levels_between("T1", "T12")
    bodies = film(thoracic, seed=6)
    write("thoracic_no_landmarks", """
Lateral chest film T1-T12 (the view model says thoracic, 0.9) with no C2, S1 or other landmark
class in it: the chain's order is known but not its levels. Nothing is named, the view is
thoracic, and the film carries no_reference, relative_order_only and labels_uncertain.""",
          mask_lines(bodies) + ["view_prior 0.025 0.025 0.90 0.025 0.025"],
          labels=[None] * 12, view="thoracic", reference="none", flags=["no_reference", "relative_order_only", "labels_uncertain"],
          excluded={}, method="chain")
    span = levels_between("T8", "S1")
    bodies = film(span, seed=7)
    write("thoracic_sacrum_below", """
Thoracolumbar film T8-S1 with the sacrum found (S1 0.9): the thoracic bodies are named from it
as SPEC 4 names them (view lumbar by SPEC 4's rule).""",
          mask_lines(bodies, classes={"S1": ("S1", 0.9)}),
          labels=span, view="lumbar", reference="S1", flags=[], excluded={}, method="reference",
          min_confidence=0.5, zip_labels=span)
    bodies = film(thoracic, seed=8)
    write("c2_on_thoracic_film", """
The chest film of thoracic_no_landmarks, but the Mask R-CNN 'finds' C2 (0.7) on T5. The zipper
names T5 'C2' and excludes the four bodies above it; the decoder's chain does not agree (four
vertebra-like bodies cannot lie above C2 and the film is thoracic), overrules the reference
(label_conflict) and names nothing it cannot tell.""",
          mask_lines(bodies, classes={"T5": ("C2", 0.70)}) + ["view_prior 0.025 0.025 0.90 0.025 0.025"],
          labels=[None] * 12, view="thoracic", reference="none",
          flags=["label_conflict", "no_reference", "relative_order_only", "labels_uncertain"], excluded={}, method="chain",
          zip_labels=[None] * 4 + levels_between("C2", "T2"))

    # 6. A mask the ensemble excluded is never named.
    span = levels_between("C2", "C7")
    bodies = film(span, seed=9)
    duplicate = ("C4", bodies[2][1] + np.array([1.0, 1.5]))
    bodies = bodies[:3] + [duplicate] + bodies[3:]
    write("excluded_mask_never_named", """
Cervical film C2-C7 with a duplicate outline of C4 that the ensemble excluded (the fourth mask):
it is left out of the chain, never named and not listed among the exclusions (they explain the
decoder's own decisions); the other names are SPEC 4's.""",
          mask_lines(bodies, classes={"C2": ("C2", 0.9)}, excluded=(3,)),
          labels=["C2", "C3", "C4", None, "C5", "C6", "C7"], view="cervical", reference="C2", flags=[],
          excluded={}, method="reference", min_confidence=0.5,
          zip_labels=["C2", "C3", "C4", None, "C5", "C6", "C7"])


if __name__ == "__main__":
    main()
