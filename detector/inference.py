"""Running a trained detector on images: decoded boxes as records, TAO-style KITTI files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision

from detection_debugger.detector.network import STRIDE
from detection_debugger.detector.training import LoadedDetector, load_images, torch_threads
from detection_debugger.formats import ImageObjects, ObjectRecord, write_kitti_folder

__all__ = ["decode", "predict_images", "write_predictions"]


def decode(
    outputs, max_objects: int = 100, min_score: float = 0.05, nms_iou: float = 0.5
) -> list[np.ndarray]:
    """Per image, ``(M, 6)`` rows ``x1 y1 x2 y2 score class`` in input pixels: the heatmap's
    local maxima (3x3) above ``min_score``, at most ``max_objects``, best first; a box that
    overlaps a better one of its class at ``nms_iou`` is dropped (wide objects such as
    crosswalks have several maxima along their length)."""
    logits, size, offset = outputs
    heat = torch.sigmoid(logits)
    peaks = heat * (torch.nn.functional.max_pool2d(heat, 3, 1, 1) == heat)
    b, k, h, w = heat.shape
    scores, index = peaks.reshape(b, -1).topk(min(max_objects, k * h * w))
    out = []
    for n in range(b):
        keep = scores[n] >= min_score
        idx, score = index[n][keep], scores[n][keep]
        cls, cell = idx // (h * w), idx % (h * w)
        i, j = cell // w, cell % w
        cx = (j + offset[n, 0, i, j]) * STRIDE
        cy = (i + offset[n, 1, i, j]) * STRIDE
        bw = torch.exp(size[n, 0, i, j]) * STRIDE
        bh = torch.exp(size[n, 1, i, j]) * STRIDE
        rows = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, score, cls], 1)
        keep = torchvision.ops.batched_nms(rows[:, :4], rows[:, 4], rows[:, 5].long(), nms_iou)
        out.append(rows[keep.sort().values].numpy().astype(np.float64))
    return out


def predict_images(
    detector: LoadedDetector,
    image_paths: Sequence[str | Path],
    sizes: Sequence[tuple[int, int]],
    batch_size: int = 32,
    threads: int = 1,
) -> list[ImageObjects]:
    """The detector's objects on each image (pixel boxes of the original size, clipped),
    keyed by file stem; on ``threads`` CPU threads."""
    with torch_threads(threads):
        return _predict(detector, image_paths, sizes, batch_size)


def _predict(detector: LoadedDetector, image_paths, sizes, batch_size: int) -> list[ImageObjects]:
    out = []
    input_w, input_h = detector.input_size
    for start in range(0, len(image_paths), batch_size):
        paths = image_paths[start : start + batch_size]
        x = load_images(paths, detector.input_size).float() / 255.0
        with torch.no_grad():
            rows = decode(detector.model(x))
        for path, (width, height), r in zip(paths, sizes[start : start + batch_size], rows):
            boxes = np.clip(
                np.round(r[:, :4] * np.array([width / input_w, height / input_h] * 2), 2),
                0,
                [width, height] * 2,
            )
            objects = [
                ObjectRecord(detector.classes[int(c)], tuple(box), score=round(float(s), 4))
                for box, s, c in zip(boxes.tolist(), r[:, 4], r[:, 5])
                if box[2] > box[0] and box[3] > box[1]  # not squeezed flat by the image edge
            ]
            out.append(ImageObjects(Path(path).stem, objects))
    return out


def write_predictions(detector: LoadedDetector, image_paths, sizes, folder) -> dict:
    """Writes TAO inference output (``<stem>.txt``, KITTI with a 16th confidence column) for
    the images; returns ``{"images", "objects", "seconds"}``."""
    started = time.monotonic()
    images = predict_images(detector, image_paths, sizes)
    write_kitti_folder(folder, images, with_score=True)
    return {
        "images": len(images),
        "objects": sum(len(im.objects) for im in images),
        "seconds": round(time.monotonic() - started, 1),
    }
