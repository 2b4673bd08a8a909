"""COCO results files straight to numpy columns, without a Python object per box kept.

The fast path of ``evaluate``: a results file of plain detections (every record exactly
``image_id``, ``category_id``, ``bbox``, ``score``; integer ids; numbers only) is decoded
with ``msgspec`` into typed records and copied into four numpy columns, and the records are
freed. Whatever falls outside that shape (other keys, float or boolean ids, non-finite
numbers, escapes, an object with an ``annotations`` list, any syntax problem) returns None:
the caller then reads the file with the strict reader (:func:`.coco.read_coco_results`),
which accepts or rejects it with the usual one-line message. So the fast path accepts a
subset of what the strict reader accepts, with the same values, and never decides an error.
"""

from __future__ import annotations

import os
from operator import attrgetter

import msgspec
import numpy as np

from detection_debugger.formats.text_files import read_bytes

__all__ = ["read_coco_result_columns"]

_UTF8_BOM = b"\xef\xbb\xbf"
_KEYS = ("image_id", "category_id", "bbox", "score")


class _Box(msgspec.Struct, gc=False, array_like=True, forbid_unknown_fields=True):
    """``[x, y, w, h]`` (a struct, not a tuple: untracked by the cyclic collector)."""

    x: float
    y: float
    w: float
    h: float


class _Detection(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    image_id: int
    category_id: int
    bbox: _Box
    score: float


_DECODER = msgspec.json.Decoder(list[_Detection])


def _decode(data: bytes) -> list[_Detection] | None:
    """The records of a plain results file, or None when it is not one (see the module).

    Duplicate keys: msgspec keeps the last of a key written twice, the strict reader
    rejects the file. With no backslash in the file, every ``"`` opens or closes a string,
    and the only strings are the four known keys (any other key is refused): every record
    has each key once, so more than ``8 * records`` quotes means a key written twice.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if b"\\" in data or b"\0" in data:
        return None
    try:
        records = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None
    if data.count(b'"') != 2 * len(_KEYS) * len(records):
        return None
    return records


def read_coco_result_columns(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The columns of a plain COCO results file, or None (read it with the strict reader).

    Returns:
        ``{"image_id": (N,) int64, "category_id": (N,) int64, "bbox": (N, 4) float64,
        "score": (N,) float64}`` in file order.
    """
    data = read_bytes(os.fspath(path))  # a missing or unreadable file raises FormatError
    records = _decode(data)
    del data
    if records is None:
        return None
    n = len(records)
    try:
        columns = {
            key: np.fromiter(map(attrgetter(key), records), np.int64, count=n)
            for key in ("image_id", "category_id")
        }
    except OverflowError:  # an id beyond int64: the strict reader says what is wrong
        return None
    columns["score"] = np.fromiter(map(attrgetter("score"), records), np.float64, count=n)
    boxes = np.empty((n, 4), np.float64)
    for column, name in enumerate(("x", "y", "w", "h")):
        boxes[:, column] = np.fromiter(map(attrgetter(f"bbox.{name}"), records), np.float64, n)
    columns["bbox"] = boxes
    return columns
