"""``evaluate_detections``: the engine on the target view, saved as a FiftyOne evaluation run."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.operators.forms import detections_fields, progress_of, show_error


class EvaluateDetections(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="evaluate_detections",
            label="Detection Debugger: evaluate detections",
            description=(
                "COCO metrics identical to pycocotools, the 4-way confusion matrix and "
                "per-object outcomes, saved as an evaluation run"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        fields = detections_fields(ctx.dataset)
        if len(fields) < 2:
            inputs.view("none", types.Warning(label="Needs two detections fields"))
            return types.Property(inputs)
        gt_default = "ground_truth" if "ground_truth" in fields else fields[0]
        pred_default = next((f for f in fields if f != gt_default), fields[0])
        inputs.enum(
            "gt_field",
            fields,
            default=gt_default,
            required=False,
            label="Ground truth field",
            view=types.DropdownView(),
        )
        inputs.enum(
            "pred_field",
            fields,
            default=pred_default,
            required=False,
            label="Predictions field",
            view=types.DropdownView(),
        )
        pred = ctx.params.get("pred_field") or pred_default
        key_prop = inputs.str(
            "eval_key",
            default=f"eval_{pred}",
            required=False,
            label="Evaluation key",
            description="Name of the run; fields <key>, <key>_id, <key>_iou, <key>_outcome...",
        )
        iou_prop = inputs.float("iou", default=0.5, required=False, label="IoU threshold")
        inputs.float(
            "score_threshold",
            default=0.0,
            required=False,
            label="Score threshold",
            description="Predictions below it are left out of the confusion matrix",
        )
        key = ctx.params.get("eval_key") or f"eval_{pred}"
        if not key.isidentifier():
            show_error(key_prop, "use letters, digits and underscores")
        elif ctx.dataset.has_evaluation(key):
            inputs.view("exists", types.Notice(label=f"Run {key!r} exists and will be replaced"))
        iou = ctx.params.get("iou", 0.5)
        if iou is not None and not 0 < iou <= 1:
            show_error(iou_prop, "must be in (0, 1]")
        if (ctx.params.get("gt_field") or gt_default) == pred:
            inputs.view(
                "same", types.Warning(label="Ground truth and predictions are the same field")
            )
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.datasets.runs import evaluate_detections

        fields = detections_fields(ctx.dataset)
        gt = ctx.params.get("gt_field") or (
            "ground_truth" if "ground_truth" in fields else fields[0]
        )
        pred = ctx.params.get("pred_field") or next(f for f in fields if f != gt)
        key = ctx.params.get("eval_key") or f"eval_{pred}"
        results = evaluate_detections(
            ctx.target_view(),
            pred,
            gt,
            eval_key=key,
            iou=ctx.params.get("iou") or 0.5,
            score_threshold=ctx.params.get("score_threshold") or 0.0,
            progress=progress_of(ctx),
        )
        result = results.result
        worst = result.most_room_to_improve()
        ctx.ops.reload_dataset()
        ap = result.stats["AP"]
        ctx.ops.notify(
            f"{key}: AP {ap:.3f}" + (f"; most room to improve: {worst}" if worst else ""),
            variant="success",
        )
        return {"eval_key": key, "stats": result.stats, "most_room_to_improve": worst}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("eval_key", label="Evaluation key")
        outputs.obj("stats", label="COCO statistics", view=types.JSONView())
        outputs.str("most_room_to_improve", label="Most room to improve")
        return types.Property(outputs)
