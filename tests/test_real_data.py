"""Real data: the dashcam set (real photos, YOLO ground truth, a YOLOv5 model's Ultralytics
``predictions.json``; ``../shared/real-data/README.md``) imported in one command, and the
numbers computed inside FiftyOne equal pycocotools' on COCO files this test converts itself
(exact arithmetic: each pixel value is the YOLO fraction times the image size, computed with
fractions, not floats)."""

from __future__ import annotations

import json
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import run_pycocotools
from PIL import Image

DASHCAM = Path(__file__).resolve().parents[2] / "shared" / "real-data" / "dashcam"
IMAGES = DASHCAM / "data" / "valid" / "images"
LABELS = DASHCAM / "data" / "valid" / "labels"
NAMES = DASHCAM / "data" / "data.yaml"
PREDICTIONS = DASHCAM / "runs" / "detect" / "val3" / "predictions.json"

pytestmark = [
    pytest.mark.fiftyone,
    pytest.mark.skipif(not PREDICTIONS.is_file(), reason="../shared/real-data is not here"),
]


def _exact_pixels(cx: str, cy: str, w: str, h: str, width: int, height: int) -> list[float]:
    """``[x, y, w, h]`` in pixels of a YOLO line, computed exactly and rounded once."""
    cx, cy, w, h = (Fraction(v) for v in (cx, cy, w, h))
    return [
        float((cx - w / 2) * width),
        float((cy - h / 2) * height),
        float(w * width),
        float(h * height),
    ]


def convert_to_coco() -> tuple[dict, list[dict]]:
    """The dashcam set as COCO ground truth and COCO results (integer image ids)."""
    names = yaml.safe_load(NAMES.read_text())["names"]
    images, annotations, ids = [], [], {}
    for number, path in enumerate(sorted(IMAGES.glob("*.jpg")), start=1):
        with Image.open(path) as image:
            width, height = image.size
        ids[path.stem] = number
        images.append({"id": number, "file_name": path.name, "width": width, "height": height})
        label_file = LABELS / f"{path.stem}.txt"
        lines = label_file.read_text().splitlines() if label_file.exists() else []
        for line in filter(str.strip, lines):
            k, *values = line.split()
            box = _exact_pixels(*values, width, height)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": int(k) + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(names)]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    results = [
        {**d, "image_id": ids[str(d["image_id"])]} for d in json.loads(PREDICTIONS.read_text())
    ]
    return gt, results


def test_dashcam_imports_in_one_command_and_evaluates_like_pycocotools(tmp_path):
    import fiftyone as fo

    from detection_debugger.cli.main import main
    from detection_debugger.datasets import slices
    from detection_debugger.datasets.runs import evaluate_detections

    name = f"dashcam-{uuid.uuid4().hex[:8]}"
    command = [
        "import",
        "--dataset",
        name,
        "--images",
        str(IMAGES),
        "--gt",
        str(LABELS),
        "--gt-format",
        "yolo",
        "--class-names",
        str(NAMES),
        "--pred",
        str(PREDICTIONS),
        "--pred-format",
        "ultralytics",
    ]
    assert main(command) == 0
    dataset = fo.load_dataset(name)
    try:
        assert len(dataset) == 251
        assert dataset.count("ground_truth.detections") == 695
        assert dataset.count("predictions.detections") == 4177
        gt, results = convert_to_coco()
        classes = [c["name"] for c in gt["categories"]]
        run = evaluate_detections(
            dataset, "predictions", "ground_truth", eval_key="eval", classes=classes
        )
        evaluator = run_pycocotools(gt, results)
        ours = np.array([-1.0 if v is None else v for v in run.result.stats.values()])
        np.testing.assert_allclose(ours, evaluator.stats, rtol=0, atol=1e-9)
        assert 0.7 < run.result.stats["AP50"] < 0.85  # the README's "AP50 about 0.77"
        # a slice: the first 100 images by file name
        paths = sorted(dataset.values("filepath"))[:100]
        slices.save_slice(dataset, "first 100", dataset.select_by("filepath", paths))
        sliced = slices.evaluate_slice(dataset, "eval", "first 100").stats
        ours = np.array([-1.0 if v is None else v for v in sliced.values()])
        expected = run_pycocotools(gt, results, list(range(1, 101))).stats
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
    finally:
        dataset.delete()
