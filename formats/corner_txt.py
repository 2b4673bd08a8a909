"""Plain corner-box text files (``--gt-format txt`` / ``--pred-format txt``).

One ``<stem>.txt`` per image, one object a line, pixel coordinates of the box corners:
``class left top right bottom`` for ground truth, with an optional trailing ``difficult``
(the object becomes an ignore region, like COCO ``iscrowd``), and
``class confidence left top right bottom`` for predictions. Class names contain no spaces.
This is the layout of the Cartucho/mAP tool and of many detectors' text dumps.
"""

from __future__ import annotations

import os
from pathlib import Path

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.numbers import parse_column
from detection_debugger.formats.progress import files_read
from detection_debugger.formats.records import (
    ImageObjects,
    ObjectRecord,
    ReadReport,
    SkippedLine,
    note_scores_above_one,
)
from detection_debugger.formats.text_files import check_name, files_in_order, read_text_lines

__all__ = ["DIFFICULT", "parse_corner_line", "read_corner_txt_folder"]

DIFFICULT = "difficult"
_NOT_LABELS = ("classes.txt", "obj.names")
_GT_LAYOUT = "class left top right bottom [difficult]"
_PRED_LAYOUT = "class confidence left top right bottom"


def _check_columns(cols: list[str], path: str, line: int, predictions: bool) -> None:
    if predictions and len(cols) != 6:
        raise FormatError(
            path, f"expected 6 columns ({_PRED_LAYOUT}), found {len(cols)}", line=line
        )
    if not predictions and len(cols) not in (5, 6):
        raise FormatError(
            path, f"expected 5 or 6 columns ({_GT_LAYOUT}), found {len(cols)}", line=line
        )
    if not predictions and len(cols) == 6 and cols[5].casefold() != DIFFICULT:
        raise FormatError(path, f"column 6 must be 'difficult', found {cols[5]!r}", line=line)


def parse_corner_line(text: str, path: str, line: int, predictions: bool) -> ObjectRecord:
    """Parses one ground-truth (``predictions=False``) or prediction line.

    Raises:
        FormatError: naming the file, line and what is wrong.
    """
    cols = text.split()
    _check_columns(cols, path, line, predictions)
    first = 2 if predictions else 1
    names = ("left", "top", "right", "bottom")
    left, top, right, bottom = (
        parse_column(cols[first + i], path, line, first + i + 1, names[i]) for i in range(4)
    )
    if right < left:
        raise FormatError(path, f"right ({right:g}) < left ({left:g})", line=line)
    if bottom < top:
        raise FormatError(path, f"bottom ({bottom:g}) < top ({top:g})", line=line)
    score = parse_column(cols[1], path, line, 2, "confidence") if predictions else None
    return ObjectRecord(
        label=check_name(cols[0], path, line),
        box=(left, top, right, bottom),
        score=score,
        crowd=not predictions and len(cols) == 6,
        source=(path, line),
    )


def read_corner_txt_folder(
    folder: str | os.PathLike, predictions: bool, skip_invalid: bool = False, progress=None
) -> tuple[list[ImageObjects], ReadReport]:
    """Reads every ``<stem>.txt`` of a folder (``classes.txt`` / ``obj.names`` are not
    label files). Blank lines and CRLF line ends are accepted. ``progress`` (a
    :data:`~detection_debugger.formats.progress.Progress`) is told per batch of files.

    Returns:
        The objects of every file (sorted by stem) and a report (skipped lines, notes).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(str(folder), "not a folder of .txt label files")
    report = ReadReport()
    images = []
    for path in files_read(files_in_order(folder, "*.txt"), progress):
        if path.name in _NOT_LABELS:
            continue
        report.files += 1
        image = ImageObjects(stem=path.stem)
        for number, line in enumerate(read_text_lines(path), start=1):
            if not line.strip():
                continue
            try:
                image.objects.append(parse_corner_line(line, str(path), number, predictions))
            except FormatError as error:
                if not skip_invalid:
                    raise
                report.skipped.append(SkippedLine(str(path), number, error.reason))
        images.append(image)
    if predictions:
        note_scores_above_one(images, report)
    return images, report
