"""Per-object and per-image descriptors from the boxes and the pixels (pure numpy).

What the slice search (:mod:`detection_debugger.evaluation.slice_discovery`) slices by:

- from the boxes: ``size`` (square root of the box's share of the image), ``aspect``
  (log2 width/height), ``center_x``/``center_y`` (relative position), ``at_border`` (the box
  touches the image border: truncated) and ``overlap`` (the largest share of the box covered
  by another ground-truth object of the image: an occlusion proxy);
- from the pixels, relative to the image: ``brightness`` (patch mean minus image mean, in
  0-1 units), ``contrast`` (patch standard deviation over the image's) and ``sharpness``
  (mean absolute Laplacian of the patch over the image's), all with summed-area tables
  (constant time per box);
- per image: ``image_brightness``, ``image_contrast``, ``image_sharpness``, ``num_objects``;
- :func:`kmeans`: clusters of embedding vectors (CLIP patches), the cluster a descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOX_DESCRIPTORS",
    "IMAGE_DESCRIPTORS",
    "PIXEL_DESCRIPTORS",
    "ImageTables",
    "assign_clusters",
    "box_descriptors",
    "image_statistics",
    "kmeans",
    "patch_statistics",
]

BOX_DESCRIPTORS = ("size", "aspect", "center_x", "center_y", "at_border", "overlap")
PIXEL_DESCRIPTORS = ("brightness", "contrast", "sharpness")
IMAGE_DESCRIPTORS = ("image_brightness", "image_contrast", "image_sharpness", "num_objects")
BORDER_MARGIN = 0.005  # a box within 0.5% of the image size from a border touches it
_EPS = 1e-9


def box_descriptors(
    boxes: np.ndarray,
    image: np.ndarray,
    sizes: np.ndarray,
    other_boxes: np.ndarray,
    other_image: np.ndarray,
    exclude: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Geometry of ``N`` boxes.

    Args:
        boxes: ``(N, 4)`` ``[x, y, w, h]`` pixels.
        image: ``(N,)`` image index of each box.
        sizes: ``(I, 2)`` width and height of every image.
        other_boxes: ``(M, 4)`` the boxes that may cover them (the ground truth).
        other_image: ``(M,)`` their image index.
        exclude: ``(N,)`` row of ``other_boxes`` not to count for each box (itself, or the
            object a prediction is matched to), -1 for none.

    Returns:
        ``{name: (N,) float64}`` for :data:`BOX_DESCRIPTORS` (``at_border`` is 0 or 1).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    width, height = sizes[image, 0].astype(np.float64), sizes[image, 1].astype(np.float64)
    x, y, w, h = boxes.T
    margin_x, margin_y = BORDER_MARGIN * width, BORDER_MARGIN * height
    at_border = (
        (x <= margin_x)
        | (y <= margin_y)
        | (x + w >= width - margin_x)
        | (y + h >= height - margin_y)
    )
    return {
        "size": np.sqrt(np.maximum(w * h, 0.0) / (width * height)),
        "aspect": np.log2(np.maximum(w, _EPS) / np.maximum(h, _EPS)),
        "center_x": (x + w / 2) / width,
        "center_y": (y + h / 2) / height,
        "at_border": at_border.astype(np.float64),
        "overlap": _covered(boxes, image, other_boxes, other_image, exclude),
    }


def _covered(boxes, image, others, other_image, exclude) -> np.ndarray:
    """``(N,)`` the largest share of each box covered by one of ``others`` of its image."""
    out = np.zeros(len(boxes))
    if not len(boxes) or not len(others):
        return out
    order = np.argsort(other_image, kind="stable")
    others, other_image = np.asarray(others, np.float64)[order], other_image[order]
    num_images = int(max(image.max(), other_image.max())) + 1
    counts = np.bincount(other_image, minlength=num_images)
    starts = np.cumsum(counts) - counts
    per_box = counts[image]
    a = np.repeat(np.arange(len(boxes)), per_box)
    b = starts[image][a] + np.arange(len(a)) - np.repeat(np.cumsum(per_box) - per_box, per_box)
    if exclude is not None:
        keep = order[b] != np.asarray(exclude)[a]
        a, b = a[keep], b[keep]
    ba, bb = boxes[a], others[b]
    iw = np.minimum(ba[:, 0] + ba[:, 2], bb[:, 0] + bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    ih = np.minimum(ba[:, 1] + ba[:, 3], bb[:, 1] + bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    share = np.maximum(iw, 0) * np.maximum(ih, 0) / np.maximum(ba[:, 2] * ba[:, 3], _EPS)
    np.maximum.at(out, a, share)
    return out


def _integral(values: np.ndarray) -> np.ndarray:
    """Summed-area table with a leading row and column of zeros: ``(H+1, W+1)``."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    np.cumsum(np.cumsum(values, axis=0), axis=1, out=table[1:, 1:])
    return table


def _laplacian(gray: np.ndarray) -> np.ndarray:
    """``|4 c - up - down - left - right|`` (0 on the outermost pixels)."""
    out = np.zeros_like(gray)
    c = gray[1:-1, 1:-1]
    out[1:-1, 1:-1] = np.abs(
        4 * c - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    )
    return out


@dataclass(frozen=True)
class ImageTables:
    """Summed-area tables of one grey image, computed once for all its boxes.

    Attributes:
        gray, square, laplacian: ``(H+1, W+1)`` tables of the values, their squares and
            their absolute Laplacian.
        mean, std, sharpness: the whole image's (0-255 units).
    """

    gray: np.ndarray
    square: np.ndarray
    laplacian: np.ndarray
    mean: float
    std: float
    sharpness: float

    @classmethod
    def of(cls, gray: np.ndarray) -> ImageTables:
        """Tables of an ``(H, W)`` grey image with values 0-255."""
        gray = np.asarray(gray, np.float64)
        lap = _laplacian(gray)
        return cls(
            _integral(gray),
            _integral(gray * gray),
            _integral(lap),
            float(gray.mean()),
            float(gray.std()),
            float(lap.mean()),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape[0] - 1, self.gray.shape[1] - 1


def image_statistics(tables: ImageTables) -> dict[str, float]:
    """Brightness, contrast (std) and sharpness (mean absolute Laplacian) of the image, in
    0-1 units."""
    return {
        "image_brightness": tables.mean / 255.0,
        "image_contrast": tables.std / 255.0,
        "image_sharpness": tables.sharpness / 255.0,
    }


def patch_statistics(tables: ImageTables, boxes: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`PIXEL_DESCRIPTORS` of ``(N, 4)`` pixel ``[x, y, w, h]`` boxes of one image,
    relative to the whole image.

    A box covers the pixels it touches, clipped to the image (at least one pixel).
    """
    height, width = tables.shape
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0 = np.clip(np.floor(boxes[:, 0]), 0, width - 1).astype(np.int64)
    y0 = np.clip(np.floor(boxes[:, 1]), 0, height - 1).astype(np.int64)
    x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2]), x0 + 1, width).astype(np.int64)
    y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3]), y0 + 1, height).astype(np.int64)
    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)

    def box_mean(table):
        return (table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]) / area

    mean = box_mean(tables.gray)
    var = np.maximum(box_mean(tables.square) - mean**2, 0.0)
    return {
        "brightness": (mean - tables.mean) / 255.0,
        "contrast": np.sqrt(var) / max(tables.std, _EPS),
        "sharpness": box_mean(tables.laplacian) / max(tables.sharpness, _EPS),
    }


def kmeans(
    vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) of ``(N, D)`` vectors: ``(N,)`` cluster of each and the
    ``(k, D)`` unit centroids (k-means++ start, fixed ``seed``)."""
    x = _unit(np.asarray(vectors, np.float64))
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        distance = 1.0 - np.max(x @ np.array(centroids).T, axis=1)
        weights = np.maximum(distance, 0) ** 2
        total = weights.sum()
        pick = rng.choice(len(x), p=weights / total) if total > 0 else rng.integers(len(x))
        centroids.append(x[pick])
    centroids = np.array(centroids)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        labels = np.argmax(x @ centroids.T, axis=1)
        updated = np.array(
            [x[labels == j].sum(axis=0) if (labels == j).any() else centroids[j] for j in range(k)]
        )
        updated = _unit(updated)
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return labels, centroids


def assign_clusters(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(N,)`` nearest (cosine) centroid of each vector."""
    return np.argmax(_unit(np.asarray(vectors, np.float64)) @ centroids.T, axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)
