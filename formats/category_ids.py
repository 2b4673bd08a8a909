"""Naming the category ids of a results file from a list of class names.

Ultralytics writes ``category_id = class index + 1`` (``range(1, nc + 1)``), except for a
model validated on COCO, whose 80 classes are written with the COCO ids 1..90
(``coco80_to_coco91_class``), and releases before 8.1, which wrote the index itself
(``range(1000)``). :func:`category_names_from_class_names` picks the numbering the ids fit.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COCO80_TO_COCO91", "category_names_from_class_names"]

# Ultralytics ``converter.coco80_to_coco91_class()``: the COCO id of each of the 80 classes.
COCO80_TO_COCO91 = (
    *range(1, 12),
    *range(13, 26),
    27,
    28,
    *range(31, 45),
    *range(46, 66),
    67,
    70,
    *range(72, 83),
    *range(84, 91),
)


def category_names_from_class_names(
    category_ids: Iterable[int], class_names: list[str]
) -> tuple[dict[int, str], str]:
    """``{category id: class name}`` for ids written by Ultralytics, and how it was chosen.

    Class index + 1 when every id fits it; else, for 80 names, the COCO 80 -> 91 map when
    every id is a COCO id; else the class index itself when every id fits that. Ids that fit
    none of them keep the index + 1 numbering (the reader then names the unknown id).

    Returns:
        the mapping and a one-line note for the import report.
    """
    ids = set(category_ids)
    plus_one = {index + 1: name for index, name in enumerate(class_names)}
    count = len(class_names)
    if ids <= set(plus_one):
        return plus_one, f"category ids read as class index + 1 (1..{count})"
    if count == len(COCO80_TO_COCO91) and ids <= set(COCO80_TO_COCO91):
        coco = dict(zip(COCO80_TO_COCO91, class_names))
        return coco, (
            f"category ids up to {max(ids)} exceed the {count} classes: read through the "
            "COCO 80 -> 91 id map (Ultralytics coco80_to_coco91_class)"
        )
    if ids <= set(range(count)):
        index = dict(enumerate(class_names))
        return index, "category ids start at 0: read as the class index (Ultralytics < 8.1)"
    return plus_one, f"category ids read as class index + 1 (1..{count})"
