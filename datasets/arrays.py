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

__all__ = ["detection_set_from_view"]


def _flatten(per_sample: list, fill=None) -> np.ndarray:
    flat = [v for values in per_sample for v in (values or [])]
    return np.array([fill if v is None else v for v in flat])


def detection_set_from_view(
    view, gt_field: str, pred_field: str, classes: list[str] | None = None
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
    """
    if view.exists("metadata", False).count():
        view.compute_metadata()
    gt, pred = f"{gt_field}.detections", f"{pred_field}.detections"
    (
        sample_ids, widths, heights,
        gt_ids, gt_labels, gt_boxes, gt_crowd, gt_area,
        pred_ids, pred_labels, pred_boxes, pred_conf,
    ) = view.values(
        [
            "id", "metadata.width", "metadata.height",
            f"{gt}.id", f"{gt}.label", f"{gt}.bounding_box", f"{gt}.iscrowd", f"{gt}.area",
            f"{pred}.id", f"{pred}.label", f"{pred}.bounding_box", f"{pred}.confidence",
        ]
    )  # fmt: skip
    if classes is None:
        labels = {v for values in gt_labels + pred_labels for v in (values or [])}
        classes = sorted(labels)
    index = {name: i for i, name in enumerate(classes)}
    sizes = np.array([widths, heights], dtype=np.float64).T  # (N, 2)

    def boxes(per_sample: list) -> tuple[np.ndarray, np.ndarray]:
        image = np.repeat(np.arange(len(per_sample)), [len(v or []) for v in per_sample])
        rel = [b for values in per_sample for b in (values or [])]
        return image, pixel_boxes(rel, sizes[image])

    def label_index(per_sample: list, what: str) -> np.ndarray:
        flat = [v for values in per_sample for v in (values or [])]
        unknown = sorted({v for v in flat if v not in index})
        if unknown:
            raise ValueError(f"{what} labels not in the classes: {unknown}")
        return np.array([index[v] for v in flat], dtype=np.int64)

    gt_image, gt_abs = boxes(gt_boxes)
    pred_image, pred_abs = boxes(pred_boxes)
    area = _flatten(gt_area, np.nan).astype(np.float64).reshape(-1)
    missing = np.isnan(area)
    # Without a COCO ``area``, the box area as a converter writes it (``1024``, not
    # ``1024.0000000000002``: the range limits are inclusive).
    area[missing] = recover_decimals(gt_abs[missing, 2] * gt_abs[missing, 3])
    data = DetectionSet.from_arrays(
        image_ids=np.arange(len(sample_ids)),
        class_names=classes,
        gt_image_ids=gt_image,
        gt_labels=label_index(gt_labels, gt_field),
        gt_boxes=gt_abs,
        gt_crowd=_flatten(gt_crowd, False).astype(bool).reshape(-1),
        gt_areas=area,
        pred_image_ids=pred_image,
        pred_labels=label_index(pred_labels, pred_field),
        pred_boxes=pred_abs,
        pred_scores=_flatten(pred_conf, 1.0).astype(np.float64).reshape(-1),
    )
    ids = {
        "samples": list(sample_ids),
        "gt": [v for values in gt_ids for v in (values or [])],
        "pred": [v for values in pred_ids for v in (values or [])],
    }
    return data, ids
