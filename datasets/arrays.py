"""FiftyOne detections in bulk, as the engine's :class:`DetectionSet`.

Reads with ``values()`` (one query per field list, never sample by sample) and converts
FiftyOne's relative ``[x, y, w, h]`` boxes to the pixels of the label files with each image's
metadata (:func:`~detection_debugger.formats.pixel_boxes`: exactly the values the files held,
so the numbers equal pycocotools' on the source files).
"""

from __future__ import annotations

import numpy as np

from detection_debugger.evaluation import DetectionSet
from detection_debugger.formats.relative_boxes import pixel_boxes, recover_decimals

__all__ = ["READ_BATCH", "detection_set_from_view"]

READ_BATCH = 10_000  # samples per query when the reading reports its progress


def detection_set_from_view(
    view, gt_field: str, pred_field: str, classes: list[str] | None = None, on_batch=None
) -> tuple[DetectionSet, dict]:
    """The ground truth and predictions of ``view`` as a :class:`DetectionSet`.

    Image ids are the positions of the samples in ``view`` (0..N-1); object ids are their
    positions in the flattened fields. The returned ``ids`` map them back:
    ``{"samples": [sample id...], "gt": [label id...], "pred": [label id...]}``.
    Crowd regions are the objects with a truthy ``iscrowd`` attribute; ``area`` attributes
    (from COCO) drive the area ranges, else the box area.

    Args:
        view: a FiftyOne dataset or view with image metadata (computed when missing).
        gt_field, pred_field: ``Detections`` fields.
        classes: class names, in order (default: sorted labels of both fields).
        on_batch: called with the number of samples of each batch read; with it, the view
            is read :data:`READ_BATCH` samples at a time (without it, in one query a field).
    """
    if view.exists("metadata", False).count():
        view.compute_metadata()
    gt, pred, (sample_ids, widths, heights) = _read_in_batches(
        view, (gt_field, pred_field), on_batch
    )
    if classes is None:
        classes = sorted(set(gt["label"]) | set(pred["label"]))
    sizes = np.array([widths, heights], dtype=np.float64).T  # (N, 2)
    gt_boxes = pixel_boxes(gt["bounding_box"], sizes[gt["image"]])
    area = np.array([np.nan if a is None else a for a in gt["area"]], dtype=np.float64)
    missing = np.isnan(area)
    # Without a COCO ``area``, the box area as a converter writes it (``1024``, not
    # ``1024.0000000000002``: the range limits are inclusive).
    area[missing] = recover_decimals(gt_boxes[missing, 2] * gt_boxes[missing, 3])
    data = DetectionSet.from_arrays(
        image_ids=np.arange(len(sample_ids)),
        class_names=classes,
        gt_image_ids=gt["image"],
        gt_labels=_label_index(gt["label"], classes, gt_field),
        gt_boxes=gt_boxes,
        gt_crowd=np.array([bool(c) for c in gt["iscrowd"]], dtype=bool),
        gt_areas=area,
        pred_image_ids=pred["image"],
        pred_labels=_label_index(pred["label"], classes, pred_field),
        pred_boxes=pixel_boxes(pred["bounding_box"], sizes[pred["image"]]),
        pred_scores=np.array(
            [1.0 if c is None else c for c in pred["confidence"]], dtype=np.float64
        ),
    )
    return data, {"samples": list(sample_ids), "gt": gt["id"], "pred": pred["id"]}


_ATTRIBUTES = ("id", "label", "bounding_box", "iscrowd", "area", "confidence")


def _read_objects(view, field: str) -> dict[str, list]:
    """Every object of a ``Detections`` field in one query, flattened in view order:
    ``{"image": (M,) sample positions, attribute: [M values]}`` (missing values None)."""
    per_attribute = view.values([f"{field}.detections.{a}" for a in _ATTRIBUTES])
    counts = [len(v or []) for v in per_attribute[0]]
    out = {"image": np.repeat(np.arange(len(counts)), counts)}
    for name, per_sample in zip(_ATTRIBUTES, per_attribute):
        out[name] = [v for values in per_sample for v in (values or [])]
    return out


def _read_in_batches(view, fields: tuple[str, str], on_batch) -> tuple[dict, dict, tuple]:
    """:func:`_read_objects` of both fields and the samples' ids and sizes, one query each,
    or, with ``on_batch``, per :data:`READ_BATCH` samples (``skip``/``limit``), joined."""
    total = len(view) if on_batch is not None else 0
    starts = range(0, total, READ_BATCH) if total > READ_BATCH else [None]
    parts = []
    for start in starts:
        chunk = view if start is None else view.skip(start).limit(READ_BATCH)
        samples = chunk.values(["id", "metadata.width", "metadata.height"])
        parts.append((*(_read_objects(chunk, f) for f in fields), samples))
        if on_batch is not None:
            on_batch(len(samples[0]))
    if len(parts) == 1:
        return parts[0]
    joined = []
    for side in (0, 1):
        offsets = np.cumsum([0] + [len(part[2][0]) for part in parts[:-1]])
        out = {"image": np.concatenate([p[side]["image"] + o for p, o in zip(parts, offsets)])}
        for name in _ATTRIBUTES:
            out[name] = [v for part in parts for v in part[side][name]]
        joined.append(out)
    samples = tuple([v for part in parts for v in part[2][i]] for i in range(3))
    return joined[0], joined[1], samples


def _label_index(labels: list, classes: list[str], field: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({v for v in labels if v not in index})
    if unknown:
        raise ValueError(f"{field} labels not in the classes: {unknown}")
    return np.array([index[v] for v in labels], dtype=np.int64)
