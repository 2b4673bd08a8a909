"""``export_dataset``: a label field (corrected labels when they exist) out as KITTI/COCO/YOLO."""

from __future__ import annotations

from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.exporting import EXPORT_FORMATS, FIXED_SUFFIX, export_labels
from detection_debugger.operators.forms import (
    detections_fields,
    path_input,
    path_param,
    progress_of,
    show_error,
)


class ExportDataset(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="export_dataset",
            label="Detection Debugger: export dataset",
            description="Export images and labels for retraining (KITTI for TAO, COCO, YOLO)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        fields = [f for f in detections_fields(ctx.dataset) if not f.endswith(FIXED_SUFFIX)]
        if not fields:
            inputs.view("none", types.Warning(label="This dataset has no detections field"))
            return types.Property(inputs)
        inputs.enum(
            "label_field",
            fields,
            required=True,
            default=fields[0],
            label="Label field",
            description=f"Exports {{field}}{FIXED_SUFFIX} (the reviewed corrections) if it exists",
            view=types.DropdownView(),
        )
        inputs.enum(
            "format",
            list(EXPORT_FORMATS),
            required=True,
            default="kitti",
            label="Format",
            description="kitti: TAO-ready images/ + labels/; coco: annotations.json; yolo",
            view=types.RadioGroup(),
        )
        output_prop = path_input(inputs, "output", "Output folder", "An empty or new folder", True)
        inputs.bool("overwrite", default=False, label="Write into a non-empty folder")
        field = ctx.params.get("label_field") or fields[0]
        if ctx.dataset.has_field(field + FIXED_SUFFIX):
            inputs.view(
                "corrected",
                types.Notice(label=f"Corrected labels found: exporting {field}{FIXED_SUFFIX}"),
            )
        output = path_param(ctx.params, "output")
        if output and not ctx.params.get("overwrite"):
            out = Path(output)
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                show_error(output_prop, f"{output} is not empty: choose another or overwrite")
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        report = export_labels(
            ctx.target_view(),
            ctx.params["label_field"],
            ctx.params["format"],
            path_param(ctx.params, "output"),
            overwrite=bool(ctx.params.get("overwrite")),
            progress=progress_of(ctx),
        )
        lines = report.summary()
        ctx.ops.notify(lines[0], variant="success")
        return {"summary": lines, "output": report.output_dir, "label_field": report.label_field}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.list("summary", types.String(), label="Export report")
        return types.Property(outputs)
