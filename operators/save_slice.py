"""``save_slice``: the App's current view (images or objects) saved as a named data slice."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.operators.forms import show_error


class SaveSlice(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="save_slice",
            label="Detection Debugger: save view as slice",
            description=(
                "Saves the current view (selected images, filtered objects or patches) as a "
                "data slice that evaluation runs are re-evaluated on exactly"
            ),
            dynamic=True,
            allow_immediate_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        name_prop = inputs.str(
            "name", required=True, label="Slice name", description="e.g. faded crosswalks"
        )
        inputs.str(
            "description",
            required=False,
            label="Description",
            description="The hypothesis this slice tests",
        )
        inputs.bool("overwrite", default=False, required=False, label="Replace if it exists")
        name = (ctx.params.get("name") or "").strip()
        if name and ctx.dataset.has_saved_view(name) and not ctx.params.get("overwrite"):
            show_error(name_prop, f"a slice {name!r} exists: choose another name or replace")
        view = ctx.view if ctx.view is not None else ctx.dataset
        inputs.view("scope", types.Notice(label=f"The current view: {len(view)} samples"))
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.datasets.slices import save_slice

        name = (ctx.params.get("name") or "").strip()
        view = ctx.view if ctx.view is not None else ctx.dataset.view()
        save_slice(
            ctx.dataset,
            name,
            view,
            ctx.params.get("description"),
            overwrite=bool(ctx.params.get("overwrite")),
        )
        ctx.ops.set_view(name=name)
        ctx.ops.notify(f"Saved slice {name!r} ({len(view)} samples)", variant="success")
        return {"name": name, "num_samples": len(view)}
