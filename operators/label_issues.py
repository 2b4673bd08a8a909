"""Label quality: ``find_label_issues``, ``accept_label_issues``, ``reject_label_issues``."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from detection_debugger.datasets.exporting import FIXED_SUFFIX
from detection_debugger.datasets.issue_fields import ISSUE_TAG_PREFIX, MISSING_SUFFIX
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    ISSUE_TYPES,
    MISSING,
    REJECTED,
    LabelIssueConfig,
)
from detection_debugger.operators.forms import detections_fields

__all__ = ["AcceptLabelIssues", "FindLabelIssues", "RejectLabelIssues"]

_OWN_SUFFIXES = (FIXED_SUFFIX, MISSING_SUFFIX)


def _gt_choices(dataset) -> list[str]:
    return [f for f in detections_fields(dataset) if not f.endswith(_OWN_SUFFIXES)]


def _gt_default(fields: list[str]) -> str | None:
    return "ground_truth" if "ground_truth" in fields else (fields[0] if fields else None)


class FindLabelIssues(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="find_label_issues",
            label="Detection Debugger: find label issues",
            description=(
                "Score missing, wrong-class, spurious and loose-box annotations from one or "
                f"more prediction fields; tag them {ISSUE_TAG_PREFIX}<type>"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        fields = _gt_choices(ctx.dataset)
        if len(fields) < 2:
            inputs.view("none", types.Warning(label="Needs two detections fields"))
            return types.Property(inputs)
        gt_default = _gt_default(fields)
        inputs.enum(
            "gt_field",
            fields,
            default=gt_default,
            required=False,
            label="Ground truth field",
            view=types.DropdownView(),
        )
        gt = ctx.params.get("gt_field") or gt_default
        preds = [f for f in fields if f != gt]
        inputs.list(
            "pred_fields",
            types.String(),
            default=preds,
            required=True,
            label="Prediction fields",
            description="Several models agreeing count more",
            view=types.AutocompleteView(choices=[types.Choice(f) for f in preds]),
        )
        defaults = LabelIssueConfig()
        inputs.float(
            "confidence",
            default=defaults.confidence,
            required=False,
            label="Confident prediction at",
        )
        for t in ISSUE_TYPES:
            inputs.float(
                f"{t}_threshold",
                default=defaults.threshold(t),
                required=False,
                label=f"Flag {t} at score",
            )
        inputs.enum(
            "show",
            list(ISSUE_TYPES),
            default=MISSING,
            required=False,
            label="Then show",
            view=types.RadioGroup(),
        )
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.datasets.label_issues import find_label_issues
        from detection_debugger.datasets.views import issues_view

        fields = _gt_choices(ctx.dataset)
        gt = ctx.params.get("gt_field") or _gt_default(fields)
        preds = ctx.params.get("pred_fields") or [f for f in fields if f != gt]
        defaults = LabelIssueConfig()
        overrides = {
            name: ctx.params[name]
            for name in ("confidence", *(f"{t}_threshold" for t in ISSUE_TYPES))
            if ctx.params.get(name) is not None
        }
        config = LabelIssueConfig(**{**defaults.to_dict(), **overrides})
        ctx.set_progress(progress=0.1, label="reading boxes and scoring")
        report = find_label_issues(ctx.target_view(), gt, preds, config)
        ctx.ops.reload_dataset()
        show = ctx.params.get("show") or MISSING
        ctx.ops.set_view(issues_view(ctx.dataset, gt, show))
        flagged = {t: c["flagged"] for t, c in report.counts.items()}
        ctx.ops.notify(
            "label issues: " + ", ".join(f"{n} {t}" for t, n in flagged.items()),
            variant="success",
        )
        return {"summary": report.summary(), "flagged": flagged}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.list("summary", types.String(), label="Label issues")
        return types.Property(outputs)


def _type_param(issue_type: str) -> str:
    """The checkbox parameter of one issue type in the review form."""
    return f"type_{issue_type}"


def _chosen_types(params: dict) -> list[str]:
    """The issue types checked in the review form (every type unless unchecked)."""
    return [t for t in ISSUE_TYPES if params.get(_type_param(t), True) is not False]


class _ReviewLabelIssues(foo.Operator):
    """Accepts or rejects the issues of the checked types: of the selected objects, or every
    flagged one in the current view when none is selected."""

    status = ""

    @property
    def config(self):
        verb = "accept" if self.status == ACCEPTED else "reject"
        return foo.OperatorConfig(
            name=f"{verb}_label_issues",
            label=f"Detection Debugger: {verb} label issues",
            description=(
                f"{verb.capitalize()} the issues of the selected objects in "
                f"<gt_field>{FIXED_SUFFIX} (the original field is not modified)"
            ),
            dynamic=True,
            allow_immediate_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        fields = _gt_choices(ctx.dataset)
        if not fields:
            inputs.view("none", types.Warning(label="This dataset has no detections field"))
            return types.Property(inputs)
        inputs.enum(
            "gt_field",
            fields,
            default=_gt_default(fields),
            required=False,
            label="Ground truth field",
            view=types.DropdownView(),
        )
        selected = len(ctx.selected_labels or [])
        verb = "accept" if self.status == ACCEPTED else "reject"
        inputs.view(
            "scope",
            types.Notice(
                label=f"{selected} selected objects: their issues of the checked types"
                if selected
                else "No objects selected: every flagged issue of the checked types in the "
                "current view"
            ),
        )
        for t in ISSUE_TYPES:
            inputs.bool(
                _type_param(t),
                default=True,
                required=False,
                label=f"{verb} {t}",
                view=types.CheckboxView(),
            )
        if not _chosen_types(ctx.params):
            inputs.view("no_type", types.Warning(label="Check at least one issue type"))
        return types.Property(inputs, view=types.View(label=self.config.label))

    def execute(self, ctx):
        from detection_debugger.datasets.review import flagged_issues, issues_of, review_issues

        gt = ctx.params.get("gt_field") or _gt_default(_gt_choices(ctx.dataset))
        chosen = _chosen_types(ctx.params)
        # Selected objects: their issues of the checked types; no selection: every flagged
        # issue of those types in the current view.
        selected = [s["label_id"] for s in (ctx.selected_labels or [])]
        if selected:
            items = issues_of(ctx.dataset, gt, selected, chosen)
        else:
            items = flagged_issues(ctx.view, gt, chosen) if chosen else []
        counts = review_issues(ctx.dataset, gt, items, self.status)
        ctx.ops.reload_dataset()
        ctx.ops.notify(
            f"{counts[self.status]} issues {self.status}; {counts['changed']} changes in "
            f"{gt}{FIXED_SUFFIX}",
            variant="success",
        )
        return counts


class AcceptLabelIssues(_ReviewLabelIssues):
    status = ACCEPTED


class RejectLabelIssues(_ReviewLabelIssues):
    status = REJECTED
