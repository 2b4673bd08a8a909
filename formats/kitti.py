"""KITTI object labels and TAO inference output (KITTI lines with a confidence column).

A KITTI line: ``class truncation occlusion alpha x1 y1 x2 y2 h w l x y z rotation_y``
(15 columns). TAO ``inference`` writes the same with the confidence appended (16 columns);
some writers emit 15 columns with the confidence in the last one. Confidences are read from
the last column of prediction files, in any float notation (``0``, ``0.93``, ``9.8e-20``).
``DontCare`` ground truth is an ignore region, not an object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.numbers import format_number as _fmt
from detection_debugger.formats.numbers import parse_column as _number
from detection_debugger.formats.progress import files_read
from detection_debugger.formats.records import ImageObjects, ObjectRecord, ReadReport, SkippedLine
from detection_debugger.formats.text_files import check_name, files_in_order, read_text_lines

__all__ = [
    "DONT_CARE",
    "format_kitti_line",
    "parse_kitti_line",
    "read_kitti_folder",
    "write_kitti_folder",
]

DONT_CARE = "DontCare"


# After the class, a line of plain ASCII decimals separated by spaces or tabs is parsed by
# ``float`` alone (the common case): with only these characters, ``float`` takes exactly the
# plain decimals (no ``1_0``, ``nan``, Unicode digits) and refuses the rest. Any other line
# takes the checked path, which gives the same objects or names the file, line and column of
# the problem.
_PLAIN_CHARACTERS = str.maketrans("", "", "0123456789.+-eE \t")


def parse_kitti_line(text: str, path: str, line: int, predictions: bool) -> ObjectRecord:
    """Parses one KITTI (``predictions=False``) or TAO prediction line.

    Raises:
        FormatError: naming the file, line and what is wrong.
    """
    cols = text.split()
    label = cols[0] if cols else ""
    if (len(cols) == 15 or predictions and len(cols) == 16) and label.isprintable():
        rest = text[text.index(label) + len(label) :]
        try:
            values = list(map(float, cols[1:])) if not rest.translate(_PLAIN_CHARACTERS) else ()
        except ValueError:  # "1e", "+-1", "..."
            values = ()
        # One sum tells all values are finite (an overflow or a NaN takes the checked path).
        if values and math.isfinite(sum(values)):
            if values[5] >= values[3] and values[6] >= values[4]:
                return _record(label, values, predictions, path, line)
    return _parse_checked(text, cols, path, line, predictions)


def _record(label: str, values: list, predictions: bool, path: str, line: int) -> ObjectRecord:
    """The object of a line whose columns after the class are ``values`` (checked)."""
    attributes: dict = {
        "truncated": values[0],
        "occluded": values[1],
        "alpha": values[2],
        "dimensions": values[7:10],
        "location": values[10:13],
    }
    score = None
    if predictions:
        score = values[-1]
        if len(values) == 15:
            attributes["rotation_y"] = values[13]
    else:
        attributes["rotation_y"] = values[13]
    return ObjectRecord(
        label=label,
        box=(values[3], values[4], values[5], values[6]),
        score=score,
        crowd=(not predictions and label == DONT_CARE),
        attributes=attributes,
        source=(path, line),
    )


def _parse_checked(text: str, cols: list, path: str, line: int, predictions: bool):
    """:func:`parse_kitti_line` column by column, with the error of the first bad one."""
    allowed = (15, 16) if predictions else (15,)
    if len(cols) not in allowed:
        expected = "15 or 16" if predictions else "15"
        raise FormatError(
            path, f"expected {expected} columns, found {len(cols)}: {text.strip()!r}", line=line
        )
    names = ("x1", "y1", "x2", "y2")
    x1, y1, x2, y2 = (_number(cols[4 + i], path, line, 5 + i, names[i]) for i in range(4))
    if x2 < x1:
        raise FormatError(path, f"x2 ({x2:g}) < x1 ({x1:g})", line=line)
    if y2 < y1:
        raise FormatError(path, f"y2 ({y2:g}) < y1 ({y1:g})", line=line)
    values = [_number(cols[1], path, line, 2, "truncation")]
    values.append(_number(cols[2], path, line, 3, "occlusion"))
    values.append(_number(cols[3], path, line, 4, "alpha"))
    values += [x1, y1, x2, y2]
    values += [_number(cols[8 + i], path, line, 9 + i, "dimensions") for i in range(3)]
    values += [_number(cols[11 + i], path, line, 12 + i, "location") for i in range(3)]
    score = _number(cols[-1], path, line, len(cols), "confidence") if predictions else None
    if len(cols) == 16 or not predictions:
        values.append(_number(cols[14], path, line, 15, "rotation_y"))
    if predictions:
        values.append(score)
    return _record(check_name(cols[0], path, line), values, predictions, path, line)


def read_kitti_folder(
    folder: str | os.PathLike, predictions: bool, skip_invalid: bool = False, progress=None
) -> tuple[list[ImageObjects], ReadReport]:
    """Reads every ``<stem>.txt`` of a folder.

    Args:
        folder: the labels folder (TAO: the ``labels`` folder of an inference run).
        predictions: prediction files (confidence in the last column) or ground truth.
        skip_invalid: report malformed lines and go on, instead of raising on the first.
        progress: a :data:`~detection_debugger.formats.progress.Progress` callback, told
            per batch of files read.

    Returns:
        The objects of every file (sorted by stem) and a report (skipped lines, notes).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(str(folder), "not a folder of KITTI .txt files")
    report = ReadReport()
    images = []
    max_score = -math.inf
    for path in files_read(files_in_order(folder, "*.txt"), progress):
        report.files += 1
        image = ImageObjects(stem=path.stem)
        name = str(path)
        for number, line in enumerate(read_text_lines(path), start=1):
            if not line.strip():
                continue
            try:
                record = parse_kitti_line(line, name, number, predictions)
            except FormatError as error:
                if not skip_invalid:
                    raise
                report.skipped.append(SkippedLine(str(path), number, error.reason))
                continue
            if record.score is not None:
                max_score = max(max_score, record.score)
            image.objects.append(record)
        images.append(image)
    if predictions and max_score > 1:
        report.notes.append(
            f"confidences up to {max_score:g} exceed 1 (DetectNet_v2 coverage values); "
            "kept as written"
        )
    return images, report


def format_kitti_line(record: ObjectRecord, with_score: bool) -> str:
    """One KITTI line (15 columns), plus the confidence (16th) when ``with_score``."""
    a = record.attributes
    dims = a.get("dimensions") or [0, 0, 0]
    loc = a.get("location") or [0, 0, 0]
    label = DONT_CARE if record.crowd else record.label
    cols = [
        label.replace(" ", "_"),
        _fmt(a.get("truncated", 0.0)),
        _fmt(a.get("occluded", 0)),
        _fmt(a.get("alpha", 0.0)),
        *(_fmt(v) for v in record.box),
        *(_fmt(v) for v in dims),
        *(_fmt(v) for v in loc),
        _fmt(a.get("rotation_y", 0.0)),
    ]
    if with_score:
        cols.append(_fmt(record.score if record.score is not None else 1.0))
    return " ".join(cols)


def write_kitti_folder(
    folder: str | os.PathLike, images: Iterable[ImageObjects], with_score: bool
) -> int:
    """Writes ``<stem>.txt`` for every image (empty files for images without objects)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for image in images:
        lines = [format_kitti_line(r, with_score) for r in image.objects]
        (folder / f"{image.stem}.txt").write_text("".join(f"{x}\n" for x in lines))
        count += 1
    return count
