"""Joining a detection's ``image_id`` to an image: COCO ids, file stems, file names, numbers.

Result files name their images in several ways: COCO ids (through the ``images`` list of the
ground truth), the file stem (Ultralytics ``predictions.json``: ``"000123"`` or, for numeric
stems, the number ``123``), or the file name (``"000123.jpg"``). :class:`ImageJoin` resolves
all of them to the image's file stem.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

__all__ = ["ImageJoin", "image_id_key", "integer_id"]


def image_id_key(value) -> int | str:
    """An image id as a dictionary key: an integer (``3``, ``3.0``) or a non-empty string.

    Raises:
        ValueError: any other value (``true``, ``2.5``, ``null``, a list...).
    """
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError


def integer_id(value) -> int:
    """An integer id (category, annotation): ``3``, ``3.0`` or ``"3"``, within 64 bits (what
    MongoDB stores and the engine's int64 arrays hold).

    Raises:
        ValueError: any other value.
    """
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        key = int(value)
    else:
        key = image_id_key(value)
    if isinstance(key, str) or not -(2**63) <= key < 2**63:
        raise ValueError
    return key


def _numeric_stem(stem: str) -> int | None:
    return int(stem) if stem.isascii() and stem.isdigit() else None


class ImageJoin:
    """Resolves image ids to image file stems.

    Resolution order: ``ids`` (a COCO ``{image id: stem}`` table), then a string id as a stem
    (``000123``) or a file name or path (``000123.jpg``, ``val/000123.jpg``), then -- only
    without a table -- a number as the numeric stem of the same value (Ultralytics writes
    ``int(stem)`` for numeric stems: ``000123.jpg`` -> ``123``).

    Args:
        stems: the stems of the images that ids may name.
        ids: a COCO id table; its stems are added to ``stems``.
    """

    def __init__(self, stems: Iterable[str], ids: Mapping[int | str, str] | None = None):
        self.ids = dict(ids or {})
        self.stems = set(stems) | set(self.ids.values())
        self.by_number: dict[int, list[str]] = defaultdict(list)
        if not self.ids:
            for stem in sorted(self.stems):
                number = _numeric_stem(stem)
                if number is not None:
                    self.by_number[number].append(stem)

    def stem_of(self, image_id) -> str:
        """The stem of the image ``image_id`` names.

        Raises:
            LookupError: no image, or several (``reason`` in ``args[0]``).
        """
        try:
            key = image_id_key(image_id)
        except ValueError:
            raise LookupError(
                f"'image_id' must be an integer or a string, got {image_id!r}"
            ) from None
        if key in self.ids:
            return self.ids[key]
        if isinstance(key, str):
            if key in self.stems:
                return key
            stem = PurePosixPath(key.replace("\\", "/")).stem
            if stem in self.stems:
                return stem
        if self.ids:
            raise LookupError(f"unknown image id {image_id!r}")
        number = key if isinstance(key, int) else _numeric_stem(key)
        matches = self.by_number.get(number, []) if number is not None else []
        if len(matches) > 1:
            raise LookupError(
                f"image id {image_id!r} is ambiguous: it matches the numeric stems "
                f"{', '.join(matches)} (rename the images or write the ids as strings)"
            )
        if matches:
            return matches[0]
        raise LookupError(f"unknown image id {image_id!r}: no image has that file stem")
