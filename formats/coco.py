"""COCO JSON: ground-truth files, result (detection) files and image-id lists.

Pure file-to-records code: no FiftyOne, no evaluation. Structural problems raise
:class:`FormatError` naming the file (and the line for JSON syntax errors and id lists).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.image_ids import ImageJoin, image_id_key, integer_id
from detection_debugger.formats.records import (
    ImageObjects,
    ObjectRecord,
    ReadReport,
    SkippedLine,
    note_scores_above_one,
)
from detection_debugger.formats.text_files import check_name, load_json, read_text_lines

__all__ = [
    "check_coco_ground_truth",
    "coco_category_names",
    "coco_image_stems",
    "coco_records_to_objects",
    "read_coco_ground_truth",
    "read_coco_objects",
    "read_coco_result_objects",
    "read_coco_results",
    "read_image_ids",
    "read_json",
    "write_coco",
]


def read_json(path: str | os.PathLike) -> Any:
    """Parses a JSON file (:func:`.text_files.load_json`: UTF-8 with or without a BOM; a
    missing or unreadable file, a syntax error or a key written twice raises
    :class:`FormatError`)."""
    return load_json(path)


def read_coco_ground_truth(path: str | os.PathLike) -> dict:
    """Reads a COCO ground-truth file: an object with ``images``, ``annotations``, ``categories``."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, f"expected a COCO object, got a JSON {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise FormatError(path, f"missing the '{key}' list of a COCO ground-truth file")
        if not isinstance(data[key], list):
            raise FormatError(path, f"'{key}' must be a list, got {type(data[key]).__name__}")
    return data


def read_coco_results(path: str | os.PathLike) -> list[dict]:
    """Reads a COCO results file: a list of ``{image_id, category_id, bbox, score}``.

    An object with an ``annotations`` list (what some exporters write) is accepted too.
    """
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise FormatError(path, f"expected a list of detections, got a JSON {type(data).__name__}")
    return data


_INTEGER = re.compile(r"[+-]?[0-9]+")


def read_image_ids(path: str | os.PathLike) -> list[int]:
    """Reads image ids, one a line; blank lines and ``#`` comments are skipped."""
    ids = []
    for number, line in enumerate(read_text_lines(path), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not _INTEGER.fullmatch(text):
            raise FormatError(path, f"not an integer image id: {text!r}", line=number)
        ids.append(int(text))
    return ids


def _problem(record: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    for key in keys:
        if key not in record:
            return f"missing '{key}'"
    bbox = record.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            if isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_real, bbox)):
                return f"'bbox' values must be finite numbers, got {bbox!r}"
            return f"'bbox' must be a list of 4 numbers, got {bbox!r}"
        if bbox[2] < 0 or bbox[3] < 0:
            return f"bbox {bbox} has a negative width or height"
    for key in ("score", "area"):
        if key in record and (key in keys or key == "area"):
            problem = _number_problem(key, record[key])
            if problem:
                return problem
    if "iscrowd" in record and record["iscrowd"] not in (0, 1):  # True == 1, False == 0
        return f"'iscrowd' must be 0 or 1, got {record['iscrowd']!r}"
    return None


def _number_problem(key: str, value: Any) -> str | None:
    if not _is_real(value):
        return f"'{key}' must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"'{key}' must be a finite number, got {value!r}"
    if key == "area" and value < 0:
        return f"'area' must not be negative, got {value!r}"
    return None


def _integer_problem(record: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in record:
            try:
                integer_id(record[key])
            except ValueError:
                return f"'{key}' must be an integer, got {record[key]!r}"
    return None


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_real(value) and math.isfinite(value)


def _image_ids(data: dict, path: str, keys=("id",), integers=False) -> dict[int | str, int]:
    """``{image id: row}`` of a COCO file's ``images`` (``integers``: 64-bit integer ids
    only); an invalid or repeated id raises (a repeated id would put one image's annotations
    on another)."""
    rows: dict[int | str, int] = {}
    for row, image in enumerate(data.get("images", [])):
        problem = _problem(image, keys)
        if problem is None:
            try:
                key = integer_id(image["id"]) if integers else image_id_key(image["id"])
            except ValueError:
                kind = "a 64-bit integer" if integers else "an integer or a string"
                problem = f"'id' must be {kind}, got {image['id']!r}"
            else:
                if key in rows:
                    problem = f"image id {image['id']!r} is also images[{rows[key]}]"
                rows.setdefault(key, row)
        if problem:
            raise FormatError(path, f"images[{row}]: {problem}")
    return rows


def coco_image_stems(data: dict, path: str) -> dict[int | str, str]:
    """``{image id: file stem}`` of a COCO file's ``images`` list (ids are integers or
    strings). Repeated ids, and two ids naming the same file stem, raise."""
    stems: dict[int | str, str] = {}
    rows: dict[str, int] = {}
    images = data.get("images", [])
    for key, row in _image_ids(data, path, ("id", "file_name")).items():
        name = images[row]["file_name"]
        if not isinstance(name, str) or not name.strip():
            raise FormatError(path, f"images[{row}]: 'file_name' must be a file name, got {name!r}")
        stem = PurePosixPath(name.replace("\\", "/")).stem
        if stem in rows:
            raise FormatError(
                path,
                f"images[{row}]: file stem {stem!r} is also images[{rows[stem]}] (labels "
                "are joined to images by file stem)",
            )
        rows[stem] = row
        stems[key] = stem
    return stems


def coco_category_names(data: dict, path: str) -> dict[int, str]:
    """``{category id: name}`` of a COCO file's ``categories`` list; a repeated id or a name
    with control characters raises."""
    names: dict[int, str] = {}
    rows: dict[int, int] = {}
    for row, category in enumerate(data.get("categories", [])):
        problem = _problem(category, ("id", "name")) or _integer_problem(category, ("id",))
        if problem is None:
            key = integer_id(category["id"])
            name = category["name"]
            if key in rows:
                problem = f"category id {category['id']!r} is also categories[{rows[key]}]"
            elif isinstance(name, bool) or not isinstance(name, (str, int)):
                problem = f"'name' must be a string, got {name!r}"
        if problem:
            raise FormatError(path, f"categories[{row}]: {problem}")
        rows[key] = row
        names[key] = check_name(str(name), path, what=f"categories[{row}]: name")
    return names


def _duplicate_annotation_ids(records: list) -> list[tuple[int, int, int]]:
    """``(row, id, first row)`` of annotations whose ``id`` an earlier one already has."""
    first: dict[int, int] = {}
    repeated = []
    for row, record in enumerate(records):
        if isinstance(record, dict) and "id" in record:
            try:
                key = integer_id(record["id"])
            except ValueError:
                continue
            if key in first:
                repeated.append((row, key, first[key]))
            first.setdefault(key, row)
    return repeated


_INT64_MIN, _INT64_END = -(2**63), 2**63


def _plain_number(value: Any) -> bool:
    return (type(value) is float or type(value) is int) and math.isfinite(value)


def _plain_annotation(record: Any) -> bool:
    """The common valid annotation, at a glance: an object with integer ``id``,
    ``image_id``, ``category_id`` within 64 bits, a list of 4 finite numbers with a width and
    height >= 0, and, if present, a finite ``area`` >= 0 and ``iscrowd`` 0/1. Everything it
    accepts, :func:`_problem` and :func:`_integer_problem` accept too; everything else gets
    them (and their messages)."""
    if type(record) is not dict:
        return False
    try:
        bbox = record["bbox"]
        for key in ("id", "image_id", "category_id"):
            value = record[key]
            if type(value) is not int or not _INT64_MIN <= value < _INT64_END:
                return False
        if type(bbox) is not list or len(bbox) != 4 or not all(map(_plain_number, bbox)):
            return False
        if bbox[2] < 0 or bbox[3] < 0:
            return False
        if "area" in record and not (_plain_number(record["area"]) and record["area"] >= 0):
            return False
    except (KeyError, OverflowError):  # OverflowError: an integer beyond a float
        return False
    return "iscrowd" not in record or record["iscrowd"] in (0, 1)


def _first_duplicate_id(records: list, plain: bool) -> tuple[int, int, int] | None:
    """``(row, id, first row)`` of the first repeated annotation id, or None; ``plain``:
    every record passed :func:`_plain_annotation` (ids are int64: checked with numpy)."""
    if plain:
        ids = np.fromiter((record["id"] for record in records), np.int64, len(records))
        if len(np.unique(ids)) == len(ids):
            return None
    repeated = _duplicate_annotation_ids(records)
    return repeated[0] if repeated else None


def check_coco_ground_truth(data: dict, path: str) -> None:
    """What ``evaluate`` checks in COCO ground truth beyond the engine's own record checks:
    valid, unique, 64-bit integer image ids; valid, unique category ids and names; every annotation's
    ``area`` (finite, >= 0), ``iscrowd`` (0/1) and box (finite); unique annotation ids.

    Raises:
        FormatError: ``PATH: images[ROW]|categories[ROW]|annotations[ROW]: what is wrong``.
    """
    _image_ids(data, path, integers=True)
    coco_category_names(data, path)
    plain = True
    for row, record in enumerate(data["annotations"]):
        if _plain_annotation(record):
            continue
        plain = False
        problem = _problem(record, ("id", "image_id", "category_id", "bbox"))
        problem = problem or _integer_problem(record, ("id", "image_id", "category_id"))
        if problem:
            raise FormatError(path, f"annotations[{row}]: {problem}")
    repeated = _first_duplicate_id(data["annotations"], plain)
    if repeated:
        row, key, first = repeated
        raise FormatError(
            path, f"annotations[{row}]: annotation id {key} is also annotations[{first}]"
        )


def _record_problem(record, keys, join: ImageJoin, names) -> str | None:
    problem = _problem(record, keys) or _integer_problem(record, ("id", "category_id"))
    if problem is None:
        try:
            join.stem_of(record["image_id"])
        except LookupError as error:
            problem = str(error.args[0])
    if problem is None and integer_id(record["category_id"]) not in names:
        problem = f"unknown category id {record['category_id']!r} ({_known_ids(names)})"
    return problem


def _known_ids(names: dict[int, str]) -> str:
    ids = sorted(names)
    if ids and ids == list(range(ids[0], ids[-1] + 1)):
        return f"known ids: {ids[0]}..{ids[-1]}"
    return f"{len(ids)} known ids"


def _object(record, keys, join: ImageJoin, names, path, row) -> tuple[str, ObjectRecord]:
    x, y, w, h = (float(v) for v in record["bbox"])
    attributes = {}
    if "id" in record:
        attributes["coco_id"] = integer_id(record["id"])
    if "area" in record:
        attributes["area"] = float(record["area"])
    return join.stem_of(record["image_id"]), ObjectRecord(
        label=names[integer_id(record["category_id"])],
        box=(x, y, x + w, y + h),
        score=float(record["score"]) if "score" in keys else None,
        crowd=bool(record.get("iscrowd", 0)),
        attributes=attributes,
        source=(path, row),
    )


def coco_records_to_objects(
    records: list,
    join: ImageJoin,
    names: dict[int, str],
    path: str,
    report: ReadReport,
    predictions: bool,
    skip_invalid: bool = False,
) -> list[ImageObjects]:
    """COCO annotation or detection records to per-image objects (every image of ``join``).

    A bad record raises :class:`FormatError` ``PATH: detections[ROW]: what is wrong`` (or
    ``annotations[ROW]``), or is skipped and reported with ``skip_invalid``.
    """
    what = "detections" if predictions else "annotations"
    keys = ("image_id", "category_id", "bbox", "score")[: 4 if predictions else 3]
    by_stem: dict[str, ImageObjects] = {s: ImageObjects(stem=s) for s in join.stems}
    for row, record in enumerate(records):
        problem = _record_problem(record, keys, join, names)
        if problem:
            if not skip_invalid:
                raise FormatError(path, f"{what}[{row}]: {problem}")
            report.skipped.append(SkippedLine(path, row, f"{what}[{row}]: {problem}"))
            continue
        stem, obj = _object(record, keys, join, names, path, row)
        by_stem[stem].objects.append(obj)
    return sorted(by_stem.values(), key=lambda image: image.stem)


def read_coco_objects(path: str | os.PathLike, skip_invalid: bool = False):
    """Reads a COCO ground-truth file into per-image records.

    Returns ``(images, report, stems, names)``: the objects of every image of the file,
    the read report, ``{image id: stem}`` and ``{category id: name}``.
    """
    path = str(path)
    data = read_coco_ground_truth(path)
    stems, names = coco_image_stems(data, path), coco_category_names(data, path)
    report = ReadReport(files=1)
    join = ImageJoin((), ids=stems)
    images = coco_records_to_objects(
        data["annotations"], join, names, path, report, False, skip_invalid
    )
    repeated = _duplicate_annotation_ids(data["annotations"])
    if repeated:
        shown = ", ".join(
            f"{key} (annotations[{first}] and [{row}])" for row, key, first in repeated[:3]
        )
        more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
        report.notes.append(
            f"annotation ids written more than once: {shown}{more}; all imported, the "
            "'coco_id' attribute is not unique"
        )
    return images, report, stems, names


def read_coco_result_objects(
    path: str | os.PathLike,
    stems: dict[int | str, str],
    names: dict[int, str],
    skip_invalid: bool = False,
):
    """Reads a COCO results file into per-image records, joined through ``stems``/``names``
    (from the ground-truth file or an images JSON). Image ids that are not in ``stems`` may
    also be the image's file stem or file name (``"000123"``, ``"000123.jpg"``).
    Returns ``(images, report)``."""
    path = str(path)
    report = ReadReport(files=1)
    join = ImageJoin((), ids=stems)
    images = coco_records_to_objects(
        read_coco_results(path), join, names, path, report, True, skip_invalid
    )
    note_scores_above_one(images, report)
    return images, report


def write_coco(images, image_sizes, class_names, file_names, with_score: bool) -> dict:
    """A COCO document of per-image records (ids 1..N in the given order).

    Args:
        images: ``ImageObjects`` to write.
        image_sizes: ``{stem: (width, height)}``.
        class_names: category names (ids 1..K in this order).
        file_names: ``{stem: file name}`` written as ``file_name``.
        with_score: write each object's ``score`` too.
    """
    from detection_debugger.formats.numbers import format_number

    def num(v: float) -> float:
        return float(format_number(v))

    category = {name: i + 1 for i, name in enumerate(class_names)}
    out_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        width, height = image_sizes[image.stem]
        out_images.append(
            {"id": image_id, "file_name": file_names[image.stem], "width": width, "height": height}
        )
        for r in image.objects:
            x1, y1, x2, y2 = r.box
            w, h = num(x2 - x1), num(y2 - y1)
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category[r.label],
                "bbox": [num(x1), num(y1), w, h],
                "area": r.attributes.get("area", num(w * h)),
                "iscrowd": int(r.crowd),
            }
            if with_score:
                ann["score"] = r.score if r.score is not None else 1.0
            annotations.append(ann)
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in category.items()],
    }
