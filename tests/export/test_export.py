"""ONNX export of both networks matches PyTorch, zero detections included; bundles verify."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("onnx")

pytestmark = pytest.mark.train

SIZE = 128


@pytest.fixture(scope="module")
def phantom_inputs(check_phantoms):
    import _common as C
    from vertxnet.preprocess import PreprocessConfig, prepare

    pre = PreprocessConfig(input_size=SIZE)
    return [prepare(r.load_image(), pre)[0] for r in C.load_records(check_phantoms)]


def test_unet_onnx_matches_pytorch(tmp_path, phantom_inputs):
    import torch

    from export_bundle import compare_unet, export_unet_onnx, ort_session
    from train_unet import UNet

    torch.manual_seed(0)
    model = UNet(base_channels=4).eval()
    path = export_unet_onnx(model, SIZE, tmp_path / "unet.onnx")
    session = ort_session(path)
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    (logits,) = session.run(None, {"image": phantom_inputs[0]})
    assert logits.shape == (1, 1, SIZE, SIZE) and logits.dtype == np.float32
    assert compare_unet(model, session, phantom_inputs) < 1e-3


def _tiny_maskrcnn():
    import torch

    from train_maskrcnn import build_maskrcnn

    torch.manual_seed(0)
    return build_maskrcnn("edge", SIZE, fpn_channels=16).eval()


def test_maskrcnn_onnx_matches_pytorch(tmp_path, phantom_inputs):
    from export_bundle import MASKRCNN_OUTPUTS, compare_maskrcnn, export_maskrcnn_onnx, ort_session

    model = _tiny_maskrcnn()
    session = ort_session(export_maskrcnn_onnx(model, SIZE, tmp_path / "maskrcnn.onnx"))
    assert [o.name for o in session.get_outputs()] == MASKRCNN_OUTPUTS
    boxes, scores, labels, probs, class_probs = session.run(None, {"image": phantom_inputs[0]})
    assert len(boxes) > 0  # a random-init head scores every class near 1/4, above the 0.05 cut
    # The full softmax over background, vertebra, C2, S1 at each detection, for the labelling decoder.
    assert class_probs.shape == (len(boxes), 4)
    assert np.allclose(class_probs.sum(axis=1), 1.0, atol=1e-5) and np.all(class_probs >= 0)
    assert boxes.shape[1] == 4 and probs.shape[1:] == (28, 28) and labels.dtype == np.int64
    assert set(labels.tolist()) <= {1, 2, 3}
    assert np.all((boxes >= 0) & (boxes <= SIZE))
    assert np.all((probs >= 0) & (probs <= 1))
    diff = compare_maskrcnn(model, session, phantom_inputs, SIZE)
    assert diff["boxes"] < 1e-2 and diff["scores"] < 1e-3 and diff["mask_probs"] < 1e-3 and diff["class_probs"] < 1e-3


def test_maskrcnn_onnx_handles_zero_detections(tmp_path, phantom_inputs):
    import torch

    from export_bundle import compare_maskrcnn, export_maskrcnn_onnx, ort_session

    model = _tiny_maskrcnn()
    with torch.no_grad():  # background wins everywhere: no detection passes the score cut
        model.roi_heads.box_predictor.cls_score.bias[0] = 40.0
    session = ort_session(export_maskrcnn_onnx(model, SIZE, tmp_path / "maskrcnn.onnx"))
    boxes, scores, labels, probs, class_probs = session.run(None, {"image": phantom_inputs[0]})
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,) and probs.shape == (0, 28, 28)
    assert class_probs.shape == (0, 4)
    assert compare_maskrcnn(model, session, phantom_inputs, SIZE)["detections"] == [0, 0]


@pytest.fixture(scope="module")
def tiny_checkpoints(phantoms, tmp_path_factory):
    import _common as C
    from train_maskrcnn import MaskRCNNTrainConfig, train_maskrcnn
    from train_unet import UNetTrainConfig, train_unet

    root = tmp_path_factory.mktemp("runs")
    off = C.AugmentConfig(enabled=False)
    unet = train_unet(UNetTrainConfig(train=[phantoms], run_dir=root / "unet", base_channels=4, input_size=SIZE, epochs=1, batch_size=4, val_fraction=0.25, augment=off))
    mrcnn = train_maskrcnn(MaskRCNNTrainConfig(train=[phantoms], run_dir=root / "mrcnn", fpn_channels=16, input_size=SIZE, epochs=1, batch_size=4, val_fraction=0.25, augment=off))
    return unet, mrcnn


def test_export_bundle_writes_a_verified_bundle(tiny_checkpoints, phantoms, check_phantoms, tmp_path):
    from export_bundle import ExportConfig, export_bundle
    from evaluate_bundle import EvaluateConfig, evaluate_bundle
    from vertxnet.bundle import load_bundle

    unet, mrcnn = tiny_checkpoints
    out = export_bundle(ExportConfig(
        unet_checkpoint=unet, maskrcnn_checkpoint=mrcnn, out_dir=tmp_path / "bundle",
        check_data=check_phantoms, calibration_data=phantoms, calibration_images=4,
        name="tiny", data_description="synthetic vertx-phantom images only (test)", fp16=True, int8=True,
    ))
    bundle = load_bundle(out)
    assert bundle.preprocess.input_size == SIZE
    assert sorted(bundle.variants("unet")) == ["fp16", "int8"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "maskrcnn.onnx", "unet.fp16.onnx", "unet.int8.onnx", "unet.onnx"]
    m = bundle.manifest
    assert m["training"]["data"].startswith("synthetic vertx-phantom")
    assert m["training"]["unet"]["epochs"] == 1 and m["training"]["maskrcnn"]["seed"] == 0
    assert m["metrics"]["export_check"]["unet_logits_max_abs_diff"] < 1e-3
    assert "dice_delta_vs_fp32" in m["metrics"]["variants"]["unet.int8"]
    assert not list(tmp_path.glob("bundle.tmp-*"))

    report = evaluate_bundle(EvaluateConfig(bundle=out, data=check_phantoms, latency_runs=2))
    assert report["images"] == 2
    for key in ("unet_foreground_dice", "maskrcnn_detection_rate_iou50"):
        assert 0.0 <= report[key] <= 1.0
    assert report["latency_onnxruntime_cpu"]["unet"]["runs"] == 2
    int8 = evaluate_bundle(EvaluateConfig(bundle=out, data=check_phantoms, unet_variant="int8"))
    assert int8["unet_variant"] == "int8"


def test_export_bundle_refuses_checkpoints_with_different_preprocessing(tiny_checkpoints, check_phantoms, tmp_path):
    import torch

    from export_bundle import ExportConfig, export_bundle

    unet, mrcnn = tiny_checkpoints
    state = torch.load(unet, weights_only=False)
    state["preprocess"] = {**state["preprocess"], "clahe": True}
    other = tmp_path / "unet_clahe.pt"
    torch.save(state, other)
    with pytest.raises(ValueError, match="different preprocessing"):
        export_bundle(ExportConfig(unet_checkpoint=other, maskrcnn_checkpoint=mrcnn, out_dir=tmp_path / "b", check_data=check_phantoms, int8=False, fp16=False))
    assert not (tmp_path / "b").exists()


def test_evaluate_bundle_cli_reports_json(tiny_checkpoints, check_phantoms, tmp_path, capsys):
    import evaluate_bundle
    from export_bundle import ExportConfig, export_bundle

    unet, mrcnn = tiny_checkpoints
    out = export_bundle(ExportConfig(unet_checkpoint=unet, maskrcnn_checkpoint=mrcnn, out_dir=tmp_path / "b", check_data=check_phantoms, int8=False, fp16=False))
    assert evaluate_bundle.main(["--bundle", str(out), "--data", str(check_phantoms), "-o", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["images"] == 2
    assert evaluate_bundle.main(["--bundle", str(tmp_path / "missing"), "--data", str(check_phantoms)]) == 1
    assert "error:" in capsys.readouterr().err
    assert evaluate_bundle.main(["--bundle"]) == 2


def test_manifest_check_figures_are_those_of_the_pipeline_tracing(tiny_checkpoints, check_phantoms, tmp_path, monkeypatch):
    """export_bundle writes into the manifest what export/validation.py measures on the traced
    outlines (tests/export/test_validation.py shows those are the pipeline's own)."""
    import export_bundle
    import validation as V

    calls, traced = [], V.trace_detections

    def spy(*args, **kwargs):
        calls.append(kwargs["outline"])
        return traced(*args, **kwargs)

    monkeypatch.setattr(V, "trace_detections", spy)
    sentinel = {"detection_rate_iou50": 0.25, "reference_accuracy": 0.5, "images": 2, "gt_instances": 4, "reference_images": 2}
    real = V.detection_figures
    monkeypatch.setattr(V, "detection_figures", lambda truth, predicted: (real(truth, predicted), sentinel)[1])
    unet, mrcnn = tiny_checkpoints
    out = export_bundle.export_bundle(export_bundle.ExportConfig(
        unet_checkpoint=unet, maskrcnn_checkpoint=mrcnn, out_dir=tmp_path / "b", check_data=check_phantoms, int8=False, fp16=False))
    manifest = json.loads((out / "manifest.json").read_text())
    assert calls == ["edges", "edges"]  # one traced check image each, with the manifest's outline
    assert manifest["postprocess"]["outline"] == "edges"  # fresh checkpoints: pixel-centre training masks
    assert manifest["training"]["unet"]["target_masks"] == "pixel-centres"
    assert {k: manifest["metrics"]["maskrcnn"][f"check_{k}"] for k in sentinel} == sentinel
