"""Recognising a label format from the files themselves (``--gt-format auto``).

A JSON file is COCO ground truth (an object with ``images``, ``annotations``,
``categories``) or a results list: ``ultralytics`` when image ids are strings (file stems),
``coco`` when they are integers. A folder of ``.xml`` files is Pascal VOC. A folder of
``.txt`` files is recognised from its lines by column count and content: 15/16 numeric
columns after the class -> KITTI/TAO, ``int cx cy w h [score]`` normalised to [0, 1] -> YOLO,
``name [confidence] left top right bottom`` in pixels -> ``txt``. The format most sampled lines
fit wins; a tie is an error asking for the explicit format.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from detection_debugger.formats.coco import read_json
from detection_debugger.formats.corner_txt import DIFFICULT
from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.numbers import parse_decimal
from detection_debugger.formats.text_files import files_in_order, read_text_lines

__all__ = ["detect_format", "line_formats"]

SAMPLED_LINES = 2000  # lines read to recognise a .txt folder
_NORMALISED_SLACK = 0.01  # YOLO values may stray this far outside [0, 1]
_NOT_LABELS = ("classes.txt", "obj.names")
_LAYOUTS = {
    "kitti": "KITTI, class + 14 numbers",
    "tao": "TAO/KITTI, class + 14 or 15 numbers",
    "yolo": "YOLO 'class cx cy w h', normalised",
    "txt": "'class [confidence] left top right bottom' in pixels",
}


def _float(text: str) -> float | None:
    try:
        return parse_decimal(text)
    except ValueError:
        return None


def _fits_corners(cols: list[str], numbers: list, predictions: bool) -> bool:
    if predictions:
        box = numbers[2:6] if len(cols) == 6 and numbers[1] is not None else []
    elif len(cols) == 5 or (len(cols) == 6 and cols[5].casefold() == DIFFICULT):
        box = numbers[1:5]
    else:
        box = []
    if len(box) != 4 or any(v is None for v in box):
        return False
    left, top, right, bottom = box
    return right >= left and bottom >= top


def line_formats(cols: list[str], predictions: bool) -> set[str]:
    """The formats one label line (split into columns) is consistent with."""
    numbers = [_float(c) for c in cols]
    fits = set()
    if all(v is not None for v in numbers[1:]):
        if len(cols) == 15 or (predictions and len(cols) == 16):
            fits.add("tao" if predictions else "kitti")
        low, high = -_NORMALISED_SLACK, 1 + _NORMALISED_SLACK
        if (
            cols[0].isascii()
            and cols[0].isdigit()
            and len(cols) in ((5, 6) if predictions else (5,))
            and all(low <= v <= high for v in numbers[1:5])
        ):
            fits.add("yolo")
    if _fits_corners(cols, numbers, predictions):
        fits.add("txt")
    return fits


def _flag(predictions: bool) -> str:
    return "--pred-format" if predictions else "--gt-format"


def _detect_json(path: Path, predictions: bool) -> tuple[str, str]:
    flag = _flag(predictions)
    if path.suffix.lower() != ".json":
        raise FormatError(
            str(path), f"not a .json file or a folder of .txt/.xml labels: give {flag}"
        )
    data = read_json(path)
    records = data if isinstance(data, list) else None
    if isinstance(data, dict) and all(
        isinstance(data.get(key), list) for key in ("images", "annotations", "categories")
    ):
        if not predictions:
            return "coco", "a COCO object with images, annotations and categories"
        records = data["annotations"]
    if records is None or not predictions:
        what = (
            "a list of detections, not ground truth"
            if records is not None
            else (f"a JSON {type(data).__name__} that is neither COCO ground truth nor detections")
        )
        raise FormatError(str(path), f"cannot recognise the format: {what}; give {flag}")
    ids = [r.get("image_id") for r in records if isinstance(r, dict)]
    if not ids:
        raise FormatError(str(path), f"no detections to recognise the format from; give {flag}")
    if any(isinstance(i, str) for i in ids):
        return "ultralytics", "a COCO-style results list whose image ids are file stems"
    return "coco", "a COCO results list with integer image ids"


def _sample_lines(files: list[Path]):
    """``(path, line number, columns)`` of the first :data:`SAMPLED_LINES` non-blank lines."""
    count = 0
    for path in files:
        for number, line in enumerate(read_text_lines(path), start=1):
            cols = line.split()
            if cols:
                yield path, number, cols
                count += 1
                if count >= SAMPLED_LINES:
                    return


def _detect_lines(folder: Path, files: list[Path], predictions: bool) -> tuple[str, str]:
    flag = _flag(predictions)
    counts: Counter = Counter()
    total, unfit = 0, None
    for path, number, cols in _sample_lines(files):
        fits = line_formats(cols, predictions)
        counts.update(fits)
        total += 1
        if not fits and unfit is None:
            unfit = (path, number, len(cols))
    if total == 0:
        raise FormatError(str(folder), f"every .txt file is empty: give {flag}")
    if not counts:
        path, number, columns = unfit
        raise FormatError(
            str(path),
            f"no known label format has lines like this one ({columns} columns); give {flag}",
            line=number,
        )
    best = max(counts.values())
    winners = sorted(name for name, count in counts.items() if count == best)
    if len(winners) > 1:
        raise FormatError(
            str(folder),
            f"ambiguous: the {total} sampled lines fit {' and '.join(winners)} "
            f"equally well; give {flag} {winners[0]} (or another)",
        )
    chosen = winners[0]
    return chosen, (
        f"{best} of {total} sampled lines of {len(files)} .txt files read as {_LAYOUTS[chosen]}"
    )


def detect_format(path: str | os.PathLike, predictions: bool) -> tuple[str, str]:
    """The format of a label file or folder, and why it was chosen (one line).

    Raises:
        FormatError: the path is missing, nothing fits, or several formats fit equally.
    """
    path = Path(path)
    if not path.is_dir():
        if not os.path.lexists(path):
            raise FormatError(str(path), "not found")
        return _detect_json(path, predictions)  # read through text_files: FIFOs etc. refused
    xml = files_in_order(path, "*.xml")
    txt = [p for p in files_in_order(path, "*.txt") if p.name not in _NOT_LABELS]
    if xml and txt:
        raise FormatError(
            str(path),
            f"ambiguous: {len(xml)} .xml and {len(txt)} .txt label files; "
            f"give {_flag(predictions)}",
        )
    if xml and predictions:
        raise FormatError(
            str(path), "a folder of .xml files (Pascal VOC) is ground truth, not predictions"
        )
    if xml:
        return "voc", f"{len(xml)} Pascal VOC .xml files"
    if not txt:
        raise FormatError(str(path), "no .txt or .xml label files in the folder")
    return _detect_lines(path, txt, predictions)
