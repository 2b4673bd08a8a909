"""FiftyOne's relative boxes and the pixel boxes of the label files, exactly both ways.

FiftyOne stores ``[x, y, w, h]`` as fractions of the image size. Dividing pixels by the
size and multiplying back is not the identity in floating point (``58 / 500 * 500`` is
``58.00000000000001``), and the difference matters to exact evaluation: a 32 x 32 box gets
an area of ``1024.0000000000002`` and leaves COCO's ``small`` range (``area <= 32**2``), and
an IoU of exactly 0.75 becomes ``0.7499999...`` and fails that threshold. So every pixel
value read back from a relative box is snapped to the decimal the file held: the shortest
decimal with at most :data:`DECIMALS` places within a few units of the last place of the
product or difference. Values with more decimals (YOLO's normalised boxes scaled to pixels, say) are far
from that grid and are left as computed, exact to the last bit or two.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DECIMALS",
    "pixel_boxes",
    "recover_decimals",
    "relative_box",
]

DECIMALS = 6  # label files write pixels with at most this many decimals (format_number)
# Relative: the noise of a product or a difference is a few 1e-16; 1e-12 stays far below the
# 6th decimal's step (1e-6) for any pixel value under 100,000.
_TOLERANCE = 1e-12


def recover_decimals(values) -> np.ndarray:
    """``values`` (pixels computed from relative boxes) snapped to the decimals they were
    written with: each becomes the shortest decimal of at most :data:`DECIMALS` places within
    ``1e-12`` (relative) of it, or stays as it is when there is none."""
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    tolerance = _TOLERANCE * np.maximum(1.0, np.abs(values))
    pending = np.isfinite(values)
    for places in range(DECIMALS + 1):
        if not pending.any():
            break
        snapped = np.round(values, places)
        close = pending & (np.abs(snapped - values) <= tolerance)
        out[close] = snapped[close]
        pending &= ~close
    return out


def pixel_boxes(relative, sizes) -> np.ndarray:
    """``(N, 4)`` pixel ``[x, y, w, h]`` of relative boxes.

    Args:
        relative: ``(N, 4)`` FiftyOne ``bounding_box`` values ``[x, y, w, h]`` in [0, 1].
        sizes: ``(N, 2)`` image ``(width, height)`` of each box.
    """
    relative = np.asarray(relative, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return recover_decimals(relative * np.concatenate([sizes, sizes], axis=1))


def relative_box(corners, width: float, height: float) -> list[float]:
    """FiftyOne's ``[x, y, w, h]`` of a pixel box given by its corners ``(x1, y1, x2, y2)``.

    Read back with :func:`pixel_boxes`, every value written with at most
    :data:`DECIMALS` decimals comes back exactly (``x2 - x1`` too: a COCO box of
    ``x = 0.1, w = 0.2`` has ``x2 - x1 = 0.20000000000000004``, which reads back as ``0.2``).
    """
    x1, y1, x2, y2 = corners
    return [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]
