"""What every command shares: the user-error type, loading a dataset, writing output, the
progress bar of long commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detection_debugger.datasets.exporting import make_folder
from detection_debugger.formats.progress import Progress, Throttled

__all__ = [
    "UsageError",
    "add_progress_argument",
    "iou_argument",
    "load_dataset",
    "progress_bar",
    "write_output",
]
BAR_WIDTH = 30
BAR_INTERVAL = 0.2  # seconds between redraws


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def iou_argument(text: str) -> float:
    """An IoU threshold argument in (0, 1]."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def load_dataset(name: str):
    """The dataset ``name``, or a :class:`UsageError` saying there is none."""
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise UsageError(f"no dataset named {name!r}")
    return fo.load_dataset(name)


def write_output(text: str, output: str | None) -> None:
    """``text`` to the file ``output`` (its missing parent folders created) or stdout."""
    if output:
        path = Path(output)
        if path.is_dir():
            raise UsageError(f"{output}: is a folder; --output takes a file name")
        make_folder(path.parent, output)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


def add_progress_argument(parser) -> None:
    """``--progress`` / ``--no-progress``: the bar on stderr (default: when it is a terminal)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


class _StderrBar:
    """Draws ``label [#####.....] 42% done/total`` on one stderr line, ended at the total."""

    def __init__(self, stream):
        self.stream = stream
        self.width = 0

    def __call__(self, done: int, total: int, label: str) -> None:
        fraction = done / total if total else 1.0
        filled = int(BAR_WIDTH * fraction)
        text = (
            f"{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{100 * fraction:3.0f}% {done}/{total}"
        )
        padding = " " * max(self.width - len(text), 0)
        self.width = len(text)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{text}{padding}{end}")
        self.stream.flush()


def progress_bar(args: argparse.Namespace, stream=None) -> Progress | None:
    """The progress callback of a command: a bar on ``stream`` (stderr) when ``--progress``
    is given, or by default when the stream is a terminal; None otherwise. Stdout is never
    written, so JSON output stays clean."""
    stream = stream or sys.stderr
    wanted = getattr(args, "progress", None)
    if wanted is None:
        wanted = stream.isatty()
    return Throttled(_StderrBar(stream), BAR_INTERVAL) if wanted else None
