"""The demo's real detector: targets and decoding agree, training runs, the shipped weights
load and predict, and the whole retraining loop runs for a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detection_debugger.demo.scenes import CLASSES, DemoConfig, ensure_demo_files
from detection_debugger.detector.inference import decode, predict_images, write_predictions
from detection_debugger.detector.network import STRIDE, CenterNet
from detection_debugger.detector.targets import centernet_loss, make_targets
from detection_debugger.detector.training import (
    TrainConfig,
    load_detector,
    save_detector,
    train_detector,
)
from detection_debugger.formats import read_kitti_folder

WEIGHTS = Path(__file__).resolve().parent.parent / "demo" / "weights"


def _quiet(*_):
    pass


def test_decoding_perfect_outputs_gives_back_the_boxes():
    boxes = np.array([[3.2, 4.1, 20.7, 9.9], [40.0, 30.5, 44.5, 41.0]], np.float32)
    labels = np.array([2, 0])
    t = make_targets(boxes, labels, 6, 48, 80)
    assert t["mask"].sum() == 2 and t["heatmap"].max() == 1.0
    logits = torch.from_numpy(np.log(t["heatmap"] + 1e-6) - np.log1p(-t["heatmap"] + 1e-6))
    outputs = (logits[None], torch.from_numpy(t["size"])[None], torch.from_numpy(t["offset"])[None])
    rows = decode(outputs, min_score=0.5)[0]
    assert sorted(rows[:, 5].tolist()) == [0.0, 2.0]
    found = rows[np.argsort(rows[:, 5])[::-1], :4] / STRIDE
    np.testing.assert_allclose(found, boxes, atol=1e-3)


def test_loss_is_small_on_perfect_outputs_and_large_on_a_blank_network():
    boxes = np.array([[3.0, 4.0, 20.0, 10.0]], np.float32)
    t = {
        k: torch.from_numpy(v)[None]
        for k, v in make_targets(boxes, np.array([1]), 6, 48, 80).items()
    }
    model = CenterNet(6)
    blank, _ = centernet_loss(model(torch.zeros(1, 3, 192, 320)), t)
    logits = torch.logit(t["heatmap"].clamp(1e-4, 1 - 1e-4))
    perfect, parts = centernet_loss((logits, t["size"], t["offset"]), t)
    assert perfect.item() < 0.05 < blank.item()
    assert parts["size"] == 0 and parts["offset"] == 0


def test_training_a_few_steps_saves_weights_that_predict_tao_files(tmp_path):
    files = ensure_demo_files(tmp_path, DemoConfig(8, 5), progress=_quiet)
    labels, _ = read_kitti_folder(files["labels"], False)
    paths = [str(Path(files["images"]) / f"{im.stem}.jpg") for im in labels]
    config = TrainConfig(iterations=3, batch_size=4)
    model, summary = train_detector(paths, labels, [(640, 384)] * 8, CLASSES, config, _quiet)
    assert summary["images"] == 8 and np.isfinite(list(summary["final_loss"].values())).all()
    save_detector(tmp_path / "w.pt", model, CLASSES, config.input_size, {"seed": 0})
    detector = load_detector(tmp_path / "w.pt")
    assert detector.classes == list(CLASSES) and detector.meta == {"seed": 0}
    done = write_predictions(detector, paths, [(640, 384)] * 8, tmp_path / "pred")
    assert done["images"] == 8
    predicted, _ = read_kitti_folder(tmp_path / "pred", True)
    lines = (tmp_path / "pred" / f"{labels[0].stem}.txt").read_text().splitlines()
    assert all(len(line.split()) == 16 for line in lines)
    for image in predicted:
        for o in image.objects:
            assert 0 <= o.box[0] < o.box[2] <= 640 and 0 <= o.box[1] < o.box[3] <= 384
            assert 0.05 <= o.score <= 1


def test_the_shipped_weights_load_and_say_how_they_were_made(tmp_path):
    files = ensure_demo_files(tmp_path, DemoConfig(4, 0), progress=_quiet)
    for model in ("baseline", "retrained"):
        detector = load_detector(WEIGHTS / f"{model}.pt")
        assert detector.classes == list(CLASSES)
        assert (WEIGHTS / f"{model}.pt").stat().st_size < 2_000_000
        meta = json.loads((WEIGHTS / f"{model}.json").read_text())
        assert meta["command"].startswith("detection-debugger demo weights")
        assert meta["labels"] == ("ground_truth" if model == "baseline" else "ground_truth_fixed")
        paths = sorted(str(p) for p in Path(files["images"]).glob("*.jpg"))
        assert len(predict_images(detector, paths, [(640, 384)] * 4)) == 4


@pytest.mark.fiftyone
def test_the_retraining_loop_runs_for_a_few_steps(tmp_path):
    import fiftyone as fo

    from detection_debugger.demo.training import make_weights

    splits = (DemoConfig(30, 11, faded_share=0.1), DemoConfig(10, 12))
    try:
        meta = make_weights(
            tmp_path,
            tmp_path / "out",
            TrainConfig(iterations=2, batch_size=4),
            extra_faded=4,
            splits=splits,
            weights_dir=tmp_path / "weights",
        )
    finally:
        if fo.dataset_exists("crosswalks-train-30-11"):
            fo.load_dataset("crosswalks-train-30-11").delete()
    assert meta["extra_faded"]["count"] == 4 and meta["images"] == 34
    assert set(meta["review"]) == {"accepted", "rejected", "field", "per_type"}
    for model in ("baseline", "retrained"):
        assert load_detector(tmp_path / "weights" / f"{model}.pt").classes == list(CLASSES)
        assert len(list((tmp_path / "out" / model / "predictions").glob("*.txt"))) == 10


@pytest.mark.fiftyone
def test_the_demo_dataset_holds_the_networks_predictions(tmp_path):
    from detection_debugger.demo.runner import build_demo_dataset

    dataset, files = build_demo_dataset(DemoConfig(12, 0), tmp_path, name="dd-network-demo")
    try:
        assert dataset.info["demo_key"].startswith(DemoConfig(12, 0).key + "-network-")
        assert "trained networks" in dataset.info["demo_note"]
        for model in ("baseline", "retrained"):
            folders = list((Path(files["folder"]) / "predictions").glob(f"network-*/{model}"))
            assert len(folders) == 1 and len(list(folders[0].glob("*.txt"))) == 12
            assert dataset.count(f"{model}.detections") > 0
        again, _ = build_demo_dataset(DemoConfig(12, 0), tmp_path, name="dd-network-demo")
        assert again.info["demo_key"] == dataset.info["demo_key"]  # reused, not rebuilt
        simulated, _ = build_demo_dataset(
            DemoConfig(12, 0), tmp_path, name="dd-network-demo", simulated=True
        )
        assert simulated.info["demo_key"].endswith("-simulated")
    finally:
        import fiftyone as fo

        if fo.dataset_exists("dd-network-demo"):
            fo.load_dataset("dd-network-demo").delete()
