"""The ``Detection Debugger`` panel: per-class metrics, imbalance, the 4-way confusion matrix.

Every number is one click away from its objects: a confusion-matrix cell or an error-type
button sets the App's view (see :mod:`.error_views`). The panel follows the App's current
view: when it is a subset of an evaluation run's samples, the numbers are re-evaluated
exactly from the run's stored match table, and the panel says so.
"""

from __future__ import annotations

import math

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .error_views import BACKGROUND, cell_view, class_view, error_view

METHOD = "detection-debugger"
SORT_KEYS = ("AP", "AP50", "AR100", "num_gt", "num_pred", "tp", "fn", "mispredicted", "fp")
ROOM_CAPTION = (
    "★ most room to improve: the lowest AP weighted by frequency, (1 - AP) x ln(1 + #GT): "
    "the AP gap counts most, frequency breaks near-ties"
)


def _runs(dataset) -> list[str]:
    """The dataset's evaluation runs made by this plugin."""
    return [
        key
        for key in dataset.list_evaluations()
        if getattr(dataset.get_evaluation_info(key).config, "method", None) == METHOD
    ]


def class_rows(result, compare=None, sort_by: str = "AP") -> list[dict]:
    """Table rows of an :class:`EvaluationResult` (plus ``compare``'s AP), sorted."""
    worst = result.most_room_to_improve()
    rows = []
    for name, m in result.classes.items():
        row = {
            "class": ("★ " if name == worst else "") + name,
            "AP": None if m.AP is None else round(m.AP, 4),
            "AP50": None if m.AP50 is None else round(m.AP50, 4),
            "AR100": None if m.AR100 is None else round(m.AR100, 4),
            "num_gt": m.num_gt, "num_pred": m.num_pred, "tp": m.tp, "fn": m.fn,
            "mispredicted": m.mispredicted, "fp": m.fp,
        }  # fmt: skip
        if compare is not None:
            other = compare.classes.get(name)
            ap = None if other is None or other.AP is None else round(other.AP, 4)
            row["AP_compare"] = ap
            row["AP_delta"] = None if ap is None or m.AP is None else round(ap - m.AP, 4)
        rows.append(row)
    descending = sort_by not in ("AP", "AP50", "AR100")

    def key(row):
        value = row.get(sort_by)
        return (value is None, -value if (descending and value is not None) else (value or 0))

    return sorted(rows, key=key)


def confusion_heatmap(result, log_scale: bool) -> tuple[list, dict]:
    """Plotly data and layout of the confusion matrix (rows: ground truth, bottom-up)."""
    labels = list(result.confusion.labels)
    counts = result.confusion.matrix.tolist()
    z = [[math.log10(1 + v) if log_scale else v for v in row] for row in counts]
    data = [
        {
            "type": "heatmap",
            "x": labels,
            "y": labels,
            "z": z,
            "text": counts,
            "texttemplate": "%{text}",
            "hovertemplate": "ground truth %{y}<br>predicted %{x}<br>%{text} objects<extra></extra>",
            "colorscale": "Viridis",
            "showscale": False,
        }
    ]
    layout = {
        "xaxis": {"title": "predicted", "type": "category"},
        "yaxis": {"title": "ground truth", "type": "category", "autorange": "reversed"},
        "margin": {"t": 10, "l": 110, "b": 90},
        "height": 420,
    }
    return data, layout


def imbalance_bars(result) -> tuple[list, dict]:
    """Annotations vs predictions per class, side by side."""
    names = list(result.classes)
    data = [
        {"type": "bar", "name": "annotations", "x": names,
         "y": [result.classes[n].num_gt for n in names]},
        {"type": "bar", "name": "predictions", "x": names,
         "y": [result.classes[n].num_pred for n in names]},
    ]  # fmt: skip
    layout = {"barmode": "group", "height": 300, "margin": {"t": 10, "b": 60}}
    return data, layout


class DetectionDebuggerPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="detection_debugger",
            label="Detection Debugger",
            help_markdown=(
                "Per-class AP/AR, imbalance and the 4-way confusion matrix of an evaluation "
                "run made with the `evaluate_detections` operator of this plugin. Click a "
                "cell, or an error type, to see the objects behind it."
            ),
            surfaces="grid",
        )

    # ------------------------------------------------------------------ state

    def _run(self, ctx, key):
        results = ctx.dataset.load_evaluation_results(key)
        info = ctx.dataset.get_evaluation_info(key)
        return results, info.config

    def _result_for_view(self, ctx, results):
        """The run's result on the App's current view (exact), and a note saying which."""
        run_ids = set(results.sample_ids)
        view_ids = ctx.view.values("id") if ctx.view is not None else []
        if not view_ids or set(view_ids) == run_ids:
            return results.result, f"whole run ({len(run_ids)} samples)"
        inside = [sid for sid in view_ids if sid in run_ids]
        if len(inside) < len(view_ids):
            return results.result, (
                f"whole run ({len(run_ids)} samples): the current view has "
                f"{len(view_ids) - len(inside)} samples outside it"
            )
        return results.evaluate_samples(inside), (
            f"current view: {len(inside)} of {len(run_ids)} samples, re-evaluated exactly "
            "from the stored match table"
        )

    def _refresh(self, ctx):
        state = ctx.panel.state
        runs = _runs(ctx.dataset)
        state.runs = runs
        if state.eval_key not in runs:
            state.eval_key = runs[0] if runs else None
        if not state.eval_key:
            return
        results, config = self._run(ctx, state.eval_key)
        result, scope = self._result_for_view(ctx, results)
        compare = None
        if state.compare_key in runs and state.compare_key != state.eval_key:
            compare, _ = self._result_for_view(ctx, self._run(ctx, state.compare_key)[0])
        state.gt_field, state.pred_field = config.gt_field, config.pred_field
        state.scope = scope
        stats = result.stats
        ap = "n/a" if stats["AP"] is None else f"{stats['AP']:.3f}"
        ap50 = "n/a" if stats["AP50"] is None else f"{stats['AP50']:.3f}"
        state.summary = (
            f"**{state.eval_key}**: `{config.pred_field}` vs `{config.gt_field}`, "
            f"IoU {config.iou}, on the {scope}. AP {ap}, AP50 {ap50}."
        )
        state.classes = class_rows(result, compare, state.sort_by or "AP")
        state.class_names = list(result.classes)
        # Plot traces are (large) panel data, named like the plots; layouts are state.
        ctx.panel.data.confusion, state.confusion_layout = confusion_heatmap(
            result, state.scale == "log"
        )
        ctx.panel.data.bars, state.bars_layout = imbalance_bars(result)

    # ------------------------------------------------------------------ events

    def on_load(self, ctx):
        ctx.panel.state.sort_by = "AP"
        ctx.panel.state.scale = "linear"
        self._refresh(ctx)

    def on_change_view(self, ctx):
        self._refresh(ctx)

    def on_change_dataset(self, ctx):
        ctx.panel.state.eval_key = None
        self._refresh(ctx)

    def _setter(name):
        def handler(self, ctx):
            setattr(ctx.panel.state, name, ctx.params.get("value"))
            self._refresh(ctx)

        return handler

    on_change_eval = _setter("eval_key")
    on_change_compare = _setter("compare_key")
    on_change_sort = _setter("sort_by")
    on_change_scale = _setter("scale")
    on_change_class = _setter("error_class")
    del _setter

    def on_cell_click(self, ctx):
        state = ctx.panel.state
        gt_label, pred_label = ctx.params.get("y"), ctx.params.get("x")
        if gt_label == BACKGROUND and pred_label == BACKGROUND:
            return
        view = cell_view(
            ctx.view or ctx.dataset, state.eval_key, state.gt_field, state.pred_field,
            gt_label, pred_label,
        )  # fmt: skip
        ctx.ops.set_view(view)

    def on_row_click(self, ctx):
        state = ctx.panel.state
        row = (state.classes or [])[int(ctx.params.get("row", 0))]
        label = row["class"].removeprefix("★ ")
        ctx.ops.set_view(class_view(ctx.dataset, state.gt_field, state.pred_field, label))

    def _show_error(error):
        def handler(self, ctx):
            state = ctx.panel.state
            label = state.error_class or (state.class_names or [None])[0]
            if label is None:
                return
            view = error_view(
                ctx.dataset, state.eval_key, state.gt_field, state.pred_field, label, error
            )
            ctx.ops.set_view(view)

        return handler

    show_undetected = _show_error("undetected")
    show_ghosts = _show_error("ghosts")
    show_mispredicted = _show_error("mispredicted")
    show_correct = _show_error("correct")
    del _show_error

    def on_reset(self, ctx):
        ctx.ops.clear_view()

    # ------------------------------------------------------------------ render

    def render(self, ctx):
        state = ctx.panel.state
        panel = types.Object()
        if not state.runs:
            panel.md(
                "No evaluation run of this plugin yet: run the **Detection Debugger: "
                "evaluate detections** operator (or `evaluate_detections()` in Python).",
                name="empty",
            )
            return types.Property(panel, view=types.GridView(orientation="vertical"))

        runs = state.runs
        controls = panel.h_stack("controls", align_x="left", gap=2)
        controls.enum("eval_key", runs, default=state.eval_key, label="Evaluation",
                      on_change=self.on_change_eval, view=types.DropdownView())  # fmt: skip
        controls.enum("compare_key", runs, default=state.compare_key, label="Compare with",
                      on_change=self.on_change_compare, view=types.DropdownView())  # fmt: skip
        controls.enum("sort_by", list(SORT_KEYS), default=state.sort_by, label="Sort by",
                      on_change=self.on_change_sort, view=types.DropdownView())  # fmt: skip
        controls.btn("reset", label="Show all", on_click=self.on_reset)
        panel.md(state.summary or "", name="summary")

        table = types.TableView()
        columns = ["class", "AP", "AP50", "AR100", "num_gt", "num_pred", "tp", "fn",
                   "mispredicted", "fp"]  # fmt: skip
        labels = {"num_gt": "#GT", "num_pred": "#pred", "tp": "TP", "fn": "undetected",
                  "fp": "ghosts", "AR100": "AR"}  # fmt: skip
        if state.compare_key and state.compare_key != state.eval_key:
            columns += ["AP_compare", "AP_delta"]
            labels.update(AP_compare=f"AP ({state.compare_key})", AP_delta="ΔAP")
        for column in columns:
            table.add_column(column, label=labels.get(column, column))
        table.add_row_action("filter", self.on_row_click, label="Show class", icon="filter_list")
        panel.list("classes", types.Object(), view=table, label="Per class")
        panel.md(ROOM_CAPTION, name="room_caption")

        panel.plot("bars", layout=state.bars_layout,
                   config={"displayModeBar": False}, label="Annotations vs predictions")  # fmt: skip

        scale = panel.h_stack("scale_row", align_x="left")
        scale.enum("scale", ["linear", "log"], default=state.scale or "linear",
                   label="Colour scale", on_change=self.on_change_scale,
                   view=types.RadioGroup(orientation="horizontal"))  # fmt: skip
        panel.plot("confusion", layout=state.confusion_layout, on_click=self.on_cell_click,
                   config={"displayModeBar": False},
                   label="Confusion matrix: click a cell to see its objects")  # fmt: skip

        errors = panel.h_stack("errors", align_x="left", gap=1)
        errors.enum("error_class", state.class_names or [], default=state.error_class,
                    label="Class", on_change=self.on_change_class,
                    view=types.DropdownView())  # fmt: skip
        for name, method in (
            ("undetected", self.show_undetected), ("ghosts", self.show_ghosts),
            ("mispredicted", self.show_mispredicted), ("correct", self.show_correct),
        ):  # fmt: skip
            errors.btn(f"show_{name}", label=name, on_click=method, variant="outlined")
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2))
