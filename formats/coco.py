"""COCO JSON: ground-truth files, result (detection) files and image-id lists.

Pure file-to-records code: no FiftyOne, no evaluation. Structural problems raise
:class:`FormatError` naming the file (and the line for JSON syntax errors and id lists).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import FormatError

__all__ = [
    "coco_category_names",
    "coco_image_stems",
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
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            return f"'bbox' must be a list of 4 numbers, got {bbox!r}"
        if bbox[2] < 0 or bbox[3] < 0:
            return f"bbox {bbox} has a negative width or height"
    if "score" in keys and (
        isinstance(record["score"], bool) or not isinstance(record["score"], (int, float))
    ):
        return f"'score' must be a number, got {record['score']!r}"
    return None


def coco_image_stems(data: dict, path: str) -> dict[int, str]:
    """``{image id: file stem}`` of a COCO file's ``images`` list."""
    from pathlib import PurePath

    stems = {}
    for row, image in enumerate(data.get("images", [])):
        problem = _problem(image, ("id", "file_name"))
        if problem:
            raise FormatError(path, f"images[{row}]: {problem}")
        stems[int(image["id"])] = PurePath(str(image["file_name"])).stem
    return stems


def coco_category_names(data: dict, path: str) -> dict[int, str]:
    """``{category id: name}`` of a COCO file's ``categories`` list."""
    names = {}
    for row, category in enumerate(data.get("categories", [])):
        problem = _problem(category, ("id", "name"))
        if problem:
            raise FormatError(path, f"categories[{row}]: {problem}")
        names[int(category["id"])] = str(category["name"])
    return names


def _to_objects(records, keys, stems, names, path, what, skip_invalid, report):
    from .records import ImageObjects, ObjectRecord, SkippedLine

    by_stem: dict[str, ImageObjects] = {s: ImageObjects(stem=s) for s in stems.values()}
    for row, record in enumerate(records):
        problem = _problem(record, keys)
        if problem is None and int(record["image_id"]) not in stems:
            problem = f"unknown image id {record['image_id']}"
        if problem is None and int(record["category_id"]) not in names:
            problem = f"unknown category id {record['category_id']}"
        if problem:
            if not skip_invalid:
                raise FormatError(path, f"{what}[{row}]: {problem}")
            report.skipped.append(SkippedLine(path, row, f"{what}[{row}]: {problem}"))
            continue
        x, y, w, h = (float(v) for v in record["bbox"])
        attributes = {}
        if "id" in record:
            attributes["coco_id"] = int(record["id"])
        if "area" in record:
            attributes["area"] = float(record["area"])
        by_stem[stems[int(record["image_id"])]].objects.append(
            ObjectRecord(
                label=names[int(record["category_id"])],
                box=(x, y, x + w, y + h),
                score=float(record["score"]) if "score" in keys else None,
                crowd=bool(record.get("iscrowd", 0)),
                attributes=attributes,
                source=(path, row),
            )
        )
    return sorted(by_stem.values(), key=lambda image: image.stem)


def read_coco_objects(path: str | os.PathLike, skip_invalid: bool = False):
    """Reads a COCO ground-truth file into per-image records.

    Returns ``(images, report, stems, names)``: the objects of every image of the file,
    the read report, ``{image id: stem}`` and ``{category id: name}``.
    """
    from .records import ReadReport

    path = str(path)
    data = read_coco_ground_truth(path)
    stems, names = coco_image_stems(data, path), coco_category_names(data, path)
    report = ReadReport(files=1)
    keys = ("image_id", "category_id", "bbox")
    images = _to_objects(
        data["annotations"], keys, stems, names, path, "annotations", skip_invalid, report
    )
    return images, report, stems, names


def read_coco_result_objects(
    path: str | os.PathLike,
    stems: dict[int, str],
    names: dict[int, str],
    skip_invalid: bool = False,
):
    """Reads a COCO results file into per-image records, joined through ``stems``/``names``
    (from the ground-truth file or an images JSON). Returns ``(images, report)``."""
    from .records import ReadReport

    path = str(path)
    report = ReadReport(files=1)
    keys = ("image_id", "category_id", "bbox", "score")
    images = _to_objects(
        read_coco_results(path), keys, stems, names, path, "detections", skip_invalid, report
    )
    max_score = max((o.score for im in images for o in im.objects), default=0.0)
    if max_score > 1:
        report.notes.append(f"confidences up to {max_score:g} exceed 1; kept as written")
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
