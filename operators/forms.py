"""Form fragments shared by the operators (file paths, field names, inline errors)."""

from __future__ import annotations

import os

import fiftyone.operators.types as types

__all__ = ["detections_fields", "path_input", "path_param", "show_error"]


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
