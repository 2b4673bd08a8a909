"""``import_ground_truth`` and ``import_predictions``: label files into the current dataset.

Same semantics as ``detection-debugger import``: every file is read and validated before
anything is written, each label set gets its own field, an existing field is only replaced
when asked. Small inputs are validated completely while the form is filled in.
"""

from __future__ import annotations

from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.importing import (
    GT_FORMATS,
    PRED_FORMATS,
    LabelSource,
    apply_import,
    existing_classes,
    plan_import,
)
from detection_debugger.formats import ClassMap, FormatError
from detection_debugger.formats.progress import part
from detection_debugger.operators.forms import path_input, path_param, progress_of, show_error

INLINE_VALIDATION_MAX_FILES = 1000  # full validation in the form up to this many label files
FILE_FORMATS = ("coco", "ultralytics")  # one JSON file; the other formats are folders
FORMAT_HELP = {
    "tao": "folder of <image stem>.txt: KITTI lines + confidence (TAO inference output)",
    "kitti": "folder of <image stem>.txt: KITTI lines (DontCare = ignore regions)",
    "coco": "COCO JSON file",
    "yolo": "folder of <image stem>.txt: normalised 'class cx cy w h [score]'",
    "ultralytics": "Ultralytics predictions.json (yolo val save_json=True)",
    "txt": "folder of <image stem>.txt: 'class [confidence] left top right bottom' in pixels",
    "voc": "folder of <image stem>.xml: Pascal VOC (difficult = ignore regions)",
    "auto": "a JSON file or a folder of .txt/.xml files; the format is recognised from them",
}


def _label_file_count(path: str) -> int:
    p = Path(path)
    if not p.is_dir():
        return 1
    return sum(1 for q in p.iterdir() if q.suffix in (".txt", ".xml"))


def _labels_are_a_file(fmt: str | None, labels: str | None) -> bool:
    if fmt == "auto":
        return bool(labels) and Path(labels).is_file()
    return fmt in FILE_FORMATS


def _labels_path_problem(fmt: str, labels: str, is_file: bool) -> str | None:
    path = Path(labels)
    if fmt == "auto" and not path.exists():
        return f"{labels} does not exist"
    if fmt != "auto" and is_file and not path.is_file():
        return f"{labels} is not a file"
    if fmt != "auto" and not is_file and not path.is_dir():
        return f"{labels} is not a folder"
    return None


class _ImportLabels(foo.Operator):
    predictions: bool
    formats: tuple[str, ...]
    default_field: str

    def _format_input(self, inputs) -> None:
        inputs.enum(
            "format",
            list(self.formats),
            required=True,
            label="Format",
            description=(
                "TAO/KITTI, COCO results, YOLO, Ultralytics predictions.json, corner txt, "
                "or auto (recognised from the files)"
                if self.predictions
                else "COCO JSON, KITTI (DontCare = ignore regions), YOLO, Pascal VOC XML, "
                "corner txt, or auto (recognised from the files)"
            ),
            view=types.RadioGroup(),
        )

    def _join_inputs(self, inputs, fmt: str | None) -> dict:
        """The class names and images JSON inputs, where the format uses them."""
        props = {"names_prop": None, "images_json_prop": None}
        results = self.predictions and fmt in ("coco", "ultralytics", "auto")
        if fmt in ("yolo", "auto") or results:
            label = "Class names file" if fmt == "yolo" else "Class names file (optional)"
            props["names_prop"] = path_input(
                inputs,
                "class_names",
                label,
                "classes.txt / data.yaml: YOLO classes; for "
                "results without COCO ground truth, category id = class index + 1",
                False,
                required=fmt == "yolo",
            )
        if results:
            props["images_json_prop"] = path_input(
                inputs,
                "images_json",
                "Images JSON (optional)",
                "COCO JSON with 'images' and 'categories' joining detections to images "
                "(e.g. the ground-truth file)",
                False,
                required=False,
            )
        return props

    def _inputs(self, ctx, inputs) -> dict:
        """Every input of the form, as ``{name_prop: property}``."""
        kind = "predictions" if self.predictions else "ground truth"
        images_prop = path_input(
            inputs,
            "images",
            "Images folder",
            "Folder of the images; label files are matched to them by file stem",
            True,
        )
        props = {"images_prop": images_prop}
        self._format_input(inputs)
        fmt = ctx.params.get("format")
        is_file = _labels_are_a_file(fmt, path_param(ctx.params, "labels"))
        props["labels_prop"] = path_input(
            inputs,
            "labels",
            f"{kind.capitalize()} {'file' if is_file else 'folder'}",
            FORMAT_HELP.get(fmt, "Folder of <image stem>.txt files"),
            not is_file,
        )
        props["field_prop"] = inputs.str(
            "field",
            default=self.default_field,
            required=False,
            label="Field",
            description=f"New label field for these {kind}",
        )
        props.update(self._join_inputs(inputs, fmt))
        props["map_prop"] = path_input(
            inputs,
            "class_map",
            "Class map (optional)",
            "YAML/JSON {name in files: class name}",
            False,
            required=False,
        )
        inputs.bool("skip_invalid", default=False, label="Skip malformed lines (each is reported)")
        inputs.bool("replace", default=False, label="Replace the field if it exists")
        return props

    def _check_paths(self, ctx, props: dict) -> None:
        """Marks the path and field inputs that cannot work, with the reason."""
        params = ctx.params
        images, labels = path_param(params, "images"), path_param(params, "labels")
        fmt = params.get("format")
        field = params.get("field") or self.default_field
        if images and not Path(images).is_dir():
            show_error(props["images_prop"], f"{images} is not a folder")
        if labels and fmt:
            problem = _labels_path_problem(fmt, labels, _labels_are_a_file(fmt, labels))
            if problem:
                show_error(props["labels_prop"], problem)
        if ctx.dataset is not None and ctx.dataset.has_field(field) and not params.get("replace"):
            show_error(props["field_prop"], f"the dataset already has a field {field!r}")
        if fmt == "yolo" and props["names_prop"] and not path_param(params, "class_names"):
            show_error(props["names_prop"], "YOLO labels need the class names file")

    def resolve_input(self, ctx):
        inputs = types.Object()
        props = self._inputs(ctx, inputs)
        self._check_paths(ctx, props)
        images, labels = path_param(ctx.params, "images"), path_param(ctx.params, "labels")
        ready = (
            images
            and labels
            and ctx.params.get("format")
            and not any(
                getattr(props[name], "invalid", False)
                for name in ("images_prop", "labels_prop", "field_prop")
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
                show_error(self._erroneous_input(ctx, error, props), str(error))
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

    def _plan(self, ctx, progress=None):
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
            ctx.dataset.name,
            path_param(params, "images"),
            [source],
            class_map,
            bool(params.get("skip_invalid")),
            known,
            progress,
        )

    def execute(self, ctx):
        progress = progress_of(ctx)  # reading, then writing: one bar
        plan = self._plan(ctx, part(progress, 0, 2))
        apply_import(plan, replace=bool(ctx.params.get("replace")), progress=part(progress, 1, 2))
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
            description=(
                "Import COCO, KITTI, YOLO, Pascal VOC or corner-txt ground truth into the "
                "current dataset"
            ),
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
            description=(
                "Import TAO, COCO, YOLO, Ultralytics or corner-txt predictions as a new field "
                "of the current dataset"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )
