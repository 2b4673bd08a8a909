"""What several test modules share (test modules never import each other): the trusted
references the tests compare the engine with (pycocotools, a plain-Python implementation of
the 4-way matching rules), the pycocotools parity assertion, random set configurations and
the installed command."""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detection_debugger.demo.synthetic import SyntheticConfig
from detection_debugger.evaluation import DetectionSet, MatchTable, accumulate


def run_pycocotools(gt: dict, results: list, image_ids=None) -> COCOeval:
    """COCOeval(bbox) on deep copies of the inputs, evaluated, accumulated and summarized."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        else:  # loadRes refuses an empty list; an empty results set is still valid input
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": copy.deepcopy(gt["images"]),
                "categories": copy.deepcopy(gt["categories"]),
                "annotations": [],
            }
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def stats_array(stats: dict) -> np.ndarray:
    return np.array([-1.0 if v is None else v for v in stats.values()])


def iou_xywh(a, b, crowd=False) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = min(ax2, bx2) - max(a[0], b[0])
    h = min(ay2, by2) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = a[2] * a[3] if crowd else a[2] * a[3] + b[2] * b[3] - inter
    return inter / union


def reference_outcomes(gt: dict, results: list, iou_thr: float = 0.5, score_thr: float = 0.0):
    """The 4-way rules, written as the README states them, one object at a time.

    Returns ``(gt_outcome, pred_outcome)`` lists of strings in input order.
    """
    anns = gt["annotations"]
    gt_out = ["ignored" if a.get("iscrowd", 0) else "fn" for a in anns]
    pred_out = ["below_threshold" if d["score"] < score_thr else "fp" for d in results]
    gt_taken = [False] * len(anns)
    images = sorted({a["image_id"] for a in anns} | {d["image_id"] for d in results})

    def by_score(indices):
        return sorted(indices, key=lambda i: -results[i]["score"])  # stable

    for image in images:
        g_idx = [j for j, a in enumerate(anns) if a["image_id"] == image]
        p_idx = [
            i for i, d in enumerate(results) if d["image_id"] == image and d["score"] >= score_thr
        ]
        # 1. class-aware, pycocotools style (non-crowd preferred, ties to the later object).
        for cat in sorted({results[i]["category_id"] for i in p_idx}):
            cands = [j for j in g_idx if anns[j]["category_id"] == cat]
            cands = sorted(cands, key=lambda j: bool(anns[j].get("iscrowd", 0)))  # stable
            for i in by_score([i for i in p_idx if results[i]["category_id"] == cat]):
                best, best_iou = -1, min(iou_thr, 1 - 1e-10)
                for j in cands:
                    crowd = bool(anns[j].get("iscrowd", 0))
                    if gt_taken[j] and not crowd:
                        continue
                    if best > -1 and not anns[best].get("iscrowd", 0) and crowd:
                        break
                    v = iou_xywh(results[i]["bbox"], anns[j]["bbox"], crowd)
                    if v < best_iou:
                        continue
                    best, best_iou = j, v
                if best >= 0:
                    gt_taken[best] = True
                    if anns[best].get("iscrowd", 0):
                        pred_out[i] = "ignored"
                    else:
                        pred_out[i] = "tp"
                        gt_out[best] = "tp"
        # 2. cross-class among the rest.
        left_gt = [j for j in g_idx if gt_out[j] == "fn"]
        for i in by_score([i for i in p_idx if pred_out[i] == "fp"]):
            best, best_iou = -1, iou_thr
            for j in left_gt:
                if gt_out[j] != "fn":
                    continue
                v = iou_xywh(results[i]["bbox"], anns[j]["bbox"])
                if v >= best_iou:
                    best, best_iou = j, v
            if best >= 0:
                pred_out[i] = "mispredicted"
                gt_out[best] = "mispredicted"
        # 3. duplicates: ghosts on an object of their class that was found.
        for i in p_idx:
            if pred_out[i] != "fp":
                continue
            for j in g_idx:
                if (
                    gt_out[j] == "tp"
                    and anns[j]["category_id"] == results[i]["category_id"]
                    and iou_xywh(results[i]["bbox"], anns[j]["bbox"]) >= iou_thr
                ):
                    pred_out[i] = "duplicate"
                    break
    return gt_out, pred_out


def run_cli(*args, cwd=None):
    """Runs the installed ``detection-debugger`` command; returns the completed process."""
    exe = shutil.which("detection-debugger") or str(
        Path(sys.executable).with_name("detection-debugger")
    )
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


TOL = 1e-9


def assert_same_as_pycocotools(gt: dict, results: list, image_ids=None) -> None:
    reference = run_pycocotools(gt, results, image_ids)
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    mask = None if image_ids is None else table.image_mask(image_ids)
    precision, recall = accumulate(table.coco, mask)
    np.testing.assert_allclose(precision, reference.eval["precision"], rtol=0, atol=TOL)
    np.testing.assert_allclose(recall, reference.eval["recall"], rtol=0, atol=TOL)
    result = table.evaluate(mask)
    np.testing.assert_allclose(stats_array(result.stats), reference.stats, rtol=0, atol=TOL)
    # Per class, from pycocotools' own precision/recall arrays.
    p, r = reference.eval["precision"], reference.eval["recall"]
    for k, metrics in enumerate(result.classes.values()):
        pk = p[:, :, k, 0, -1]
        expected_ap = pk[pk > -1].mean() if (pk > -1).any() else None
        if expected_ap is None:
            assert metrics.AP is None and metrics.AP50 is None and metrics.AR100 is None
        else:
            assert metrics.AP == pytest.approx(expected_ap, abs=TOL)
            p50 = pk[0][pk[0] > -1]
            assert metrics.AP50 == pytest.approx(p50.mean(), abs=TOL)
            rk = r[:, k, 0, -1]
            assert metrics.AR100 == pytest.approx(rk[rk > -1].mean(), abs=TOL)


def random_config(seed: int) -> SyntheticConfig:
    rng = np.random.default_rng(seed)
    return SyntheticConfig(
        num_images=int(rng.integers(1, 30)),
        num_classes=int(rng.integers(1, 6)),
        gt_per_image=float(rng.uniform(0, 12)),
        ghosts_per_image=float(rng.uniform(0, 25)),
        duplicates_per_object=float(rng.uniform(0, 3)),
        crowd_rate=float(rng.uniform(0, 0.3)),
        empty_image_rate=float(rng.uniform(0, 0.5)),
        score_decimals=(1, 2, 3, None)[seed % 4],
        image_size=((160, 120), (640, 480))[seed % 2],
        seed=seed,
    )


# ------------------------------------------------- faint signs (slice discovery)

FAINT_SIGNS_KEY = "ev"
SIGN_W, SIGN_H = 200, 150


def _sign_scene(rng, path):
    """An image with 3-6 'signs' (bright or faint squares) and a 'car'; returns the boxes
    (relative), labels, whether each is faint, and the simulated detections."""
    import fiftyone as fo
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIGN_W, SIGN_H), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    gt, preds = [], []
    for _ in range(int(rng.integers(3, 7))):
        w, h = rng.uniform(18, 34, 2)
        x, y = rng.uniform(0, SIGN_W - w), rng.uniform(0, SIGN_H - h)
        faint = rng.random() < 0.4
        level = 100 if faint else 250
        for i in range(4):  # stripes: texture inside the box
            draw.rectangle([x + i * w / 4, y, x + i * w / 4 + w / 8, y + h], fill=(level,) * 3)
        box = [x / SIGN_W, y / SIGN_H, w / SIGN_W, h / SIGN_H]
        gt.append(fo.Detection(label="sign", bounding_box=box))
        if rng.random() < (0.25 if faint else 0.95):
            jitter = rng.normal(0, 0.01, 4)
            preds.append(
                fo.Detection(
                    label="sign",
                    bounding_box=list(np.add(box, jitter)),
                    confidence=float(rng.uniform(0.4, 1)),
                )
            )
    x = rng.uniform(0, SIGN_W - 50)
    draw.rectangle([x, 100, x + 50, 140], fill=(200, 30, 30))
    car = [x / SIGN_W, 100 / SIGN_H, 50 / SIGN_W, 40 / SIGN_H]
    gt.append(fo.Detection(label="car", bounding_box=car))
    preds.append(fo.Detection(label="car", bounding_box=car, confidence=0.9))
    image.save(path)
    return gt, preds


def faint_signs_dataset(folder, name: str, **fields):
    """70 images of signs, the faint ones mostly missed by the simulated detector, evaluated
    (key ``FAINT_SIGNS_KEY``); ``fields``: per-sample values ``lambda i: value``."""
    import fiftyone as fo

    from detection_debugger.datasets.runs import evaluate_detections

    rng = np.random.default_rng(7)
    ds = fo.Dataset(name, persistent=True)
    samples = []
    for i in range(70):
        path = str(folder / f"{i:03d}.png")
        gt, preds = _sign_scene(rng, path)
        samples.append(
            fo.Sample(
                filepath=path,
                ground_truth=fo.Detections(detections=gt),
                predictions=fo.Detections(detections=preds),
                **{field: value(i) for field, value in fields.items()},
            )
        )
    ds.add_samples(samples)
    ds.compute_metadata()
    evaluate_detections(ds, "predictions", "ground_truth", eval_key=FAINT_SIGNS_KEY)
    return ds
