"""Form fragments shared by the operators (file paths, field names, inline errors) and the
progress of their long work."""

from __future__ import annotations

import os

import fiftyone.operators.types as types

from detection_debugger.formats.progress import Progress, Throttled

__all__ = ["detections_fields", "path_input", "path_param", "progress_of", "show_error"]

PROGRESS_INTERVAL = 0.5  # seconds between two ctx.set_progress calls


def path_input(inputs, name: str, label: str, description: str, choose_dir: bool, required=True):
    """A file-explorer input (the App's server-side file browser)."""
    return inputs.file(
        name,
        required=required,
        label=label,
        description=description,
        view=types.FileExplorerView(
            choose_dir=choose_dir,
            button_label="Choose a folder..." if choose_dir else "Choose a file...",
        ),
    )


def path_param(params: dict, name: str) -> str | None:
    """The chosen path: a file-explorer value (``{"absolute_path": ...}``) or plain text."""
    value = params.get(name)
    if isinstance(value, dict):
        value = value.get("absolute_path")
    return os.path.expanduser(value) if value else None


def show_error(prop, message: str) -> None:
    """Marks an input invalid with ``message`` shown under it in the form."""
    prop.invalid = True
    prop.error_message = message


def detections_fields(dataset) -> list[str]:
    """Names of the dataset's ``Detections`` fields."""
    import fiftyone as fo

    schema = dataset.get_field_schema(embedded_doc_type=fo.Detections)
    return sorted(schema)


def progress_of(ctx, interval: float | None = None) -> Progress:
    """A :data:`~detection_debugger.formats.progress.Progress` callback that shows the
    work's batches in the App (or a delegated run's record) with ``ctx.set_progress``: the
    fraction done and ``label: done/total``, at most every ``interval`` seconds
    (:data:`PROGRESS_INTERVAL`) plus the first and last report of each step."""

    def report(done: int, total: int, label: str) -> None:
        ctx.set_progress(progress=done / total if total else 1.0, label=f"{label}: {done}/{total}")

    return Throttled(report, PROGRESS_INTERVAL if interval is None else interval)
