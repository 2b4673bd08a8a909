"""YOLO labels: ``<stem>.txt`` with ``class cx cy w h [score]`` lines, normalised to [0, 1],
and a class names file (one name a line, line ``i`` names class ``i``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.numbers import format_number, parse_column
from detection_debugger.formats.progress import files_read
from detection_debugger.formats.records import ImageObjects, ObjectRecord, ReadReport, SkippedLine
from detection_debugger.formats.text_files import check_name, files_in_order, read_text_lines

# Normalised values may exceed [0, 1] by this much (rounding in the writer).
TOLERANCE = 1e-6

__all__ = ["read_class_names", "read_yolo_folder", "write_class_names", "write_yolo_folder"]


def _yaml_names(path: str) -> list[str]:
    """The ``names`` of a YOLO ``data.yaml``: a list, or ``{index: name}`` with the indices
    0..n-1; names must be strings or numbers (``nc``, when given, must match)."""
    from detection_debugger.formats.text_files import load_yaml

    data = load_yaml(path)
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        keys = list(names)
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in keys) or sorted(
            keys
        ) != list(range(len(keys))):
            raise FormatError(
                path,
                f"'names' keys must be the class indices 0..{len(keys) - 1}, got "
                f"{sorted(map(str, keys))[:10]}",
            )
        names = [names[k] for k in range(len(keys))]
    if not isinstance(names, list):
        raise FormatError(path, "expected a 'names' list in the YAML file")
    for index, name in enumerate(names):
        if isinstance(name, bool) or not isinstance(name, (str, int, float)):
            raise FormatError(path, f"names[{index}] must be a class name, got {name!r}")
        check_name(str(name), path, what=f"names[{index}]")
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        raise FormatError(path, f"'nc' is {nc!r} but 'names' has {len(names)} names")
    return [str(n) for n in names]


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Reads a class names file: ``classes.txt`` / ``obj.names`` (one a line, blank lines
    and surrounding spaces ignored) or a YOLO ``data.yaml`` with ``names`` (list or
    ``{index: name}``).

    Raises:
        FormatError: the file is missing or unreadable (see :mod:`.text_files`), invalid
            YAML, a name with control characters (with its line), or no names at all.
    """
    path = str(path)
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        names = _yaml_names(path)
    else:
        names = [
            check_name(line.strip(), path, number)
            for number, line in enumerate(read_text_lines(path), start=1)
            if line.strip()
        ]
    if not names:
        raise FormatError(path, "no class names in the file")
    return names


def _parse_line(text, path, line, names, size, predictions) -> ObjectRecord:
    cols = text.split()
    allowed = (5, 6) if predictions else (5,)
    if len(cols) not in allowed:
        expected = "5 or 6" if predictions else "5"
        raise FormatError(path, f"expected {expected} columns, found {len(cols)}", line=line)
    if not (cols[0].isascii() and cols[0].isdigit()):
        raise FormatError(path, f"class index is not an integer: {cols[0]!r}", line=line)
    index = int(cols[0])
    if not 0 <= index < len(names):
        raise FormatError(path, f"class index {index} is not in the {len(names)} names", line=line)
    names_of = ("cx", "cy", "w", "h", "confidence")[: len(cols) - 1]
    values = [parse_column(cols[1 + i], path, line, i + 2, n) for i, n in enumerate(names_of)]
    for column, (name, value) in enumerate(zip(names_of[:4], values[:4]), start=2):
        if not -TOLERANCE <= value <= 1 + TOLERANCE:
            raise FormatError(
                path,
                f"column {column} ({name}) is outside [0, 1]: {cols[column - 1]!r} (YOLO "
                "values are fractions of the image size)",
                line=line,
            )
    cx, cy, w, h = values[:4]
    width, height = size
    box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
    score = values[4] if len(values) == 5 else (1.0 if predictions else None)
    return ObjectRecord(label=names[index], box=box, score=score, source=(path, line))


def read_yolo_folder(
    folder: str | os.PathLike,
    class_names: list[str],
    image_sizes: Mapping[str, tuple[int, int]],
    predictions: bool,
    skip_invalid: bool = False,
    progress=None,
) -> tuple[list[ImageObjects], ReadReport]:
    """Reads ``<stem>.txt`` files; boxes are scaled by ``image_sizes[stem]`` (width, height);
    ``progress`` (a :data:`~detection_debugger.formats.progress.Progress`) is told per batch.

    Files whose stem has no image size are returned without objects and named in the
    report: there is no image to scale them to.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(str(folder), "not a folder of YOLO .txt files")
    report = ReadReport()
    images = []
    for path in files_read(files_in_order(folder, "*.txt"), progress):
        if path.name in ("classes.txt", "obj.names"):
            continue
        report.files += 1
        image = ImageObjects(stem=path.stem)
        images.append(image)
        size = image_sizes.get(path.stem)
        lines = read_text_lines(path)  # read (and checked) even without an image
        if size is None:
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                image.objects.append(
                    _parse_line(line, str(path), number, class_names, size, predictions)
                )
            except FormatError as error:
                if not skip_invalid:
                    raise
                report.skipped.append(SkippedLine(str(path), number, error.reason))
    return images, report


def write_class_names(path: str | os.PathLike, names: list[str]) -> None:
    Path(path).write_text("".join(f"{n}\n" for n in names))


def write_yolo_folder(
    folder: str | os.PathLike,
    images: Iterable[ImageObjects],
    class_names: list[str],
    image_sizes: Mapping[str, tuple[int, int]],
    with_score: bool,
) -> int:
    """Writes ``<stem>.txt`` per image, boxes normalised by the image size."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = {name: i for i, name in enumerate(class_names)}
    count = 0
    for image in images:
        width, height = image_sizes[image.stem]
        lines = []
        for r in image.objects:
            if r.crowd:
                continue  # YOLO has no ignore regions
            x1, y1, x2, y2 = r.box
            cols = [
                str(index[r.label]),
                *(
                    format_number(v, 8)
                    for v in (
                        (x1 + x2) / 2 / width,
                        (y1 + y2) / 2 / height,
                        (x2 - x1) / width,
                        (y2 - y1) / height,
                    )
                ),
            ]
            if with_score:
                cols.append(format_number(r.score if r.score is not None else 1.0))
            lines.append(" ".join(cols))
        (folder / f"{image.stem}.txt").write_text("".join(f"{x}\n" for x in lines))
        count += 1
    return count
