"""Pascal VOC XML ground truth: a folder of ``<stem>.xml``, one ``<annotation>`` each.

Objects are ``annotation/object`` with ``name``, ``difficult`` (0/1, optional) and
``bndbox/{xmin, ymin, xmax, ymax}``. Boxes are kept as written (VOC's 1-based pixel
coordinates are not shifted). ``difficult`` objects become ignore regions, like COCO crowd.
Errors name the file and the line of the element that is wrong.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.numbers import parse_decimal
from detection_debugger.formats.progress import files_read
from detection_debugger.formats.records import ImageObjects, ObjectRecord, ReadReport, SkippedLine
from detection_debugger.formats.text_files import check_name, files_in_order, read_bytes

__all__ = ["parse_voc_file", "read_voc_folder"]

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _parse_error(path: str, error: ET.ParseError) -> FormatError:
    line, column = error.position
    reason = str(error).rsplit(": line ", 1)[0]
    return FormatError(path, f"invalid XML: {reason} (column {column + 1})", line=line)


def _parse_with_lines(path: Path) -> tuple[ET.Element, dict[ET.Element, int]]:
    """The XML tree of ``path`` and the line each element starts on (fed line by line, so
    the events read after a line belong to it)."""
    parser = ET.XMLPullParser(events=("start",))
    lines: dict[ET.Element, int] = {}
    root = None
    for number, raw in enumerate(read_bytes(path).splitlines(keepends=True), start=1):
        try:
            parser.feed(raw)
            events = list(parser.read_events())
        except ET.ParseError as error:
            raise _parse_error(str(path), error) from None
        for _, element in events:
            lines[element] = number
            root = element if root is None else root
    try:
        parser.close()
        list(parser.read_events())
    except ET.ParseError as error:
        raise _parse_error(str(path), error) from None
    return root, lines


def _text(parent: ET.Element, tag: str, path: str, lines) -> tuple[str, int]:
    child = parent.find(tag)
    if child is None:
        raise FormatError(path, f"<{parent.tag}> has no <{tag}>", line=lines[parent])
    return (child.text or "").strip(), lines[child]


def _number(parent: ET.Element, tag: str, path: str, lines) -> float:
    text, line = _text(parent, tag, path, lines)
    try:
        value = parse_decimal(text)
    except ValueError:
        raise FormatError(path, f"<{tag}> is not a number: {text!r}", line=line) from None
    if not math.isfinite(value):
        raise FormatError(path, f"<{tag}> is not finite: {text!r}", line=line)
    return value


def _difficult(element: ET.Element, path: str, lines) -> bool:
    if element.find("difficult") is None:
        return False
    text, line = _text(element, "difficult", path, lines)
    if text not in ("0", "1"):
        raise FormatError(path, f"<difficult> must be 0 or 1, found {text!r}", line=line)
    return text == "1"


def _parse_object(element: ET.Element, path: str, lines) -> ObjectRecord:
    name, name_line = _text(element, "name", path, lines)
    if not name:
        raise FormatError(path, "<name> is empty", line=name_line)
    check_name(name, path, name_line)
    box = element.find("bndbox")
    if box is None:
        raise FormatError(path, "<object> has no <bndbox>", line=lines[element])
    xmin, ymin, xmax, ymax = (_number(box, tag, path, lines) for tag in _CORNERS)
    if xmax < xmin:
        raise FormatError(path, f"xmax ({xmax:g}) < xmin ({xmin:g})", line=lines[box])
    if ymax < ymin:
        raise FormatError(path, f"ymax ({ymax:g}) < ymin ({ymin:g})", line=lines[box])
    return ObjectRecord(
        label=name,
        box=(xmin, ymin, xmax, ymax),
        crowd=_difficult(element, path, lines),
        source=(path, lines[element]),
    )


def parse_voc_file(
    path: str | os.PathLike, report: ReadReport | None = None, skip_invalid: bool = False
) -> ImageObjects:
    """The objects of one VOC XML file; bad objects raise, or are reported and skipped.

    Raises:
        FormatError: ``FILE:LINE: what is wrong`` (invalid XML, a missing or non-number
            coordinate, ``xmax < xmin``...).
    """
    path = Path(path)
    root, lines = _parse_with_lines(path)
    if root.tag != "annotation":
        raise FormatError(
            str(path), f"expected an <annotation> root element, found <{root.tag}>", lines[root]
        )
    image = ImageObjects(stem=path.stem)
    for element in root.findall("object"):
        try:
            image.objects.append(_parse_object(element, str(path), lines))
        except FormatError as error:
            if not skip_invalid or report is None:
                raise
            report.skipped.append(SkippedLine(str(path), error.line, error.reason))
    return image


def read_voc_folder(
    folder: str | os.PathLike, skip_invalid: bool = False, progress=None
) -> tuple[list[ImageObjects], ReadReport]:
    """Reads every ``<stem>.xml`` of a folder (``progress``, a
    :data:`~detection_debugger.formats.progress.Progress`, told per batch of files).

    With ``skip_invalid``, bad objects and files that are not valid XML are reported and
    left out instead of stopping the read.

    Returns:
        The objects of every file (sorted by stem) and a report (skipped objects and files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(str(folder), "not a folder of Pascal VOC .xml files")
    report = ReadReport()
    images = []
    for path in files_read(files_in_order(folder, "*.xml"), progress):
        report.files += 1
        try:
            images.append(parse_voc_file(path, report, skip_invalid))
        except FormatError as error:
            if not skip_invalid:
                raise
            report.skipped.append(SkippedLine(str(path), error.line or 1, error.reason))
    return images, report
