"""``compute_embeddings`` and ``search``: CLIP text / "more like these" search over images and
objects, restricted to the current view, hits shown in the App and saved as slices.

The domain code (``detection_debugger.search.embeddings``, ``.search``) imports torch; it is
imported inside ``execute`` so that loading the plugin stays fast.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.fiftyone_private import is_patches_view
from detection_debugger.operators.forms import detections_fields, path_input, path_param, show_error

IMAGES = "images"
DEFAULT_K = 50


def _index_key(target: str) -> str:
    # Mirrors search.index_key without importing torch.
    return "clip_images" if target == IMAGES else f"clip_{target}"


def _indexed_targets(dataset) -> list[str]:
    keys = set(dataset.list_brain_runs())
    fields = detections_fields(dataset)
    return [t for t in [IMAGES, *fields] if _index_key(t) in keys]


def _progress(ctx, label: str):
    import fiftyone.core.utils as fou

    def report(pb):
        ctx.set_progress(progress=pb.progress, label=f"{label}: {pb.iteration}/{pb.total}")

    return fou.report_progress(report, dt=1.0)


def _model_inputs(inputs):
    """The open_clip model settings of the form; returns the checkpoint input."""
    from detection_debugger.search.clip_spec import (
        DEFAULT_MARGIN,
        DEFAULT_MODEL,
        DEFAULT_PRETRAINED,
    )

    inputs.str("model", default=DEFAULT_MODEL, required=False, label="open_clip model")
    inputs.str(
        "pretrained",
        default=DEFAULT_PRETRAINED,
        required=False,
        label="Pretrained tag",
        description="Used when no checkpoint is given",
    )
    ckpt = path_input(
        inputs,
        "checkpoint",
        "Local checkpoint",
        "A .bin/.pt/.safetensors state dict (optional)",
        False,
        required=False,
    )
    inputs.str(
        "device",
        required=False,
        label="Device",
        description="cpu, cuda; default: CUDA when present",
    )
    inputs.int("batch_size", default=32, required=False, label="Batch size")
    inputs.float(
        "margin",
        default=DEFAULT_MARGIN,
        required=False,
        label="Crop margin",
        description="Objects: fraction of the box added on each side",
    )
    return ckpt


class ComputeEmbeddings(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_embeddings",
            label="Detection Debugger: compute CLIP embeddings",
            description=(
                "open_clip embeddings of images or objects (cached) and a similarity index "
                "for text search and sort by similarity"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        targets = [IMAGES, *detections_fields(ctx.dataset)]
        inputs.enum(
            "target",
            targets,
            default=IMAGES,
            required=False,
            label="Embed",
            description="Whole images, or the objects of a detections field (cropped)",
            view=types.DropdownView(),
        )
        ckpt = _model_inputs(inputs)
        path = path_param(ctx.params, "checkpoint")
        if path:
            import os

            if not os.path.isfile(path):
                show_error(ckpt, f"{path} is not a file")
        target = ctx.params.get("target") or IMAGES
        if _index_key(target) in ctx.dataset.list_brain_runs():
            inputs.view(
                "exists",
                types.Notice(
                    label=f"Index {_index_key(target)!r} exists and will be rebuilt (cached "
                    "embeddings are reused)"
                ),
            )
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.search.clip_spec import (
            DEFAULT_MARGIN,
            DEFAULT_MODEL,
            DEFAULT_PRETRAINED,
            ClipSpec,
        )
        from detection_debugger.search.embeddings import load_model
        from detection_debugger.search.index import build_index

        target = ctx.params.get("target") or IMAGES
        spec = ClipSpec(
            model=ctx.params.get("model") or DEFAULT_MODEL,
            pretrained=ctx.params.get("pretrained") or DEFAULT_PRETRAINED,
            checkpoint=path_param(ctx.params, "checkpoint"),
            device=ctx.params.get("device") or None,
            batch_size=int(ctx.params.get("batch_size") or 32),
        )
        ctx.set_progress(progress=0.0, label=f"loading {spec.model}")
        model = load_model(spec)
        margin = ctx.params.get("margin")
        index, table = build_index(
            ctx.target_view(),
            model,
            patches_field=None if target == IMAGES else target,
            margin=DEFAULT_MARGIN if margin is None else float(margin),
            progress=_progress(ctx, f"embedding {target}"),
        )
        ctx.ops.reload_dataset()
        ctx.ops.notify(
            f"{index.key}: {len(table.vectors)} {target} indexed ({table.computed} computed)",
            variant="success",
        )
        return {"brain_key": index.key, "count": len(table.vectors), "computed": table.computed}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("brain_key", label="Similarity index (brain key)")
        outputs.int("count", label="Items indexed")
        outputs.int("computed", label="Embeddings computed (the rest came from the cache)")
        return types.Property(outputs)


class Search(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="search",
            label="Detection Debugger: search images or objects",
            description=(
                "CLIP text search or 'more like the selected' within the current view; "
                "top-k shown, optionally saved as a slice"
            ),
            dynamic=True,
            allow_immediate_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        targets = _indexed_targets(ctx.dataset)
        if not targets:
            inputs.view(
                "none",
                types.Warning(label="No CLIP index yet: run 'compute CLIP embeddings' first"),
            )
            return types.Property(inputs)
        inputs.enum(
            "target",
            targets,
            default=targets[0],
            required=False,
            label="Search",
            description="Images, or the objects of a field",
            view=types.DropdownView(),
        )
        selected = _selected_ids(ctx, ctx.params.get("target") or targets[0])
        modes = ["text", "selected"] if selected else ["text"]
        inputs.enum(
            "mode", modes, default="text", required=False, label="Query", view=types.RadioGroup()
        )
        if (ctx.params.get("mode") or "text") == "text":
            inputs.str("query", required=True, label="Text", description='e.g. "faded crosswalk"')
        else:
            inputs.view("sel", types.Notice(label=f"More like the {len(selected)} selected"))
        k_prop = inputs.int("k", default=DEFAULT_K, required=False, label="Top k")
        if (ctx.params.get("k") or DEFAULT_K) < 1:
            show_error(k_prop, "must be at least 1")
        inputs.bool(
            "objects",
            default=True,
            required=False,
            label="Show objects",
            description="Objects as patches (on) or their images (off)",
        )
        slice_prop = inputs.str(
            "slice_name",
            required=False,
            label="Save as slice",
            description="Optional: save the hits as this slice",
        )
        inputs.bool("overwrite", default=False, required=False, label="Replace the slice")
        name = (ctx.params.get("slice_name") or "").strip()
        if name and ctx.dataset.has_saved_view(name) and not ctx.params.get("overwrite"):
            show_error(slice_prop, f"a slice {name!r} exists: choose another name or replace")
        inputs.bool(
            "slice_objects",
            default=False,
            required=False,
            label="Slice of objects",
            description="Save the hit objects (on) or their images, all labels (off)",
        )
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.search.index import save_slice, search

        targets = _indexed_targets(ctx.dataset)
        target = ctx.params.get("target") or (targets[0] if targets else IMAGES)
        field = None if target == IMAGES else target
        if (ctx.params.get("mode") or "text") == "text":
            query = (ctx.params.get("query") or "").strip()
            if not query:
                raise ValueError("give a text query")
        else:
            query = _selected_ids(ctx, target)
        objects = ctx.params.get("objects", True) is not False
        hits = search(
            ctx.target_view(),
            query,
            k=int(ctx.params.get("k") or DEFAULT_K),
            patches_field=field,
            objects=objects,
        )
        name = (ctx.params.get("slice_name") or "").strip()
        if name:
            what = query if isinstance(query, str) else f"{len(query)} examples"
            save_slice(
                hits,
                name,
                description=f"CLIP search {target}: {what}",
                objects=bool(ctx.params.get("slice_objects")),
                overwrite=bool(ctx.params.get("overwrite")),
            )
        ctx.ops.set_view(view=hits)
        ctx.ops.notify(
            f"{len(hits)} hits" + (f", saved as slice {name!r}" if name else ""), variant="success"
        )
        return {"count": len(hits), "ids": hits.values("id"), "slice": name or None}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("count", label="Hits")
        outputs.str("slice", label="Saved slice")
        return types.Property(outputs)


def _selected_ids(ctx, target: str) -> list[str]:
    """Example ids for "more like these": selected samples, or selected objects of ``target``
    (in a patches view the selected patches are the objects)."""
    if target == IMAGES:
        if is_patches_view(ctx.view):
            return list(dict.fromkeys(ctx.view.select(ctx.selected).values("sample_id")))
        return list(ctx.selected)
    labels = [s["label_id"] for s in ctx.selected_labels if s.get("field") == target]
    if not labels and is_patches_view(ctx.view):
        labels = list(ctx.selected)
    return labels
