"""The ``Detection Debugger`` panel: per-class metrics, imbalance, the 4-way confusion matrix,
TIDE's error types, operating points (PR curves, score thresholds), data slices and the
comparison of two runs, in tabs.

Every number is one click away from its objects: a confusion-matrix cell, an error-type
button, a TIDE error type or a per-object change button sets the App's view (see
:mod:`detection_debugger.datasets.views`). The panel follows the App's current view:
when it is a slice of an evaluation run (images, filtered objects or patches), the numbers
are re-evaluated exactly from the run's stored match table and shown next to the whole run.
A score threshold (one for all classes, or per class) re-scores the per-class counts and the
confusion matrix from the stored matches (:func:`~detection_debugger.evaluation.rescore`).
"""

from __future__ import annotations

import json

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.views import (
    BACKGROUND,
    cell_view,
    change_view,
    class_view,
    error_view,
    tide_view,
)
from detection_debugger.panels.panel_data import (
    CONFUSION_ORDERS,
    class_rows,
    confusion_classes,
    confusion_heatmap,
    effective_thresholds,
    imbalance_bars,
    operating_rows,
    pr_curves,
    rescored,
    slice_bars,
    slice_rows,
    summary_cards,
    tide_bars,
    tide_rows,
)

PLUGIN = "@datacentric/detection-debugger"
SORT_KEYS = ("AP", "AP50", "AR100", "num_gt", "num_pred", "tp", "fn", "mispredicted", "fp")
ROOM_CAPTION = (
    "★ most room to improve: the lowest AP weighted by frequency, (1 - AP) x ln(1 + #GT): "
    "the AP gap counts most, frequency breaks near-ties"
)
ALL = "all classes"
ALL_TYPES = "all types"
TABS = (
    ("classes", "Classes"),
    ("confusion", "Confusion"),
    ("tide", "Errors (TIDE)"),
    ("operating", "Operating points"),
    ("slices", "Slices"),
    ("compare", "Compare"),
    ("issues", "Label issues"),
    ("search", "Search"),
)
TOP_N = ("10", "20", "40", "all")
QUEUE_ROWS = 25  # label issues listed in the review queue, highest score first
HYPOTHESES = 10  # failure slices proposed by *Discover failure slices*
DEFAULT_TOP_N = 20  # classes in the matrix when there are more
PR_CLASSES = 10  # curves drawn for "all classes": the most frequent
# handler -> the state key its input sets (see DetectionDebuggerPanel.execute)
INPUTS = {
    "on_change_tab": "tab",
    "on_change_threshold": "slider",
    "on_change_queue_type": "queue_type",
    "on_change_discover_class": "discover_class",
}
# the value an input shows for a state value (its ``default`` in render), where not the same
SHOWN = {
    "focus": lambda value: value or ALL,
    "tide_class": lambda value: value or ALL,
    "op_class": lambda value: value or ALL,
    "queue_type": lambda value: value or ALL_TYPES,
    "discover_class": lambda value: value or ALL,
    "off_diagonal": bool,
}
# what makes the App's view: the request parameters FiftyOne builds ``ctx.view`` from
VIEW_PARAMS = ("dataset_name", "view", "view_name", "filters", "extended", "group_slice")


def _handler(name: str, function):
    """``function`` named ``name``: the App calls a panel's handlers by their name."""
    function.__name__ = function.__qualname__ = name
    return function


def _class_or_none(value):
    return None if value in (None, "", ALL) else value


def _rounded(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def _tide_main(results, selection) -> dict | None:
    """TIDE's dAP per main error type on the view: stored with the run for the whole run
    (no TIDE matching to build), computed on the images of a slice."""
    if selection is None and results.tide:
        return results.tide["main"]
    image_mask = None if selection is None else selection.image_mask
    return results.tide_table().errors(image_mask).main


def _queue_row(rank: int, item: dict) -> dict:
    """A row of the review queue: what the table shows and what its actions need."""
    proposed = item["proposed_label"]
    return {
        "rank": rank + 1,
        "type": item["type"],
        "score": _rounded(item["score"]),
        "label": item["label"],
        "proposed": proposed if proposed != item["label"] else "",
        "confidence": _rounded(item["confidence"]),
        "iou": _rounded(item["iou"]),
        "review": item["review"] or "",
        **{k: item[k] for k in ("sample_id", "label_id", "field", "source_field", "source_id")},
    }


def _hypothesis_row(row: dict) -> dict:
    """A row of the failure-slice table (the whole hypothesis stays for its actions)."""
    shown = {k: _rounded(row[k]) for k in ("AP", "baseline_AP", "delta_AP", "score")}
    return {**row, **shown}


class DetectionDebuggerPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="detection_debugger",
            label="Detection Debugger",
            help_markdown=(
                "Per-class AP/AR, imbalance, the 4-way confusion matrix, TIDE's error types "
                "and operating points of an evaluation run made with the "
                "`evaluate_detections` operator of this plugin. Click a cell, an error type "
                "or a TIDE type to see the objects behind it."
            ),
            surfaces="grid",
        )

    # ------------------------------------------------------------------ state

    def _result_for_view(self, ctx, results):
        """The run's result on the App's current view (exact), the scope's name, a note and
        the view's selection (None for the whole run)."""
        from detection_debugger.datasets.slices import evaluate_selection, slice_selection

        num_run = len(results.sample_ids)
        view = ctx.view
        if view is None:
            return results.result, None, f"whole run ({num_run} samples)", None
        selection = slice_selection(results, view)
        if selection.num_images == num_run and selection.level == "images":
            return results.result, None, f"whole run ({num_run} samples)", None
        result = evaluate_selection(results, selection)
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
        return result, scope, note, selection

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
        from detection_debugger.datasets.slices import debugger_runs, load_run

        state = ctx.panel.state
        state.view_signature = self._view_signature(ctx)
        runs = debugger_runs(ctx.dataset)
        state.runs = runs
        if state.eval_key not in runs:
            state.eval_key = runs[0] if runs else None
        if not state.eval_key:
            return
        results = load_run(ctx.dataset, state.eval_key)
        config = results.config
        self._load_thresholds(ctx)
        result, scope, note, selection = self._result_for_view(ctx, results)
        compare = None
        comparing = state.compare_key in runs and state.compare_key != state.eval_key
        if comparing:
            compare = self._result_for_view(ctx, load_run(ctx.dataset, state.compare_key))[0]
        state.gt_field, state.pred_field = config.gt_field, config.pred_field
        state.scope = note
        state.class_names = list(result.classes)
        thresholds = effective_thresholds(
            state.class_names, state.threshold, state.class_thresholds
        )
        shown = self._rescored(results, result, selection, thresholds)
        stats = result.stats
        ap = "n/a" if stats["AP"] is None else f"{stats['AP']:.3f}"
        ap50 = "n/a" if stats["AP50"] is None else f"{stats['AP50']:.3f}"
        state.summary = (
            f"**{state.eval_key}**: `{config.pred_field}` vs `{config.gt_field}`, "
            f"IoU {config.iou}, on the {note}. AP {ap}, AP50 {ap50}."
            + ("" if thresholds is None else " Counts at the chosen score thresholds.")
        )
        state.classes = class_rows(shown, compare, state.sort_by or "AP")
        self._refresh_confusion(ctx, shown)
        ctx.panel.data.bars, state.bars_layout = imbalance_bars(shown)
        state.cards = [list(card) for card in summary_cards(shown, _tide_main(results, selection))]
        whole = results.result
        state.slice_scope = scope
        if scope is not None:
            state.slice_classes = slice_rows(result, whole)
            ctx.panel.data.slice_bars, state.slice_bars_layout = slice_bars(result, whole, scope)
        # Only the shown tab's own data: the others are computed when their tab opens.
        tab = state.tab
        if tab == "tide":
            self._refresh_tide(ctx, results, selection)
        elif tab == "operating":
            self._refresh_operating(ctx, results, selection, thresholds)
        elif tab == "slices":
            state.slices = self._slices(ctx, results)
        elif tab == "issues":
            state.issue_counts = self._issue_counts(ctx, config.gt_field)
            self._refresh_queue(ctx)
        elif tab == "compare":
            self._refresh_changes(ctx, note if comparing else None, scope)

    def _refresh_queue(self, ctx):
        """The review queue: the flagged label issues of the chosen type on the current view,
        highest score first, each with the prediction behind it."""
        from detection_debugger.datasets.review import review_queue

        state = ctx.panel.state
        state.queue = None
        if not state.issue_counts:
            return
        kind = None if state.queue_type in (None, "", ALL_TYPES) else state.queue_type
        samples = ctx.view if ctx.view is not None else ctx.dataset
        items = review_queue(samples, state.gt_field, [kind] if kind else None)
        open_items = sum(1 for item in items if not item["review"])
        state.queue_note = (
            f"{len(items)} issues on the {'view' if ctx.view is not None else 'dataset'}, "
            f"{open_items} not reviewed yet; the {min(len(items), QUEUE_ROWS)} highest scores "
            "below. *Show* opens the object with the prediction behind it; *Accept* writes "
            f"the fix into `{state.gt_field}_fixed` (the original stays), *Reject* keeps the "
            "label and remembers the decision."
        )
        state.queue = [_queue_row(i, item) for i, item in enumerate(items[:QUEUE_ROWS])]

    def _load_thresholds(self, ctx):
        """The thresholds saved with the run, when the panel (re)opens it."""
        from detection_debugger.datasets.runs import saved_thresholds

        state = ctx.panel.state
        if state.thresholds_key == state.eval_key:
            return
        saved = saved_thresholds(ctx.dataset, state.eval_key) or {}
        state.threshold = saved.get("threshold")
        state.class_thresholds = saved.get("classes") or {}
        state.thresholds_key = state.eval_key
        state.thresholds_note = (
            "Thresholds saved with the run are loaded." if saved else "No thresholds saved yet."
        )

    @staticmethod
    def _masks(selection):
        if selection is None:
            return None, None, None
        return selection.image_mask, selection.gt_mask, selection.pred_mask

    def _rescored(self, results, result, selection, thresholds):
        """``result`` with its counts and confusion matrix at ``thresholds`` (as is: None)."""
        from detection_debugger.evaluation import rescore

        if thresholds is None:
            return result
        confusion, counts = rescore(results.table(), thresholds, *self._masks(selection))
        return rescored(result, confusion, counts)

    def _refresh_confusion(self, ctx, shown):
        """The confusion matrix with its display options (top N, order, focus, diagonal)."""
        state = ctx.panel.state
        num_classes = len(shown.classes)
        if state.top_n not in TOP_N:
            state.top_n = str(DEFAULT_TOP_N) if num_classes > DEFAULT_TOP_N else "all"
        top_n = None if state.top_n == "all" else int(state.top_n)
        order = state.confusion_order if state.confusion_order in CONFUSION_ORDERS else None
        state.confusion_order = order or CONFUSION_ORDERS[0]
        focus = _class_or_none(state.focus)
        ctx.panel.data.confusion, state.confusion_layout = confusion_heatmap(
            shown,
            state.scale == "log",
            top_n=top_n,
            off_diagonal=bool(state.off_diagonal),
            order=state.confusion_order,
            focus=focus,
        )
        chosen, total = confusion_classes(shown, top_n, state.confusion_order, focus)
        which = f"class '{focus}' and the classes it is confused with" if focus else "classes"
        limited = f", the {len(chosen)} with most errors" if len(chosen) < total else ""
        state.confusion_note = (
            f"{len(chosen)} of {total} {which}{limited}, plus background; "
            f"{'correct cells hidden, ' if state.off_diagonal else ''}"
            "click a cell to see its objects."
        )

    def _refresh_tide(self, ctx, results, selection):
        """TIDE's error types on the view (its images, for a slice) and their rows."""
        state = ctx.panel.state
        image_mask = None if selection is None else selection.image_mask
        tide = results.tide_table().errors(image_mask)
        data = results.table().data
        label = _class_or_none(state.tide_class)
        if label not in data.class_names:
            label = state.tide_class = None
        state.tide_rows = tide_rows(tide, data, label)
        ctx.panel.data.tide_bars, state.tide_bars_layout = tide_bars(tide, label)
        scope = "the whole run" if selection is None else "the images of the view"
        state.tide_note = (
            f"TIDE on {scope}: AP50 {tide.ap:.1f} (TIDE's, x100); dAP = AP50 points gained "
            f"if every error of a type were fixed. Special: FalsePos "
            f"{tide.special['FalsePos']:.1f}, FalseNeg {tide.special['FalseNeg']:.1f}. "
            "*Show objects* sets the App's view to the objects of a type"
            + (f" of class {label}." if label else ".")
        )
        return tide

    def _refresh_operating(self, ctx, results, selection, thresholds):
        """PR curves, the best-F1 thresholds, the slider's value and the per-class rows."""
        from detection_debugger.evaluation import operating_points

        state = ctx.panel.state
        table = results.table()
        own = float(table.outcomes.score_threshold)
        points = operating_points(table, *self._masks(selection))
        label = _class_or_none(state.op_class)
        if label not in points:
            label = state.op_class = None
        if label is not None:
            names = [label]
        else:
            ranked = sorted(points, key=lambda n: -points[n].num_gt)
            names = [n for n in ranked if points[n].num_gt][:PR_CLASSES]
        ctx.panel.data.pr_curves, state.pr_layout = pr_curves(points, names, thresholds)
        state.operating = operating_rows(points, thresholds, own)
        if label is not None:
            value = (state.class_thresholds or {}).get(label, state.threshold)
        else:
            value = state.threshold
        state.slider = own if value is None else float(value)
        scores = table.data.pred_scores
        state.slider_max = max(1.0, float(scores.max()) if len(scores) else 1.0)
        shown = "" if label else f" (the {len(names)} most frequent classes)"
        state.pr_note = (
            f"Precision-recall per class at IoU {table.outcomes.iou_threshold}{shown}: ★ best "
            "F1, ○ the chosen threshold. The slider sets the score threshold of "
            + (f"class {label}" if label else "every class")
            + "; the per-class counts and the confusion matrix follow it."
        )

    def _refresh_changes(self, ctx, note, scope):
        """The per-object changes between the two runs (``note``: None when not comparing)."""
        from detection_debugger.datasets.comparison import compare_runs

        state = ctx.panel.state
        state.changes = None
        if note is None:
            return
        view = None if scope is None else ctx.view
        try:
            run = compare_runs(ctx.dataset, state.eval_key, state.compare_key, view)
        except ValueError as error:
            state.changes_note = str(error)
            return
        state.changes = [{"class": name, **counts} for name, counts in run.changes.counts.items()]
        state.changes_note = (
            f"Ground-truth objects from **{state.eval_key}** to **{state.compare_key}** "
            f"on the {note}: *fixed* = now found, *regressed* = no longer found."
        )

    # ------------------------------------------------------------------ events

    def on_load(self, ctx):
        ctx.panel.state.sort_by = "AP"
        ctx.panel.state.scale = "linear"
        ctx.panel.state.tab = ctx.panel.state.tab or TABS[0][0]
        self._refresh(ctx)

    def on_change_view(self, ctx):
        self._refresh(ctx)

    @staticmethod
    def _view_signature(ctx) -> str:
        """The App's view as the request states it (the App reports an unchanged view again
        whenever the panel re-mounts)."""
        params = {name: ctx.request_params.get(name) for name in VIEW_PARAMS}
        return json.dumps(params, sort_keys=True, default=str)

    def on_change_dataset(self, ctx):
        ctx.panel.state.eval_key = None
        ctx.panel.state.thresholds_key = None
        self._refresh(ctx)

    def execute(self, ctx):
        """Inputs report their value when they mount, and an unchanged view is reported again
        whenever the panel re-mounts: these change nothing and render nothing (else each render
        would mount them again). The App writes a changed input's value into the panel state
        before calling its handler, so a report is told from a change by the value the panel
        last showed (``state.shown``, kept by :meth:`render`)."""
        method = ctx.params.get("__method__")
        state = ctx.panel.state
        key = INPUTS.get(method)
        if key is not None and ctx.params.get("value") == (state.get("shown") or {}).get(key):
            return None
        if method == "on_change_view" and state.get("view_signature") == (
            self._view_signature(ctx)
        ):
            return None
        return super().execute(ctx)

    def on_change_tab(self, ctx):
        ctx.panel.state.tab = ctx.params.get("value") or TABS[0][0]
        self._refresh(ctx)

    def _setter(method, name):
        INPUTS[method] = name

        def handler(self, ctx):
            setattr(ctx.panel.state, name, ctx.params.get("value"))
            self._refresh(ctx)

        return _handler(method, handler)

    on_change_eval = _setter("on_change_eval", "eval_key")
    on_change_compare = _setter("on_change_compare", "compare_key")
    on_change_sort = _setter("on_change_sort", "sort_by")
    on_change_scale = _setter("on_change_scale", "scale")
    on_change_class = _setter("on_change_class", "error_class")
    on_change_top_n = _setter("on_change_top_n", "top_n")
    on_change_order = _setter("on_change_order", "confusion_order")
    on_change_off_diagonal = _setter("on_change_off_diagonal", "off_diagonal")
    on_change_focus = _setter("on_change_focus", "focus")
    on_change_tide_class = _setter("on_change_tide_class", "tide_class")
    on_change_op_class = _setter("on_change_op_class", "op_class")
    del _setter

    def on_change_threshold(self, ctx):
        """The slider: the threshold of the chosen class, or of every class."""
        state = ctx.panel.state
        value = ctx.params.get("value")
        if value is None:
            return
        label = _class_or_none(state.op_class)
        if label is None:
            state.threshold = float(value)
        else:
            state.class_thresholds = {**(state.class_thresholds or {}), label: float(value)}
        state.thresholds_note = "Not saved: *Save thresholds with the run* keeps them."
        self._refresh(ctx)

    def on_best_f1(self, ctx):
        """Every class at its best-F1 threshold."""
        state = ctx.panel.state
        best = {row["class"]: row["best_score"] for row in state.operating or []}
        state.class_thresholds = {k: v for k, v in best.items() if v is not None}
        state.thresholds_note = "Best-F1 thresholds, not saved yet."
        self._refresh(ctx)

    def on_reset_thresholds(self, ctx):
        ctx.panel.state.threshold = None
        ctx.panel.state.class_thresholds = {}
        ctx.panel.state.thresholds_note = "The run's own threshold (not saved yet)."
        self._refresh(ctx)

    def on_save_thresholds(self, ctx):
        from detection_debugger.datasets.runs import save_thresholds

        state = ctx.panel.state
        save_thresholds(ctx.dataset, state.eval_key, state.threshold, state.class_thresholds)
        state.thresholds_note = f"Thresholds saved with the run {state.eval_key}."
        ctx.ops.notify(state.thresholds_note, variant="success")

    def _base_view(self, ctx):
        """The loaded slice (a saved view, not of patches), else the dataset: a second TIDE
        type must not be looked for inside the objects of the first."""
        from detection_debugger.datasets.fiftyone_private import is_patches_view

        view = ctx.view
        if view is None or is_patches_view(view) or not getattr(view, "name", None):
            return ctx.dataset
        return view

    def on_tide_click(self, ctx):
        state = ctx.panel.state
        row = (state.tide_rows or [])[int(ctx.params.get("row", 0))]
        field = state.gt_field if row["type"] == "Miss" else state.pred_field
        if not ctx.dataset.has_field(f"{field}.detections.{state.eval_key}_tide"):
            ctx.ops.notify(
                f"Run {state.eval_key} has no per-object TIDE types: evaluate it again",
                variant="warning",
            )
            return
        view = tide_view(
            self._base_view(ctx),
            state.eval_key,
            state.gt_field,
            state.pred_field,
            row["type"],
            _class_or_none(state.tide_class),
        )
        ctx.ops.set_view(view)

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

    def _show_error(method, error):
        def handler(self, ctx):
            state = ctx.panel.state
            label = state.error_class or (state.class_names or [None])[0]
            if label is None:
                return
            view = error_view(
                ctx.dataset, state.eval_key, state.gt_field, state.pred_field, label, error
            )
            ctx.ops.set_view(view)

        return _handler(method, handler)

    show_undetected = _show_error("show_undetected", "undetected")
    show_ghosts = _show_error("show_ghosts", "ghosts")
    show_mispredicted = _show_error("show_mispredicted", "mispredicted")
    show_correct = _show_error("show_correct", "correct")
    del _show_error

    def on_reset(self, ctx):
        ctx.ops.clear_view()

    def on_issue_click(self, ctx):
        from detection_debugger.datasets.views import issues_view

        row = (ctx.panel.state.issue_counts or [])[int(ctx.params.get("row", 0))]
        ctx.ops.set_view(issues_view(ctx.dataset, ctx.panel.state.gt_field, row["issue"]))

    def _prompt(method, name):
        def handler(self, ctx):
            ctx.prompt(f"{PLUGIN}/{name}")

        return _handler(method, handler)

    on_find_issues = _prompt("on_find_issues", "find_label_issues")
    on_accept_issues = _prompt("on_accept_issues", "accept_label_issues")
    on_reject_issues = _prompt("on_reject_issues", "reject_label_issues")
    on_search = _prompt("on_search", "search")
    on_embed = _prompt("on_embed", "compute_embeddings")
    on_save_slice = _prompt("on_save_slice", "save_slice")
    del _prompt

    def on_slice_click(self, ctx):
        row = (ctx.panel.state.slices or [])[int(ctx.params.get("row", 0))]
        ctx.ops.set_view(name=row["slice"])

    def on_change_discover_class(self, ctx):
        ctx.panel.state.discover_class = ctx.params.get("value")

    def on_change_queue_type(self, ctx):
        ctx.panel.state.queue_type = ctx.params.get("value")
        self._refresh_queue(ctx)

    def _queue_item(self, ctx) -> dict:
        return (ctx.panel.state.queue or [])[int(ctx.params.get("row", 0))]

    def on_queue_show(self, ctx):
        from detection_debugger.datasets.views import issue_evidence_view

        ctx.ops.set_view(issue_evidence_view(ctx.dataset, self._queue_item(ctx)))

    def _review(method, status):
        def handler(self, ctx):
            from detection_debugger.datasets.review import accept_issues, reject_issues

            item = self._queue_item(ctx)
            decide = accept_issues if status == "accepted" else reject_issues
            decide(ctx.dataset, ctx.panel.state.gt_field, [(item["label_id"], item["type"])])
            ctx.panel.state.issue_counts = self._issue_counts(ctx, ctx.panel.state.gt_field)
            self._refresh_queue(ctx)
            ctx.ops.notify(f"{item['type']} issue of a {item['label']} {status}")

        return _handler(method, handler)

    on_queue_accept = _review("on_queue_accept", "accepted")
    on_queue_reject = _review("on_queue_reject", "rejected")
    del _review

    def on_discover(self, ctx):
        """Failure slices of the run (of the chosen class); the first time, the descriptors
        are computed by the ``discover_slices`` operator (progress, delegation)."""
        from detection_debugger.datasets.descriptors import descriptors_missing
        from detection_debugger.datasets.discovery import discover_slices

        state = ctx.panel.state
        if descriptors_missing(ctx.dataset, [state.pred_field], state.gt_field):
            state.discover_note = (
                "The descriptors of this run's objects are computed first (once, stored as "
                "fields): run the operator, then *Discover failure slices* again."
            )
            ctx.prompt(f"{PLUGIN}/discover_slices", params={"eval_key": state.eval_key})
            return
        cls = _class_or_none(state.discover_class)
        rows = discover_slices(ctx.dataset, state.eval_key, cls, top=HYPOTHESES)
        state.hypotheses = [_hypothesis_row(row) for row in rows]
        state.discover_note = (
            f"{len(rows)} failure slices of {cls or 'every class'} on **{state.eval_key}**, "
            "worst first: AP on the slice vs the class on the whole run, significant after "
            "the correction for the number of slices tried. *Show* loads one, *Save as slice* "
            "keeps it in the slice list."
            if rows
            else f"No slice of {cls or 'any class'} loses AP significantly on {state.eval_key}."
        )

    def _hypothesis(self, ctx) -> dict:
        return (ctx.panel.state.hypotheses or [])[int(ctx.params.get("row", 0))]

    def on_hypothesis_show(self, ctx):
        from detection_debugger.datasets.discovery import hypothesis_view

        view = hypothesis_view(ctx.dataset, ctx.panel.state.eval_key, self._hypothesis(ctx))
        ctx.ops.set_view(view)

    def on_hypothesis_save(self, ctx):
        from detection_debugger.datasets.discovery import save_hypothesis
        from detection_debugger.datasets.runs import load_run

        state = ctx.panel.state
        name = save_hypothesis(ctx.dataset, state.eval_key, self._hypothesis(ctx), overwrite=True)
        state.slices = self._slices(ctx, load_run(ctx.dataset, state.eval_key))
        ctx.ops.notify(f"saved slice '{name}'", variant="success")

    def _show_change(method, change):
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

        return _handler(method, handler)

    show_fixed = _show_change("show_fixed", "fixed")
    show_regressed = _show_change("show_regressed", "regressed")
    del _show_change

    # ------------------------------------------------------------------ render

    def render(self, ctx):
        state = ctx.panel.state
        # before the output: the App mounts its inputs (which report) as soon as it arrives
        state.shown = {
            name: SHOWN.get(name, lambda value: value)(state.get(name)) for name in INPUTS.values()
        }
        panel = types.Object()
        if not state.runs:
            panel.md(
                "No evaluation run of this plugin yet: run the **Detection Debugger: "
                "evaluate detections** operator (or `evaluate_detections()` in Python).",
                name="empty",
            )
            return types.Property(panel, view=types.GridView(orientation="vertical"))

        self._render_controls(panel, state)
        comparing = bool(state.compare_key and state.compare_key != state.eval_key)
        # A radio group as the tab bar: the App's TabsView calls on_change whenever it
        # mounts, and every call re-renders the panel, which mounts it again (a loop).
        tabs = types.RadioGroup(orientation="horizontal")
        for value, label in TABS:
            if value != "compare" or comparing:
                tabs.add_choice(value, label=label)
        tab = state.tab if state.tab in tabs.values() else TABS[0][0]
        panel.enum("tab", tabs.values(), default=tab, view=tabs, on_change=self.on_change_tab)
        {
            "classes": self._render_classes,
            "confusion": self._render_confusion,
            "tide": self._render_tide,
            "operating": self._render_operating,
            "slices": self._render_slices,
            "compare": self._render_changes,
            "issues": self._render_issues,
            "search": self._render_search,
        }[tab](panel, state)
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2))

    def _render_controls(self, panel, state):
        """The run and comparison choices, the sort order, *Show all*, the summary and the
        summary cards."""
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
        controls.btn("reset", label="Show all", on_click=self.on_reset)
        panel.md(state.summary or "", name="summary")
        cards = panel.h_stack("cards", align_x="left", gap=3)
        for i, (title, value) in enumerate(state.cards or []):
            cards.md(f"**{value}**  \n{title}", name=f"card_{i}")

    def _render_classes(self, panel, state):
        """The per-class table (with the compared run's AP) and the imbalance bars."""
        sort = panel.h_stack("sort_row", align_x="left")
        sort.enum(
            "sort_by",
            list(SORT_KEYS),
            default=state.sort_by,
            label="Sort by",
            on_change=self.on_change_sort,
            view=types.DropdownView(),
        )
        table = types.TableView()
        columns = ["class", "AP", "AP50", "AR100", "num_gt", "num_pred", "tp", "fn"]
        columns += ["mispredicted", "fp"]
        labels = {
            "num_gt": "#GT",
            "num_pred": "#pred",
            "tp": "TP",
            "fn": "undet.",
            "mispredicted": "mispred.",
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
        """The confusion matrix (click a cell), its options and the error-type buttons."""
        options = panel.h_stack("confusion_options", align_x="left", gap=2)
        for name, values, label, method in (
            ("top_n", list(TOP_N), "Classes shown", self.on_change_top_n),
            ("confusion_order", list(CONFUSION_ORDERS), "Order", self.on_change_order),
            ("focus", [ALL, *(state.class_names or [])], "Focus class", self.on_change_focus),
            ("scale", ["linear", "log"], "Colour scale", self.on_change_scale),
        ):
            options.enum(
                name,
                values,
                default=state.get(name) if name != "focus" else (state.focus or ALL),
                label=label,
                on_change=method,
                view=types.DropdownView(),
            )
        options.bool(
            "off_diagonal",
            default=bool(state.off_diagonal),
            label="Errors only (hide correct cells)",
            on_change=self.on_change_off_diagonal,
            view=types.CheckboxView(),
        )
        panel.md(state.confusion_note or "", name="confusion_note")
        panel.plot(
            "confusion",
            layout=state.confusion_layout,
            on_click=self.on_cell_click,
            config={"displayModeBar": False},
            label="Confusion matrix: click a cell to see its objects",
        )
        self._render_error_buttons(panel, state)

    def _render_error_buttons(self, panel, state):
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

    def _render_tide(self, panel, state):
        """TIDE's dAP and counts per error type, overall and for one class; a row's action
        shows its objects."""
        panel.enum(
            "tide_class",
            [ALL, *(state.class_names or [])],
            default=state.tide_class or ALL,
            label="Class",
            on_change=self.on_change_tide_class,
            view=types.DropdownView(),
        )
        panel.md(state.tide_note or "", name="tide_note")
        table = types.TableView()
        columns = [("type", "error type"), ("dAP", "dAP (all)"), ("count", "count (all)")]
        label = _class_or_none(state.tide_class)
        if label:
            columns += [("dAP_class", f"dAP ({label})"), ("count_class", f"count ({label})")]
        for column, text in columns:
            table.add_column(column, label=text)
        table.add_row_action("show", self.on_tide_click, label="Show objects", icon="visibility")
        panel.list("tide_rows", types.Object(), view=table, label="Errors (TIDE)")
        panel.plot(
            "tide_bars",
            layout=state.tide_bars_layout,
            config={"displayModeBar": False},
            label="dAP per error type",
        )

    def _render_operating(self, panel, state):
        """PR curves, the threshold slider, its buttons and the per-class operating points."""
        top = panel.h_stack("operating_controls", align_x="left", gap=2)
        top.enum(
            "op_class",
            [ALL, *(state.class_names or [])],
            default=state.op_class or ALL,
            label="Class",
            on_change=self.on_change_op_class,
            view=types.DropdownView(),
        )
        top.btn("best_f1", label="Best-F1 thresholds", on_click=self.on_best_f1)
        top.btn("reset_thresholds", label="Reset thresholds", on_click=self.on_reset_thresholds)
        top.btn(
            "save_thresholds",
            label="Save thresholds with the run",
            on_click=self.on_save_thresholds,
            variant="contained",
        )
        panel.float(
            "slider",
            min=0.0,
            max=state.slider_max or 1.0,
            default=state.slider,
            on_change=self.on_change_threshold,
            # min 0 in the view keeps it one slider (the App makes a range of a truthy min)
            view=types.SliderView(
                label="Score threshold",
                min=0.0,
                max=state.slider_max or 1.0,
                view_multiple_of=0.01,
                value_precision=2,
            ),
        )
        panel.md(f"{state.pr_note or ''} {state.thresholds_note or ''}", name="pr_note")
        panel.plot(
            "pr_curves",
            layout=state.pr_layout,
            config={"displayModeBar": False},
            label="Precision-recall curves",
        )
        table = types.TableView()
        for column, text in (
            ("class", "class"),
            ("best_score", "best-F1 score"),
            ("best_f1", "best F1"),
            ("threshold", "threshold"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "F1"),
            ("tp", "TP"),
            ("kept", "kept"),
        ):
            table.add_column(column, label=text)
        panel.list("operating", types.Object(), view=table, label="Operating points")

    def _render_search(self, panel, state):
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
        self._render_queue(panel, state)

    def _render_queue(self, panel, state):
        """The review queue: highest scores first, each row one click from its evidence."""
        from detection_debugger.evaluation.label_issues import ISSUE_TYPES

        panel.enum(
            "queue_type",
            [ALL_TYPES, *ISSUE_TYPES],
            default=state.queue_type or ALL_TYPES,
            label="Review queue",
            on_change=self.on_change_queue_type,
            view=types.DropdownView(),
        )
        panel.md(state.queue_note or "", name="queue_note")
        if not state.queue:
            return
        table = types.TableView()
        for column in ("rank", "type", "score", "label", "proposed", "confidence", "iou"):
            table.add_column(column, label=column)
        table.add_column("review", label="decision")
        table.add_row_action("show", self.on_queue_show, label="Show", icon="visibility")
        table.add_row_action("accept", self.on_queue_accept, label="Accept", icon="check")
        table.add_row_action("reject", self.on_queue_reject, label="Reject", icon="close")
        panel.list("queue", types.Object(), view=table, label="Label issues, highest score first")

    def _render_changes(self, panel, state):
        panel.md(state.changes_note or "", name="changes_note")
        self._render_error_buttons(panel, state)
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

    def _render_slices(self, panel, state):
        """The view vs the whole run (on a slice) and the list of slices."""
        if state.slice_scope:
            self._render_slice(panel, state)
        self._render_slice_list(panel, state)
        self._render_discovery(panel, state)

    def _render_discovery(self, panel, state):
        """Failure slices found from the objects' descriptors, each one click from its view."""
        row = panel.h_stack("discover_row", align_x="left", gap=2)
        row.enum(
            "discover_class",
            [ALL, *(state.class_names or [])],
            default=state.discover_class or ALL,
            label="Class",
            on_change=self.on_change_discover_class,
            view=types.DropdownView(),
        )
        row.btn(
            "discover",
            label="Discover failure slices",
            on_click=self.on_discover,
            variant="contained",
        )
        panel.md(state.discover_note or "", name="discover_note")
        if not state.hypotheses:
            return
        table = types.TableView()
        for column, text in (
            ("name", "slice"),
            ("level", "level"),
            ("num_gt", "#GT"),
            ("AP", "AP"),
            ("baseline_AP", "AP (class)"),
            ("delta_AP", "ΔAP"),
            ("score", "score"),
            ("description", "description"),
        ):
            table.add_column(column, label=text)
        table.add_row_action("show", self.on_hypothesis_show, label="Show", icon="visibility")
        table.add_row_action("save", self.on_hypothesis_save, label="Save as slice", icon="save")
        panel.list("hypotheses", types.Object(), view=table, label="Failure slices, worst first")
