"""Label errors planted into real ground truth, with a seed, to measure label-issue finders.

:func:`load_yolo_set` reads a YOLO ground truth and an Ultralytics ``predictions.json`` (the
layout of ``../shared/real-data/dashcam``) into a :class:`DetectionSet`;
:func:`plant_label_errors` removes boxes (``missing``), changes classes (``wrong_class``),
shifts and enlarges boxes (``loose_box``) and adds boxes on background (``spurious``), and
returns the planted set with the truth that :func:`detection_debugger.demo.label_quality
.measure_quality` scores finders against. Pure numpy (no FiftyOne).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet
from detection_debugger.evaluation.label_issues import LOOSE_BOX, MISSING, SPURIOUS, WRONG_CLASS
from detection_debugger.evaluation.matching import pair_iou
from detection_debugger.formats.kitti import read_kitti_folder
from detection_debugger.formats.label_sources import read_image_info
from detection_debugger.formats.ultralytics import read_ultralytics_predictions
from detection_debugger.formats.yolo import read_class_names, read_yolo_folder

__all__ = ["PlantConfig", "Planted", "load_demo_sets", "load_yolo_set", "plant_label_errors"]


def load_yolo_set(
    images: str | Path, labels: str | Path, names: str | Path, predictions: str | Path
) -> tuple[DetectionSet, list[str], dict[str, tuple[int, int]]]:
    """A YOLO ground truth and Ultralytics predictions as one set.

    Returns ``(data, stems, sizes)``: the set (image ``i`` is ``stems[i]``), the image file
    stems, and ``{stem: (width, height)}``.
    """
    files = {p.stem: str(p) for p in sorted(Path(images).iterdir()) if p.is_file()}
    info = read_image_info(files)
    sizes = {stem: (v["width"], v["height"]) for stem, v in info.items()}
    class_names = read_class_names(names)
    gt, _ = read_yolo_folder(labels, class_names, sizes, predictions=False)
    preds, _ = read_ultralytics_predictions(predictions, list(files), class_names=class_names)
    stems = sorted(files)
    index = {s: i for i, s in enumerate(stems)}
    label_of = {n: k for k, n in enumerate(class_names)}

    def columns(per_image, scores: bool):
        rows = [(index[im.stem], o) for im in per_image if im.stem in index for o in im.objects]
        boxes = np.array(
            [[x1, y1, x2 - x1, y2 - y1] for _, o in rows for x1, y1, x2, y2 in [o.box]]
        )
        return (
            np.array([i for i, _ in rows], np.int64),
            np.array([label_of[o.label] for _, o in rows], np.int64),
            boxes.reshape(-1, 4),
            np.array([o.score for _, o in rows], np.float64) if scores else None,
        )

    g_img, g_lab, g_box, _ = columns(gt, False)
    p_img, p_lab, p_box, p_score = columns(preds, True)
    data = DetectionSet.from_arrays(
        image_ids=np.arange(len(stems)),
        class_names=class_names,
        gt_image_ids=g_img,
        gt_labels=g_lab,
        gt_boxes=g_box,
        pred_image_ids=p_img,
        pred_labels=p_lab,
        pred_boxes=p_box,
        pred_scores=p_score,
    )
    return data, stems, sizes


def load_dashcam_set(dashcam, natural_path) -> tuple:
    """``(data, stems, natural)``: the real dashcam set (``../shared/real-data/dashcam``: YOLO
    ground truth, one model's Ultralytics predictions), its image stems and the natural
    omissions confirmed by eye (``natural_path``) keyed like planted truth."""
    dashcam = Path(dashcam)
    data, stems, _ = load_yolo_set(
        dashcam / "data" / "valid" / "images",
        dashcam / "data" / "valid" / "labels",
        dashcam / "data" / "data.yaml",
        dashcam / "runs" / "detect" / "val3" / "predictions.json",
    )
    index = {s: i for i, s in enumerate(stems)}
    natural: dict = {"missing": {}}
    for item in json.loads(Path(natural_path).read_text())["missing"]:
        natural["missing"].setdefault(index[item["image"]], []).append(item["box"])
    return data, stems, natural


def _records_to_set(gt, preds, stems: list[str], class_names) -> DetectionSet:
    """One set from per-image records (:class:`~detection_debugger.formats.ImageObjects`)
    of the ground truth and one prediction set; image ``i`` is ``stems[i]``."""
    index = {s: i for i, s in enumerate(stems)}
    label_of = {n: k for k, n in enumerate(class_names)}

    def columns(per_image):
        rows = [(index[im.stem], o) for im in per_image if im.stem in index for o in im.objects]
        boxes = [[o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]] for _, o in rows]
        return (
            np.array([i for i, _ in rows], np.int64),
            np.array([label_of[o.label] for _, o in rows], np.int64),
            np.array(boxes, np.float64).reshape(-1, 4),
            np.array([o.score or 0.0 for _, o in rows], np.float64),
        )

    g_img, g_lab, g_box, _ = columns(gt)
    p_img, p_lab, p_box, p_score = columns(preds)
    return DetectionSet.from_arrays(
        image_ids=np.arange(len(stems)),
        class_names=class_names,
        gt_image_ids=g_img,
        gt_labels=g_lab,
        gt_boxes=g_box,
        pred_image_ids=p_img,
        pred_labels=p_lab,
        pred_boxes=p_box,
        pred_scores=p_score,
    )


def load_demo_sets(files: dict, models: Sequence[str]) -> tuple[list[DetectionSet], dict]:
    """The demo's ground truth (KITTI) with each prediction set of ``models`` (TAO folders
    ``files[model]``), and the truth of its manifest keyed like :class:`Planted` truth."""
    manifest = json.loads(Path(files["manifest"]).read_text())
    gt, _ = read_kitti_folder(files["labels"], predictions=False)
    stems = sorted(p.stem for p in Path(files["images"]).glob("*.jpg"))
    class_names = list(manifest["classes"])
    sets = [
        _records_to_set(gt, read_kitti_folder(files[m], predictions=True)[0], stems, class_names)
        for m in models
    ]
    index = {s: i for i, s in enumerate(stems)}
    first_row = np.searchsorted(sets[0].gt_image, np.arange(len(stems)))
    truth: dict = {MISSING: {}, WRONG_CLASS: set(), LOOSE_BOX: set(), SPURIOUS: set()}
    for error in manifest["errors"]:
        image = index[error["image"]]
        if error["type"] == MISSING:
            x1, y1, x2, y2 = error["box"]
            truth[MISSING].setdefault(image, []).append([x1, y1, x2 - x1, y2 - y1])
        else:
            truth[error["type"]].add(int(first_row[image] + error["line"] - 1))
    return sets, truth


@dataclass(frozen=True)
class PlantConfig:
    """How many errors of each type to plant, as shares of the ground-truth objects.

    Args:
        missing, wrong_class, loose_box, spurious: shares of the ``G`` objects removed,
            relabelled, loosened, and added (spurious boxes on background).
        loose_iou: a loosened box overlaps its original at an IoU in this range.
        min_side: only objects with both sides at least this many pixels are loosened.
    """

    missing: float = 0.05
    wrong_class: float = 0.03
    loose_box: float = 0.03
    spurious: float = 0.03
    loose_iou: tuple[float, float] = (0.3, 0.6)
    min_side: float = 8.0


@dataclass(frozen=True)
class Planted:
    """A set with planted errors and their truth.

    Attributes:
        data: the set with the planted ground truth (ground-truth ids are its rows).
        truth: ``{"missing": {image: [[x, y, w, h], ...]}, "<type>": {ground-truth rows}}``
            (the keys :func:`detection_debugger.demo.label_quality.engine_candidates` uses).
        original_row: ``(G',)`` int64 row of each planted-set object in the input set, -1
            for an added (spurious) object.
    """

    data: DetectionSet
    truth: dict
    original_row: np.ndarray


def _loosened(box: np.ndarray, rng, low: float, high: float, extent) -> np.ndarray | None:
    """``box`` shifted and enlarged, inside the image (``extent``: width, height), so that
    its IoU with the original is in [low, high)."""
    x, y, w, h = box
    for _ in range(30):
        scale = rng.uniform(1.2, 1.8, 2)
        shift = rng.uniform(-0.25, 0.25, 2) * [w, h]
        nw, nh = w * scale[0], h * scale[1]
        cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
        x1, y1 = max(cx - nw / 2, 0.0), max(cy - nh / 2, 0.0)
        x2, y2 = min(cx + nw / 2, extent[0]), min(cy + nh / 2, extent[1])
        out = np.array([x1, y1, x2 - x1, y2 - y1])
        iou = pair_iou(out[None], box[None], np.zeros(1, bool))[0]
        if low <= iou < high:
            return out
    return None


def _background_box(data: DetectionSet, image: int, k: int, rng, extent) -> np.ndarray | None:
    """A box of class ``k``'s typical size on image ``image``, on no ground-truth object."""
    same = data.gt_boxes[data.gt_class == k]
    boxes = data.gt_boxes[data.gt_image == image]
    for _ in range(30):
        w, h = same[rng.integers(len(same))][2:] if len(same) else (extent[0] / 8, extent[1] / 8)
        x, y = rng.uniform(0, max(extent[0] - w, 1)), rng.uniform(0, max(extent[1] - h, 1))
        box = np.array([x, y, w, h])
        if not len(boxes):
            return box
        ious = pair_iou(np.repeat(box[None], len(boxes), 0), boxes, np.zeros(len(boxes), bool))
        if ious.max() < 0.05:
            return box
    return None


def plant_label_errors(  # long: one pass per error type, kept together to share the row bookkeeping
    data: DetectionSet, seed: int, config: PlantConfig | None = None, image_size=None
) -> Planted:
    """Plants errors into the ground truth of ``data`` (see :class:`PlantConfig`).

    Objects are drawn without replacement, so no object carries two planted errors.
    ``image_size``: ``(width, height)`` of every image for the spurious boxes (default: the
    extent of the boxes).
    """
    config = config or PlantConfig()
    rng = np.random.default_rng(seed)
    num_gt = len(data.gt_ids)
    eligible = rng.permutation(np.flatnonzero(~data.gt_crowd))
    n = {t: int(round(getattr(config, t) * num_gt)) for t in (MISSING, WRONG_CLASS, LOOSE_BOX)}
    removed = eligible[: n[MISSING]]
    relabelled = eligible[n[MISSING] : n[MISSING] + n[WRONG_CLASS]]
    rest = eligible[n[MISSING] + n[WRONG_CLASS] :]
    big = rest[(data.gt_boxes[rest, 2:] >= config.min_side).all(axis=1)]
    classes, boxes = data.gt_class.copy(), data.gt_boxes.copy()
    for g in relabelled:
        classes[g] = rng.choice([k for k in range(data.num_classes) if k != classes[g]])
    extent = image_size or tuple(np.max(data.gt_boxes[:, :2] + data.gt_boxes[:, 2:], axis=0))
    loosened = []
    for g in big:
        if len(loosened) == n[LOOSE_BOX]:
            break
        box = _loosened(boxes[g], rng, *config.loose_iou, extent)
        if box is not None:
            boxes[g] = box
            loosened.append(g)
    added = []
    for _ in range(int(round(config.spurious * num_gt))):
        image = int(rng.integers(data.num_images))
        k = int(rng.choice(data.gt_class)) if num_gt else 0
        box = _background_box(data, image, k, rng, extent)
        if box is not None:
            added.append((image, k, box))
    keep = np.setdiff1d(np.arange(num_gt), removed)
    original_row = np.r_[keep, np.full(len(added), -1)].astype(np.int64)
    new_row = np.full(num_gt, -1, np.int64)
    new_row[keep] = np.arange(len(keep))
    images = np.r_[data.gt_image[keep], [a[0] for a in added]].astype(np.int64)
    planted = DetectionSet.from_arrays(
        image_ids=data.image_ids,
        class_names=data.class_names,
        class_ids=data.class_ids,
        gt_image_ids=data.image_ids[images],
        gt_labels=np.r_[classes[keep], [a[1] for a in added]].astype(np.int64),
        gt_boxes=np.r_[boxes[keep], np.array([a[2] for a in added]).reshape(-1, 4)],
        gt_crowd=np.r_[data.gt_crowd[keep], np.zeros(len(added), bool)],
        pred_image_ids=data.image_ids[data.pred_image],
        pred_labels=data.pred_class,
        pred_boxes=data.pred_boxes,
        pred_scores=data.pred_scores,
        pred_ids=data.pred_ids,
    )
    truth: dict = {MISSING: {}}
    for g in removed:
        truth[MISSING].setdefault(int(data.gt_image[g]), []).append(data.gt_boxes[g].tolist())
    truth[WRONG_CLASS] = {int(new_row[g]) for g in relabelled}
    truth[LOOSE_BOX] = {int(new_row[g]) for g in loosened}
    truth[SPURIOUS] = set(range(len(keep), len(keep) + len(added)))
    return Planted(planted, truth, original_row)
