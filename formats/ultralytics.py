"""Ultralytics ``predictions.json`` (``yolo val save_json=True``) and other COCO-style result
lists whose image ids are file stems.

Each record is ``{image_id, category_id, bbox: [x, y, w, h] pixels, score}``. ``image_id`` is
the image's file stem: a string, or an integer when the stem is numeric (Ultralytics writes
``int(stem) if stem.isnumeric() else stem``: ``000123.jpg`` -> ``123``). Category ids are
named by the ground truth's COCO categories when there are any, else by a class names list
(:mod:`.category_ids` picks the numbering).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from detection_debugger.formats.category_ids import category_names_from_class_names
from detection_debugger.formats.coco import coco_records_to_objects, read_coco_results
from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.image_ids import ImageJoin, integer_id
from detection_debugger.formats.records import ImageObjects, ReadReport, note_scores_above_one

__all__ = ["read_ultralytics_predictions"]


def _category_ids(records: list) -> set[int]:
    ids = set()
    for record in records:
        if isinstance(record, dict):
            try:
                ids.add(integer_id(record.get("category_id")))
            except ValueError:
                pass  # reported with the record's row by the reader
    return ids


def read_ultralytics_predictions(
    path: str | os.PathLike,
    image_stems: Iterable[str],
    class_names: list[str] | None = None,
    categories: dict[int, str] | None = None,
    skip_invalid: bool = False,
) -> tuple[list[ImageObjects], ReadReport]:
    """Reads a results list keyed by file stem into per-image records.

    Args:
        path: the JSON file (a list; an object with an ``annotations`` list is accepted too).
        image_stems: stems of the images the ids may name (``000123`` for ``000123.jpg``).
        class_names: names of the model's classes (``data.yaml`` / ``classes.txt``).
        categories: ``{category id: name}`` of COCO ground truth; used instead of
            ``class_names`` when given.
        skip_invalid: report bad records and go on, instead of raising on the first.

    Raises:
        FormatError: ``PATH: detections[ROW]: what is wrong``, or neither categories nor
            class names.
    """
    path = str(path)
    records = read_coco_results(path)
    report = ReadReport(files=1)
    if categories:
        names = dict(categories)
        report.notes.append("category ids joined to the COCO ground truth's categories")
    elif class_names:
        names, note = category_names_from_class_names(_category_ids(records), class_names)
        report.notes.append(note)
    else:
        raise FormatError(
            path,
            "category ids need the class names (--class-names data.yaml or classes.txt: "
            "category id = class index + 1) or COCO ground truth in the same import",
        )
    join = ImageJoin(image_stems)
    images = coco_records_to_objects(records, join, names, path, report, True, skip_invalid)
    note_scores_above_one(images, report)
    return images, report
