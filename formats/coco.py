"""COCO JSON: ground-truth files, result (detection) files and image-id lists.

Pure file-to-records code: no FiftyOne, no evaluation. Structural problems raise
:class:`FormatError` naming the file (and the line for JSON syntax errors and id lists).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import FormatError

__all__ = ["read_coco_ground_truth", "read_coco_results", "read_image_ids", "read_json"]


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
