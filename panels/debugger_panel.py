"""The ``Detection Debugger`` panel: per-class metrics, imbalance, the 4-way confusion matrix,
data slices and the comparison of two runs.

Every number is one click away from its objects: a confusion-matrix cell, an error-type
button or a per-object change button sets the App's view (see
:mod:`detection_debugger.datasets.views`). The panel follows the App's current view:
when it is a slice of an evaluation run (images, filtered objects or patches), the numbers
are re-evaluated exactly from the run's stored match table and shown next to the whole run.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.views import (
    BACKGROUND,
    cell_view,
    change_view,
    class_view,
    error_view,
)
from detection_debugger.panels.panel_data import (
    class_rows,
    confusion_heatmap,
    imbalance_bars,
    slice_bars,
    slice_rows,
)

PLUGIN = "@datacentric/detection-debugger"
SORT_KEYS = ("AP", "AP50", "AR100", "num_gt", "num_pred", "tp", "fn", "mispredicted", "fp")
ROOM_CAPTION = (
    "★ most room to improve: the lowest AP weighted by frequency, (1 - AP) x ln(1 + #GT): "
    "the AP gap counts most, frequency breaks near-ties"
)


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

    def _result_for_view(self, ctx, results):
        """The run's result on the App's current view (exact), the scope's name and a note."""
        from detection_debugger.datasets.slices import evaluate_view

        num_run = len(results.sample_ids)
        view = ctx.view
        if view is None:
            return results.result, None, f"whole run ({num_run} samples)"
        result, selection = evaluate_view(results, view)
        if selection.num_images == num_run and selection.level == "images":
            return results.result, None, f"whole run ({num_run} samples)"
        name = getattr(view, "name", None)
        scope = f"slice '{name}'" if name else "current view"
        note = (
            f"{scope}: {selection.num_images} of {num_run} samples"
            + (", filtered objects" if selection.level == "objects" else "")
            + ", re-evaluated exactly from the stored matches"
        )
        if selection.outside_samples or selection.outside_labels:
            note += (
                f" ({selection.outside_samples} samples and {selection.outside_labels} labels "
                "of the view were not evaluated by this run and are left out)"
            )
        return result, scope, note

    def _slices(self, ctx, results):
        """Rows of the slice list: each saved view with the run's AP on it."""
        from detection_debugger.datasets.slices import list_slices

        rows = []
        for row in list_slices(ctx.dataset, results):
            ap, whole = row["AP"], row["AP_whole_run"]
            rows.append(
                {
                    "slice": row["name"],
                    "samples": row["num_samples"],
                    "level": row["selection"],
                    "AP": None if ap is None else round(ap, 4),
                    "AP_delta": None if ap is None or whole is None else round(ap - whole, 4),
                    "description": row["description"],
                }
            )
        return rows

    def _issue_counts(self, ctx, gt_field):
        """Flagged label issues per type (tags written by find_label_issues), or None."""
        from detection_debugger.datasets.issue_fields import ISSUE_TAGS, missing_field

        fields = [f for f in (gt_field, missing_field(gt_field)) if ctx.dataset.has_field(f)]
        tags = ctx.dataset.count_label_tags(label_fields=fields)
        if not any(tag in tags for tag in ISSUE_TAGS.values()):
            return None
        return [{"issue": t, "flagged": tags.get(tag, 0)} for t, tag in ISSUE_TAGS.items()]

    def _refresh(self, ctx):
        from detection_debugger.datasets.comparison import compare_runs
        from detection_debugger.datasets.slices import debugger_runs, load_run

        state = ctx.panel.state
        runs = debugger_runs(ctx.dataset)
        state.runs = runs
        if state.eval_key not in runs:
            state.eval_key = runs[0] if runs else None
        if not state.eval_key:
            return
        results = load_run(ctx.dataset, state.eval_key)
        config = results.config
        result, scope, note = self._result_for_view(ctx, results)
        compare = None
        comparing = state.compare_key in runs and state.compare_key != state.eval_key
        if comparing:
            compare, _, _ = self._result_for_view(ctx, load_run(ctx.dataset, state.compare_key))
        state.gt_field, state.pred_field = config.gt_field, config.pred_field
        state.scope = note
        stats = result.stats
        ap = "n/a" if stats["AP"] is None else f"{stats['AP']:.3f}"
        ap50 = "n/a" if stats["AP50"] is None else f"{stats['AP50']:.3f}"
        state.summary = (
            f"**{state.eval_key}**: `{config.pred_field}` vs `{config.gt_field}`, "
            f"IoU {config.iou}, on the {note}. AP {ap}, AP50 {ap50}."
        )
        state.classes = class_rows(result, compare, state.sort_by or "AP")
        state.class_names = list(result.classes)
        # Plot traces are (large) panel data, named like the plots; layouts are state.
        ctx.panel.data.confusion, state.confusion_layout = confusion_heatmap(
            result, state.scale == "log"
        )
        ctx.panel.data.bars, state.bars_layout = imbalance_bars(result)

        whole = results.result
        state.slice_scope = scope
        if scope is not None:
            state.slice_classes = slice_rows(result, whole)
            ctx.panel.data.slice_bars, state.slice_bars_layout = slice_bars(result, whole, scope)
        state.slices = self._slices(ctx, results)
        state.issue_counts = self._issue_counts(ctx, config.gt_field)

        state.changes = None
        if comparing:
            view = None if scope is None else ctx.view
            try:
                run = compare_runs(ctx.dataset, state.eval_key, state.compare_key, view)
            except ValueError as error:
                state.changes_note = str(error)
            else:
                state.changes = [
                    {"class": name, **counts} for name, counts in run.changes.counts.items()
                ]
                state.changes_note = (
                    f"Ground-truth objects from **{state.eval_key}** to **{state.compare_key}** "
                    f"on the {note}: *fixed* = now found, *regressed* = no longer found."
                )

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
            ctx.view or ctx.dataset,
            state.eval_key,
            state.gt_field,
            state.pred_field,
            gt_label,
            pred_label,
        )
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

    def on_issue_click(self, ctx):
        from detection_debugger.datasets.views import issues_view

        row = (ctx.panel.state.issue_counts or [])[int(ctx.params.get("row", 0))]
        ctx.ops.set_view(issues_view(ctx.dataset, ctx.panel.state.gt_field, row["issue"]))

    def _prompt(name):
        def handler(self, ctx):
            ctx.prompt(f"{PLUGIN}/{name}")

        return handler

    on_find_issues = _prompt("find_label_issues")
    on_accept_issues = _prompt("accept_label_issues")
    on_reject_issues = _prompt("reject_label_issues")
    on_search = _prompt("search")
    on_embed = _prompt("compute_embeddings")
    on_save_slice = _prompt("save_slice")
    del _prompt

    def on_slice_click(self, ctx):
        row = (ctx.panel.state.slices or [])[int(ctx.params.get("row", 0))]
        ctx.ops.set_view(name=row["slice"])

    def _show_change(change):
        def handler(self, ctx):
            state = ctx.panel.state
            if not state.compare_key or state.compare_key == state.eval_key:
                return
            label = state.error_class or None
            view = change_view(
                ctx.view or ctx.dataset,
                state.eval_key,
                state.compare_key,
                state.gt_field,
                change,
                label,
            )
            ctx.ops.set_view(view)

        return handler

    show_fixed = _show_change("fixed")
    show_regressed = _show_change("regressed")
    del _show_change

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

        self._render_controls(panel, state)
        self._render_classes(panel, state)
        self._render_confusion(panel, state)
        if state.compare_key and state.compare_key != state.eval_key:
            self._render_changes(panel, state)
        if state.slice_scope:
            self._render_slice(panel, state)
        self._render_slice_list(panel, state)
        self._render_search(panel)
        self._render_issues(panel, state)
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2))

    def _render_controls(self, panel, state):
        """The run and comparison choices, the sort order, *Show all*, and the summary."""
        controls = panel.h_stack("controls", align_x="left", gap=2)
        controls.enum(
            "eval_key",
            state.runs,
            default=state.eval_key,
            label="Evaluation",
            on_change=self.on_change_eval,
            view=types.DropdownView(),
        )
        controls.enum(
            "compare_key",
            state.runs,
            default=state.compare_key,
            label="Compare with",
            on_change=self.on_change_compare,
            view=types.DropdownView(),
        )
        controls.enum(
            "sort_by",
            list(SORT_KEYS),
            default=state.sort_by,
            label="Sort by",
            on_change=self.on_change_sort,
            view=types.DropdownView(),
        )
        controls.btn("reset", label="Show all", on_click=self.on_reset)
        panel.md(state.summary or "", name="summary")

    def _render_classes(self, panel, state):
        """The per-class table (with the compared run's AP) and the imbalance bars."""
        table = types.TableView()
        columns = [
            "class",
            "AP",
            "AP50",
            "AR100",
            "num_gt",
            "num_pred",
            "tp",
            "fn",
            "mispredicted",
            "fp",
        ]
        labels = {
            "num_gt": "#GT",
            "num_pred": "#pred",
            "tp": "TP",
            "fn": "undetected",
            "fp": "ghosts",
            "AR100": "AR",
        }
        if state.compare_key and state.compare_key != state.eval_key:
            columns += ["AP_compare", "AP_delta"]
            labels.update(AP_compare=f"AP ({state.compare_key})", AP_delta="ΔAP")
        for column in columns:
            table.add_column(column, label=labels.get(column, column))
        table.add_row_action("filter", self.on_row_click, label="Show class", icon="filter_list")
        panel.list("classes", types.Object(), view=table, label="Per class")
        panel.md(ROOM_CAPTION, name="room_caption")

        panel.plot(
            "bars",
            layout=state.bars_layout,
            config={"displayModeBar": False},
            label="Annotations vs predictions",
        )

    def _render_confusion(self, panel, state):
        """The confusion matrix (click a cell) and the error-type buttons of one class."""
        scale = panel.h_stack("scale_row", align_x="left")
        scale.enum(
            "scale",
            ["linear", "log"],
            default=state.scale or "linear",
            label="Colour scale",
            on_change=self.on_change_scale,
            view=types.RadioGroup(orientation="horizontal"),
        )
        panel.plot(
            "confusion",
            layout=state.confusion_layout,
            on_click=self.on_cell_click,
            config={"displayModeBar": False},
            label="Confusion matrix: click a cell to see its objects",
        )

        errors = panel.h_stack("errors", align_x="left", gap=1)
        errors.enum(
            "error_class",
            state.class_names or [],
            default=state.error_class,
            label="Class",
            on_change=self.on_change_class,
            view=types.DropdownView(),
        )
        for name, method in (
            ("undetected", self.show_undetected),
            ("ghosts", self.show_ghosts),
            ("mispredicted", self.show_mispredicted),
            ("correct", self.show_correct),
        ):
            errors.btn(f"show_{name}", label=name, on_click=method, variant="outlined")

    def _render_search(self, panel):
        panel.md(
            "**Search** (CLIP): a text query or *more like the selected* images or objects, "
            "restricted to the current view (e.g. the undetected crosswalks of a matrix "
            "cell); the hits become the view, and *Save current view as slice* keeps them.",
            name="search_title",
        )
        buttons = panel.h_stack("search_buttons", align_x="left", gap=1)
        buttons.btn("search", label="Search...", on_click=self.on_search, variant="contained")
        buttons.btn(
            "embed", label="Compute embeddings...", on_click=self.on_embed, variant="outlined"
        )

    def _render_issues(self, panel, state):
        panel.md(
            "**Label issues**: missing, wrong-class, spurious annotations and loose boxes, "
            "scored from the predictions; click a type to review its objects, highest score "
            "first; accepting builds the corrected field `<gt>_fixed` (the original stays).",
            name="issues_title",
        )
        buttons = panel.h_stack("issue_buttons", align_x="left", gap=1)
        buttons.btn(
            "find_issues",
            label="Find label issues...",
            on_click=self.on_find_issues,
            variant="contained",
        )
        buttons.btn(
            "accept_issues",
            label="Accept selected...",
            on_click=self.on_accept_issues,
            variant="outlined",
        )
        buttons.btn(
            "reject_issues",
            label="Reject selected...",
            on_click=self.on_reject_issues,
            variant="outlined",
        )
        if not state.issue_counts:
            return
        table = types.TableView()
        table.add_column("issue", label="issue")
        table.add_column("flagged", label="flagged")
        table.add_row_action("review", self.on_issue_click, label="Review", icon="rule")
        panel.list("issue_counts", types.Object(), view=table, label="Flagged label issues")

    def _render_changes(self, panel, state):
        panel.md(state.changes_note or "", name="changes_note")
        if not state.changes:
            return
        table = types.TableView()
        for column, label in (
            ("class", "class"),
            ("fixed", "fixed"),
            ("regressed", "regressed"),
            ("still_missed", "still missed"),
            ("kept", "found by both"),
        ):
            table.add_column(column, label=label)
        panel.list("changes", types.Object(), view=table, label="Per-object changes")
        buttons = panel.h_stack("change_buttons", align_x="left", gap=1)
        target = state.error_class or "all classes"
        buttons.btn(
            "show_fixed", label=f"fixed ({target})", on_click=self.show_fixed, variant="outlined"
        )
        buttons.btn(
            "show_regressed",
            label=f"regressed ({target})",
            on_click=self.show_regressed,
            variant="outlined",
        )

    def _render_slice(self, panel, state):
        table = types.TableView()
        for column, label in (
            ("class", "class"),
            ("AP", "AP"),
            ("AP_whole", "AP (whole run)"),
            ("AP_delta", "ΔAP"),
            ("AP50", "AP50"),
            ("AP50_delta", "ΔAP50"),
            ("AR100", "AR"),
            ("AR100_delta", "ΔAR"),
            ("num_gt", "#GT"),
            ("tp", "TP"),
            ("fn", "undetected"),
            ("mispredicted", "mispredicted"),
            ("fp", "ghosts"),
        ):
            table.add_column(column, label=label)
        panel.list(
            "slice_classes",
            types.Object(),
            view=table,
            label=f"{state.slice_scope} vs the whole run",
        )
        panel.plot(
            "slice_bars",
            layout=state.slice_bars_layout,
            config={"displayModeBar": False},
            label="AP per class: whole run vs slice",
        )

    def _render_slice_list(self, panel, state):
        header = panel.h_stack("slice_header", align_x="left", gap=2)
        header.md("**Slices** (saved views): click a row to load it", name="slices_title")
        header.btn(
            "save_slice",
            label="Save current view as slice",
            on_click=self.on_save_slice,
            variant="contained",
        )
        if not state.slices:
            panel.md("No slices yet.", name="no_slices")
            return
        table = types.TableView()
        for column, label in (
            ("slice", "slice"),
            ("samples", "samples"),
            ("level", "level"),
            ("AP", "AP"),
            ("AP_delta", "ΔAP vs all"),
            ("description", "description"),
        ):
            table.add_column(column, label=label)
        table.add_row_action("load", self.on_slice_click, label="Load slice", icon="open_in_new")
        panel.list("slices", types.Object(), view=table, label="Slices")
