"""``detection-debugger issues find|accept|reject``: label quality from the command line.

Kept apart from :mod:`detection_debugger.datasets.label_issues` and
:mod:`detection_debugger.datasets.review` so that building the parser imports no FiftyOne.
"""

from __future__ import annotations

import argparse
import json
import math

from detection_debugger.cli.common import UsageError
from detection_debugger.datasets.exporting import FIXED_SUFFIX
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    ISSUE_TYPES,
    REJECTED,
    LabelIssueConfig,
)

__all__ = ["add_issues_command"]


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not (value >= 0.0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return int(text)


def add_issues_command(subparsers) -> argparse.ArgumentParser:  # long: one flag per line
    """Adds ``issues find|accept|reject`` to the ``detection-debugger`` sub-commands."""
    issues = subparsers.add_parser(
        "issues",
        help="find label errors (missing, wrong class, spurious, loose box) and review them",
        description=(
            "Label quality: 'find' scores annotation errors of a ground-truth field from one "
            "or more prediction fields and tags them; 'accept'/'reject' review issues into "
            "<gt-field>_fixed (the original field is never modified)."
        ),
    )
    sub = issues.add_subparsers(dest="issues_command", required=True, metavar="ACTION")
    find = sub.add_parser("find", help="score and tag label issues")
    find.add_argument("--dataset", required=True)
    find.add_argument("--gt-field", required=True, metavar="FIELD")
    find.add_argument(
        "--pred-field",
        required=True,
        action="append",
        metavar="FIELD",
        help="a prediction field (repeat for several models)",
    )
    find.add_argument("--json", action="store_true", help="print the report as JSON")
    find.add_argument(
        "--embeddings",
        metavar="BRAIN_KEY",
        help="a similarity index over the ground-truth objects (e.g. clip_ground_truth): the "
        "classes of each object's nearest neighbours support wrong_class",
    )
    defaults = LabelIssueConfig()
    for name, spec in LabelIssueConfig.__dataclass_fields__.items():
        default = getattr(defaults, name)
        kind = _count if spec.type == "int" else _unit if default <= 1 else _positive
        find.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=default, help=f"({default})"
        )
    find.set_defaults(run=run_issues_find)
    for action, run in (("accept", run_issues_accept), ("reject", run_issues_reject)):
        p = sub.add_parser(action, help=f"{action} issues into <gt-field>{FIXED_SUFFIX}")
        p.add_argument("--dataset", required=True)
        p.add_argument("--gt-field", required=True, metavar="FIELD")
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--ids", nargs="+", metavar="LABEL_ID", help="label ids (every flagged issue of each)"
        )
        target.add_argument(
            "--type",
            nargs="+",
            choices=ISSUE_TYPES,
            help="every flagged issue of these types",
        )
        p.set_defaults(run=run)
    return issues


def _load(name: str):
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise UsageError(f"no dataset named {name!r}")
    return fo.load_dataset(name)


def run_issues_find(args: argparse.Namespace) -> int:
    from detection_debugger.datasets.label_issues import find_label_issues
    from detection_debugger.evaluation import InputError

    dataset = _load(args.dataset)
    try:
        config = LabelIssueConfig(
            **{
                k: getattr(args, k)
                for k in LabelIssueConfig.__dataclass_fields__
                if hasattr(args, k)
            }
        )
        report = find_label_issues(
            dataset, args.gt_field, args.pred_field, config, embeddings_key=args.embeddings
        )
    except (ValueError, InputError) as error:
        raise UsageError(str(error)) from None
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.summary()))
    return 0


def _review_command(args: argparse.Namespace, status: str) -> int:
    from detection_debugger.datasets.review import flagged_issues, review_issues

    dataset = _load(args.dataset)
    try:
        items = args.ids or flagged_issues(dataset, args.gt_field, args.type)
        counts = review_issues(dataset, args.gt_field, items, status)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(
        f"{counts[status]} issues {status}, {counts['changed']} changes to "
        f"{args.gt_field}{FIXED_SUFFIX}"
    )
    return 0


def run_issues_accept(args: argparse.Namespace) -> int:
    return _review_command(args, ACCEPTED)


def run_issues_reject(args: argparse.Namespace) -> int:
    return _review_command(args, REJECTED)
