"""``import_ground_truth`` and ``import_predictions``: label files into the current dataset.

Same semantics as ``detection-debugger import``: every file is read and validated before
anything is written, each label set gets its own field, an existing field is only replaced
when asked. Small inputs are validated completely while the form is filled in.
"""

from __future__ import annotations

from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..dataset_import import (
    GT_FORMATS,
    PRED_FORMATS,
    LabelSource,
    apply_import,
    existing_classes,
    plan_import,
)
from ..formats import ClassMap, FormatError
from .forms import path_input, path_param, show_error

INLINE_VALIDATION_MAX_FILES = 1000  # full validation in the form up to this many label files


def _label_file_count(path: str) -> int:
    p = Path(path)
    return sum(1 for _ in p.glob("*.txt")) if p.is_dir() else 1


class _ImportLabels(foo.Operator):
    predictions: bool
    formats: tuple[str, ...]
    default_field: str

    def resolve_input(self, ctx):
        inputs = types.Object()
        kind = "predictions" if self.predictions else "ground truth"
        images_prop = path_input(
            inputs, "images", "Images folder",
            "Folder of the images; label files are matched to them by file stem", True,
        )  # fmt: skip
        fmt = ctx.params.get("format")
        inputs.enum(
            "format",
            list(self.formats),
            required=True,
            label="Format",
            description=(
                "TAO inference output (KITTI lines + confidence), COCO results JSON or YOLO"
                if self.predictions
                else "COCO JSON, KITTI label folder (DontCare = ignore regions) or YOLO"
            ),
            view=types.RadioGroup(),
        )
        is_file = fmt == "coco"
        labels_prop = path_input(
            inputs, "labels", f"{kind.capitalize()} {'file' if is_file else 'folder'}",
            "COCO JSON file" if is_file else "Folder of <image stem>.txt files", not is_file,
        )  # fmt: skip
        field_prop = inputs.str(
            "field", default=self.default_field, required=False, label="Field",
            description=f"New label field for these {kind}",
        )  # fmt: skip
        names_prop = None
        if fmt == "yolo":
            names_prop = path_input(
                inputs, "class_names", "Class names file", "classes.txt / data.yaml", False
            )
        images_json_prop = None
        if fmt == "coco" and self.predictions:
            images_json_prop = path_input(
                inputs, "images_json", "Images JSON (optional)",
                "COCO JSON with 'images' and 'categories' joining detections to images "
                "(e.g. the ground-truth file)", False, required=False,
            )  # fmt: skip
        map_prop = path_input(
            inputs, "class_map", "Class map (optional)",
            "YAML/JSON {name in files: class name}", False, required=False,
        )  # fmt: skip
        inputs.bool("skip_invalid", default=False, label="Skip malformed lines (each is reported)")
        inputs.bool("replace", default=False, label="Replace the field if it exists")

        images, labels = path_param(ctx.params, "images"), path_param(ctx.params, "labels")
        field = ctx.params.get("field") or self.default_field
        if images and not Path(images).is_dir():
            show_error(images_prop, f"{images} is not a folder")
        if labels and fmt:
            if is_file and not Path(labels).is_file():
                show_error(labels_prop, f"{labels} is not a file")
            elif not is_file and not Path(labels).is_dir():
                show_error(labels_prop, f"{labels} is not a folder")
        if (
            ctx.dataset is not None
            and ctx.dataset.has_field(field)
            and not ctx.params.get("replace")
        ):
            show_error(field_prop, f"the dataset already has a field {field!r}")
        if fmt == "yolo" and names_prop and not path_param(ctx.params, "class_names"):
            show_error(names_prop, "YOLO labels need the class names file")

        ready = (
            images
            and labels
            and fmt
            and not any(
                getattr(p, "invalid", False) for p in (images_prop, labels_prop, field_prop)
            )
        )
        if ready and _label_file_count(labels) <= INLINE_VALIDATION_MAX_FILES:
            try:
                plan = self._plan(ctx)
                inputs.view(
                    "preview",
                    types.Notice(label="Ready: " + " / ".join(plan.summary()[:2])),
                )
            except FormatError as error:
                show_error(self._erroneous_input(ctx, error, locals()), str(error))
        return types.Property(inputs, view=types.View(label=self.config.label))

    @staticmethod
    def _erroneous_input(ctx, error: FormatError, props: dict):
        """The form input whose file the error names (the labels input by default)."""
        for name, prop in (
            ("class_map", props["map_prop"]),
            ("images_json", props["images_json_prop"]),
            ("class_names", props["names_prop"]),
        ):
            if prop is not None and error.path == path_param(ctx.params, name):
                return prop
        images = path_param(ctx.params, "images")
        if images and error.path.startswith(images) and "image" in error.reason:
            return props["images_prop"]
        return props["labels_prop"]

    def _plan(self, ctx):
        params = ctx.params
        source = LabelSource(
            path=path_param(params, "labels"),
            format=params["format"],
            field=params.get("field") or self.default_field,
            predictions=self.predictions,
            class_names=path_param(params, "class_names"),
            images_json=path_param(params, "images_json"),
        )
        class_map = (
            ClassMap.load(path_param(params, "class_map"))
            if path_param(params, "class_map")
            else None
        )
        known = existing_classes(ctx.dataset.name) if self.predictions else None
        return plan_import(
            ctx.dataset.name, path_param(params, "images"), [source], class_map,
            bool(params.get("skip_invalid")), known,
        )  # fmt: skip

    def execute(self, ctx):
        plan = self._plan(ctx)
        apply_import(plan, replace=bool(ctx.params.get("replace")), progress=False)
        lines = plan.summary()
        ctx.ops.reload_dataset()
        ctx.ops.notify(lines[1] if len(lines) > 1 else lines[0], variant="success")
        return {"summary": lines, "field": plan.labels[0].source.field}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.list("summary", types.String(), label="Import report")
        return types.Property(outputs)


class ImportGroundTruth(_ImportLabels):
    predictions = False
    formats = GT_FORMATS
    default_field = "ground_truth"

    @property
    def config(self):
        return foo.OperatorConfig(
            name="import_ground_truth",
            label="Detection Debugger: import ground truth",
            description="Import COCO, KITTI or YOLO ground truth into the current dataset",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )


class ImportPredictions(_ImportLabels):
    predictions = True
    formats = PRED_FORMATS
    default_field = "predictions"

    @property
    def config(self):
        return foo.OperatorConfig(
            name="import_predictions",
            label="Detection Debugger: import predictions",
            description="Import TAO, COCO or YOLO predictions as a new field of the current dataset",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )
