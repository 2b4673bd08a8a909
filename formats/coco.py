"""COCO JSON: ground-truth files, result (detection) files and image-id lists.

Pure file-to-records code: no FiftyOne, no evaluation. Structural problems raise
:class:`FormatError` naming the file (and the line for JSON syntax errors and id lists).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import PurePosixPath
from typing import Any

from .errors import FormatError
from .image_ids import ImageJoin, image_id_key, integer_id
from .records import ImageObjects, ObjectRecord, ReadReport, SkippedLine, note_scores_above_one

__all__ = [
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
    """Parses a JSON file; a missing file or a syntax error raises :class:`FormatError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FormatError(path, "is a directory, expected a JSON file") from None
    except UnicodeDecodeError as error:
        raise FormatError(path, f"not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise FormatError(
            path, f"invalid JSON: {error.msg} (column {error.colno})", line=error.lineno
        ) from None


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


def read_image_ids(path: str | os.PathLike) -> list[int]:
    """Reads image ids, one a line; blank lines and ``#`` comments are skipped."""
    ids = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                try:
                    ids.append(int(text))
                except ValueError:
                    raise FormatError(
                        path, f"not an integer image id: {text!r}", line=number
                    ) from None
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
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
            return f"'bbox' must be a list of 4 numbers, got {bbox!r}"
        if bbox[2] < 0 or bbox[3] < 0:
            return f"bbox {bbox} has a negative width or height"
    if "score" in keys and not _is_number(record["score"]):
        return f"'score' must be a number, got {record['score']!r}"
    if "area" in record and not _is_number(record["area"]):
        return f"'area' must be a number, got {record['area']!r}"
    return None


def _integer_problem(record: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in record:
            try:
                integer_id(record[key])
            except ValueError:
                return f"'{key}' must be an integer, got {record[key]!r}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def coco_image_stems(data: dict, path: str) -> dict[int | str, str]:
    """``{image id: file stem}`` of a COCO file's ``images`` list (ids are integers or
    strings)."""
    stems = {}
    for row, image in enumerate(data.get("images", [])):
        problem = _problem(image, ("id", "file_name"))
        if problem is None:
            try:
                stems[image_id_key(image["id"])] = PurePosixPath(
                    str(image["file_name"]).replace("\\", "/")
                ).stem
            except ValueError:
                problem = f"'id' must be an integer or a string, got {image['id']!r}"
        if problem:
            raise FormatError(path, f"images[{row}]: {problem}")
    return stems


def coco_category_names(data: dict, path: str) -> dict[int, str]:
    """``{category id: name}`` of a COCO file's ``categories`` list."""
    names = {}
    for row, category in enumerate(data.get("categories", [])):
        problem = _problem(category, ("id", "name")) or _integer_problem(category, ("id",))
        if problem:
            raise FormatError(path, f"categories[{row}]: {problem}")
        names[integer_id(category["id"])] = str(category["name"])
    return names


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
    from .numbers import format_number

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
