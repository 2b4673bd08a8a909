"""What every command shares: the user-error type, loading a dataset, writing output."""

from __future__ import annotations

import argparse
from pathlib import Path

from detection_debugger.datasets.exporting import make_folder

__all__ = ["UsageError", "iou_argument", "load_dataset", "write_output"]


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
