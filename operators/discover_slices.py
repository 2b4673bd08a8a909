"""``discover_slices``: the slices of a run where a class loses most AP, found automatically
from the objects' descriptors (computed and stored the first time); the best one is shown,
and all can be saved as slices."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

ALL_CLASSES = "(every class)"


def _runs(dataset) -> list[str]:
    from detection_debugger.datasets.runs import debugger_runs

    return debugger_runs(dataset)


def _classes(dataset, eval_key: str) -> list[str]:
    config = dataset.get_evaluation_info(eval_key).config
    if getattr(config, "classes", None):
        return list(config.classes)
    return sorted(dataset.distinct(f"{config.gt_field}.detections.label"))


class DiscoverSlices(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="discover_slices",
            label="Detection Debugger: discover failure slices",
            description=(
                "Find the descriptor ranges (box size, patch contrast, sample fields...) and "
                "pairs where a class loses most AP, evaluated exactly from the run's matches"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        runs = _runs(ctx.dataset)
        if not runs:
            inputs.view("none", types.Warning(label="Evaluate predictions first"))
            return types.Property(inputs)
        inputs.enum(
            "eval_key",
            runs,
            default=runs[0],
            required=True,
            label="Evaluation run",
            view=types.DropdownView(),
        )
        key = ctx.params.get("eval_key") or runs[0]
        inputs.enum(
            "cls",
            [ALL_CLASSES, *_classes(ctx.dataset, key)],
            default=ALL_CLASSES,
            required=False,
            label="Class",
            view=types.DropdownView(),
        )
        inputs.int("top", default=10, required=False, label="Hypotheses")
        inputs.bool("save", default=False, required=False, label="Save every hypothesis as a slice")
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.datasets.discovery import (
            discover_run,
            hypothesis_view,
            save_hypothesis,
        )
        from detection_debugger.evaluation.slice_discovery import DiscoveryConfig

        key = ctx.params.get("eval_key") or _runs(ctx.dataset)[0]
        cls = ctx.params.get("cls")
        cls = None if cls in (None, ALL_CLASSES) else cls
        top = int(ctx.params.get("top") or 10)

        def progress(done: int, total: int) -> None:
            ctx.set_progress(progress=done / total, label=f"descriptors: {done}/{total} images")

        found = discover_run(ctx.dataset, key, cls, DiscoveryConfig(top=top), progress)
        rows = found.to_dicts()
        if ctx.params.get("save"):
            for row in rows:
                save_hypothesis(ctx.dataset, key, row, overwrite=True)
        ctx.ops.reload_dataset()
        if rows:
            ctx.ops.set_view(hypothesis_view(ctx.dataset, key, rows[0]))
        ctx.ops.notify(
            f"{len(rows)} failure slices ({found.num_tested} tested)"
            + (f"; showing {rows[0]['name']}" if rows else ""),
            variant="success" if rows else "info",
        )
        return {
            "hypotheses": rows,
            "summary": [
                f"{r['name']}: AP {r['AP']:.3f} vs {r['baseline_AP']:.3f} ({r['num_gt']} objects)"
                for r in rows
            ],
            "num_tested": found.num_tested,
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.list("summary", types.String(), label="Failure slices, worst first")
        return types.Property(outputs)
