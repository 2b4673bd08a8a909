"""Seeded synthetic COCO ground truth and detections, for tests, benchmarks and the demo.

The detections imitate a real detector: most objects are found with a jittered box (some
twice), some are found with the wrong class, some are missed, and there are ghost boxes on
background. Scores rise with box quality. :func:`make_coco` builds the set in memory;
:func:`write_files` lays it out on disk as users bring it (images plus label files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticConfig", "make_coco", "records_from_coco", "write_files"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a synthetic set.

    Attributes:
        num_images: images in the set.
        num_classes: classes, named ``class_0``...; class ``k`` is ``1 + k`` times rarer than
            class 0 would be at uniform frequency (imbalanced, like real data).
        gt_per_image: mean ground-truth objects per image (Poisson).
        ghosts_per_image: mean background detections per image (Poisson).
        duplicates_per_object: mean extra detections per found object (Poisson).
        miss_rate: probability that an object is not detected.
        confusion_rate: probability that a found object's detection has another class.
        crowd_rate: probability that a ground-truth object is a crowd region.
        empty_image_rate: probability that an image has no ground truth.
        score_decimals: round scores to this many decimals (creates ties), None for no rounding.
        image_size: (width, height) of every image.
        seed: the random seed; the same config always gives the same set.
        class_names: names of the classes (default ``class_0``, ``class_1``...).
    """

    num_images: int = 200
    num_classes: int = 5
    gt_per_image: float = 7.0
    ghosts_per_image: float = 4.0
    duplicates_per_object: float = 0.3
    miss_rate: float = 0.15
    confusion_rate: float = 0.05
    crowd_rate: float = 0.02
    empty_image_rate: float = 0.05
    score_decimals: int | None = 3
    image_size: tuple[int, int] = (640, 480)
    seed: int = 0
    class_names: tuple[str, ...] | None = None


def _random_boxes(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """``(n, 4)`` xywh boxes inside the image, sizes log-uniform from ~4 px to ~70% of it."""
    side = np.exp(rng.uniform(np.log(4.0), np.log(0.7 * min(width, height)), size=n))
    aspect = np.exp(rng.normal(0.0, 0.5, size=n))
    w = np.clip(side * np.sqrt(aspect), 1.0, width - 1)
    h = np.clip(side / np.sqrt(aspect), 1.0, height - 1)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.round(np.stack([x, y, w, h], axis=1), 2)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Moves and resizes boxes by ``scale`` (``(n,)``, relative) to imitate predictions."""
    x, y, w, h = boxes.T
    dx = rng.normal(0, 1, len(boxes)) * scale * w
    dy = rng.normal(0, 1, len(boxes)) * scale * h
    nw = np.maximum(w * np.exp(rng.normal(0, 1, len(boxes)) * scale), 1.0)
    nh = np.maximum(h * np.exp(rng.normal(0, 1, len(boxes)) * scale), 1.0)
    return np.round(np.stack([x + dx, y + dy, nw, nh], axis=1), 2)


# long: one generative recipe (objects, misses, confusions, duplicates, ghosts) in order
def make_coco(config: SyntheticConfig = SyntheticConfig()) -> tuple[dict, list[dict]]:
    """Generates ``(ground_truth, detections)`` in COCO format (dict, results list)."""
    rng = np.random.default_rng(config.seed)
    width, height = config.image_size
    num_images, num_classes = config.num_images, config.num_classes
    class_weight = 1.0 / (1.0 + np.arange(num_classes))
    class_weight /= class_weight.sum()

    images = [
        {"id": i + 1, "file_name": f"{i + 1:06d}.jpg", "width": width, "height": height}
        for i in range(num_images)
    ]
    names = config.class_names or tuple(f"class_{k}" for k in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    categories = [{"id": k + 1, "name": names[k]} for k in range(num_classes)]

    counts = rng.poisson(config.gt_per_image, size=num_images)
    counts[rng.random(num_images) < config.empty_image_rate] = 0
    gt_image = np.repeat(np.arange(num_images), counts)
    num_gt = len(gt_image)
    gt_class = rng.choice(num_classes, size=num_gt, p=class_weight)
    gt_boxes = _random_boxes(rng, num_gt, width, height)
    gt_crowd = rng.random(num_gt) < config.crowd_rate
    # COCO's area is the segmentation area, a little smaller than the box.
    gt_area = np.round(gt_boxes[:, 2] * gt_boxes[:, 3] * rng.uniform(0.6, 1.0, num_gt), 2)
    annotations = [
        {
            "id": j + 1,
            "image_id": int(gt_image[j]) + 1,
            "category_id": int(gt_class[j]) + 1,
            "bbox": gt_boxes[j].tolist(),
            "area": float(gt_area[j]),
            "iscrowd": int(gt_crowd[j]),
        }
        for j in range(num_gt)
    ]

    # Detections of real objects: found ones, plus duplicates of some.
    found = rng.random(num_gt) >= config.miss_rate
    copies = found.astype(np.int64) + np.where(
        found, rng.poisson(config.duplicates_per_object, num_gt), 0
    )
    source = np.repeat(np.arange(num_gt), copies)
    quality = rng.beta(4, 1.5, size=len(source))  # 1 = perfect box
    det_boxes = _jitter(rng, gt_boxes[source], 0.35 * (1 - quality) + 0.01)
    det_class = gt_class[source].copy()
    swap = rng.random(len(source)) < config.confusion_rate
    det_class[swap] = rng.integers(0, num_classes, int(swap.sum()))
    det_score = np.clip(quality * rng.uniform(0.6, 1.0, len(source)), 0.001, 1.0)
    det_image = gt_image[source]

    # Ghosts on background.
    ghost_counts = rng.poisson(config.ghosts_per_image, size=num_images)
    ghost_image = np.repeat(np.arange(num_images), ghost_counts)
    ghost_boxes = _random_boxes(rng, len(ghost_image), width, height)
    ghost_class = rng.choice(num_classes, size=len(ghost_image), p=class_weight)
    ghost_score = rng.beta(1.2, 4, size=len(ghost_image))

    image = np.concatenate([det_image, ghost_image])
    boxes = np.concatenate([det_boxes, ghost_boxes])
    classes = np.concatenate([det_class, ghost_class])
    scores = np.concatenate([det_score, ghost_score])
    if config.score_decimals is not None:
        scores = np.maximum(np.round(scores, config.score_decimals), 10.0**-config.score_decimals)
    shuffle = rng.permutation(len(image))
    detections = [
        {
            "image_id": int(image[i]) + 1,
            "category_id": int(classes[i]) + 1,
            "bbox": boxes[i].tolist(),
            "score": float(scores[i]),
        }
        for i in shuffle
    ]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, detections


def records_from_coco(gt: dict, results: list[dict]):
    """Per-image records of a COCO set: ``(gt_images, pred_images, sizes)``.

    Both lists hold every image (stem order as in ``gt["images"]``); ``sizes`` is
    ``{stem: (width, height)}``.
    """
    from pathlib import PurePath

    from detection_debugger.formats import ImageObjects, ObjectRecord

    names = {c["id"]: c["name"] for c in gt["categories"]}
    stems = {im["id"]: PurePath(im["file_name"]).stem for im in gt["images"]}
    sizes = {stems[im["id"]]: (im["width"], im["height"]) for im in gt["images"]}
    gt_images = {s: ImageObjects(stem=s) for s in stems.values()}
    pred_images = {s: ImageObjects(stem=s) for s in stems.values()}
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        gt_images[stems[ann["image_id"]]].objects.append(
            ObjectRecord(
                names[ann["category_id"]], (x, y, x + w, y + h), crowd=bool(ann["iscrowd"])
            )
        )
    for det in results:
        x, y, w, h = det["bbox"]
        pred_images[stems[det["image_id"]]].objects.append(
            ObjectRecord(names[det["category_id"]], (x, y, x + w, y + h), score=det["score"])
        )
    return list(gt_images.values()), list(pred_images.values()), sizes


def write_files(folder, gt: dict, results: list[dict], gt_format: str = "kitti") -> dict:
    """Writes a set as a user brings it: ``images/`` (blank JPEGs of the right sizes), ground
    truth (``gt_format``: ``kitti`` folder ``labels/``, or ``coco`` file ``gt.json``) and TAO
    predictions (``tao/labels/``, 16 columns with the confidence).

    Returns the paths: ``{"images", "gt", "pred"}``.
    """
    import json
    from pathlib import Path

    from PIL import Image

    from detection_debugger.formats import write_kitti_folder

    folder = Path(folder)
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    for im in gt["images"]:
        path = images_dir / im["file_name"]
        if not path.exists():
            Image.new("RGB", (im["width"], im["height"]), (90, 90, 90)).save(path, quality=50)
    gt_images, pred_images, _ = records_from_coco(gt, results)
    if gt_format == "kitti":
        gt_path = folder / "labels"
        write_kitti_folder(gt_path, gt_images, with_score=False)
    elif gt_format == "coco":
        gt_path = folder / "gt.json"
        gt_path.write_text(json.dumps(gt))
    else:
        raise ValueError(f"unknown ground-truth format {gt_format!r}")
    pred_path = folder / "tao" / "labels"
    write_kitti_folder(pred_path, pred_images, with_score=True)
    return {"images": str(images_dir), "gt": str(gt_path), "pred": str(pred_path)}
