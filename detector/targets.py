"""What the network is taught: CenterNet targets from boxes, and the loss against them.

Shapes: ``K`` classes, output ``h x w`` cells; a cell is :data:`STRIDE` input pixels.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["centernet_loss", "make_targets"]


def _gaussian(cx: float, cy: float, sx: float, sy: float, h: int, w: int) -> np.ndarray:
    """``(h, w)`` elliptical Gaussian peaking at 1 on cell ``(int(cx), int(cy))``."""
    xs = np.arange(w, dtype=np.float32) - int(cx)
    ys = np.arange(h, dtype=np.float32) - int(cy)
    return np.exp(-(xs[None, :] ** 2) / (2 * sx**2) - ys[:, None] ** 2 / (2 * sy**2))


def make_targets(
    boxes: np.ndarray, labels: np.ndarray, num_classes: int, h: int, w: int
) -> dict[str, np.ndarray]:
    """Targets of one image.

    Args:
        boxes: ``(N, 4)`` ``x1 y1 x2 y2`` in output cells.
        labels: ``(N,)`` class indices.

    Returns:
        ``heatmap (K, h, w)`` Gaussians of the centres (1 at a centre cell), ``size (2, h, w)``
        log width and height in cells, ``offset (2, h, w)`` the centre within its cell and
        ``mask (h, w)`` 1 on centre cells (where size and offset are taught).
    """
    heat = np.zeros((num_classes, h, w), np.float32)
    size = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    # large objects first, so that a small object's centre wins a shared cell
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    for (x1, y1, x2, y2), k in zip(boxes[order], labels[order]):
        bw, bh = max(x2 - x1, 0.25), max(y2 - y1, 0.25)
        cx = float(np.clip((x1 + x2) / 2, 0, w - 1e-3))
        cy = float(np.clip((y1 + y2) / 2, 0, h - 1e-3))
        g = _gaussian(cx, cy, max(0.5, 0.09 * bw), max(0.5, 0.09 * bh), h, w)
        heat[k] = np.maximum(heat[k], g)
        i, j = int(cy), int(cx)
        size[:, i, j] = np.log(bw), np.log(bh)
        offset[:, i, j] = cx - j, cy - i
        mask[i, j] = 1.0
    return {"heatmap": heat, "size": size, "offset": offset, "mask": mask}


def centernet_loss(outputs, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Focal loss on the heatmap (CenterNet's, penalty-reduced near centres) plus L1 on size
    and offset at centre cells; returns the total and its parts (floats)."""
    logits, size, offset = outputs
    gt = targets["heatmap"]
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - gt) ** 4 * (1 - pos)).sum()
    num_pos = pos.sum().clamp(min=1.0)
    heat_loss = (pos_loss + neg_loss) / num_pos
    mask = targets["mask"].unsqueeze(1)
    num = mask.sum().clamp(min=1.0)
    size_loss = ((size - targets["size"]).abs() * mask).sum() / num
    offset_loss = ((offset - targets["offset"]).abs() * mask).sum() / num
    total = heat_loss + size_loss + offset_loss
    parts = {"heatmap": heat_loss.item(), "size": size_loss.item(), "offset": offset_loss.item()}
    return total, parts
