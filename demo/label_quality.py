"""How good is a label-issue finder? Precision and recall against the demo's planted errors.

Used by the demo (``demo/runner.py``), the benchmark (``bench/label_issues.py``, which also
scores FiftyOne Brain's ``compute_mistakenness``) and the quality test: the planted errors of
a demo manifest (:func:`manifest_truth`) against ranked candidates of any finder
(:class:`Candidate`; ours: :func:`our_candidates`), per issue type (:func:`measure_quality`,
:func:`format_quality`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection_debugger.datasets.issue_fields import (
    GT_TYPES,
    ISSUE_TAGS,
    SCORE_FIELDS,
    missing_field,
)
from detection_debugger.evaluation.label_issues import ISSUE_TYPES, MISSING
from detection_debugger.evaluation.matching import pair_iou
from detection_debugger.formats.relative_boxes import pixel_boxes

__all__ = [
    "Candidate",
    "average_precision",
    "engine_candidates",
    "format_quality",
    "manifest_truth",
    "measure_quality",
    "our_candidates",
]


def manifest_truth(samples, gt_field: str, manifest: dict) -> dict:
    """The planted errors of a demo manifest as label ids and boxes of ``samples``.

    Returns ``{"missing": {sample id: [[x, y, w, h] pixels]}, "<type>": {label ids}}``.
    Samples are matched by file stem; an error's ``line`` is its object's position in the
    ground-truth field (the importers keep file order).
    """
    stems = {}
    for sid, path, per in zip(*samples.values(["id", "filepath", f"{gt_field}.detections.id"])):
        stems[Path(path).stem] = (sid, per or [])
    truth: dict = {t: set() for t in GT_TYPES}
    truth[MISSING] = {}
    for error in manifest["errors"]:
        if error["image"] not in stems:
            continue
        sid, label_ids = stems[error["image"]]
        if error["type"] == MISSING:
            x1, y1, x2, y2 = error["box"]
            truth[MISSING].setdefault(sid, []).append([x1, y1, x2 - x1, y2 - y1])
        else:
            truth[error["type"]].add(label_ids[error["line"] - 1])
    return truth


@dataclass
class Candidate:
    """One ranked issue of any finder: a label id, or ``(sample id, pixel box)`` (missing)."""

    key: str | tuple
    score: float
    flagged: bool


def our_candidates(samples, gt_field: str) -> dict[str, list[Candidate]]:
    """The issues ``find_label_issues`` wrote on ``samples``, per type."""
    out: dict[str, list[Candidate]] = {t: [] for t in ISSUE_TYPES}
    values = samples.values(
        [f"{gt_field}.detections.{n}" for n in ("id", "tags", *SCORE_FIELDS.values())]
    )
    for per_sample in zip(*values):
        for lid, tags, *scores in zip(*(v or [] for v in per_sample)):
            for t, score in zip(GT_TYPES, scores):
                if score:
                    out[t].append(Candidate(lid, score, ISSUE_TAGS[t] in (tags or [])))
    missing = missing_field(gt_field)
    sids, widths, heights, boxes, scores, tags = samples.values(
        [
            "id",
            "metadata.width",
            "metadata.height",
            f"{missing}.detections.bounding_box",
            f"{missing}.detections.issue_score",
            f"{missing}.detections.tags",
        ]
    )
    for sid, w, h, per_box, per_score, per_tags in zip(sids, widths, heights, boxes, scores, tags):
        per_box = pixel_boxes(per_box or [], [(w, h)] * len(per_box or []))
        for box, score, t in zip(per_box.tolist(), per_score or [], per_tags or []):
            out[MISSING].append(Candidate((sid, tuple(box)), score, ISSUE_TAGS[MISSING] in t))
    return out


def _hit_function(issue_type: str, truth: dict, missing_iou: float):
    """``hit(candidate)``: the planted error a candidate finds (a hashable key), or None."""
    if issue_type != MISSING:
        return lambda c: c.key if c.key in truth[issue_type] else None

    def hit(c):
        boxes = truth[MISSING].get(c.key[0], [])
        if not boxes:
            return None
        ious = pair_iou(
            np.repeat([c.key[1]], len(boxes), 0), np.array(boxes), np.zeros(len(boxes), bool)
        )
        best = int(np.argmax(ious))
        return (c.key[0], best) if ious[best] >= missing_iou else None

    return hit


def engine_candidates(issues) -> dict[str, list[Candidate]]:
    """The engine's scored issues (:class:`~detection_debugger.evaluation.label_issues
    .LabelIssues`) as candidates keyed like :class:`~detection_debugger.demo.planted_errors
    .Planted` truth: ground-truth rows, ``(image, box)`` for missing."""
    out: dict[str, list[Candidate]] = {}
    for t in ISSUE_TYPES:
        s = issues[t]
        if t == MISSING:
            keys = [(int(i), tuple(b)) for i, b in zip(s.image, s.box.tolist())]
        else:
            keys = [int(g) for g in s.gt]
        out[t] = [Candidate(k, float(v), bool(f)) for k, v, f in zip(keys, s.score, s.flagged)]
    return out


def average_precision(relevant: list[bool], planted: int) -> float | None:
    """Average precision of a ranking: the mean over the ``planted`` errors of the precision
    at the rank where each is found (0 for one never found)."""
    if not planted:
        return None
    hits = np.cumsum(relevant)
    ranks = np.flatnonzero(relevant)
    return float(np.sum(hits[ranks] / (ranks + 1)) / planted)


def measure_quality(  # long: one table row per type, the three measures share the hit function
    candidates: dict, truth: dict, missing_iou: float = 0.3, natural: dict | None = None
) -> dict:
    """Precision and recall of ranked candidates against known errors, per type.

    A missing candidate is right when it overlaps a planted missing object of its sample at
    ``missing_iou``; recall counts each planted error once. ``flagged``: at the finder's own
    thresholds; ``top_k``: the ``k`` highest-scored candidates, ``k`` = planted errors;
    ``ap``: average precision of the whole ranking; ``reach``: recall of every candidate,
    flagged or not (the most any threshold can find). ``natural``: errors of the data itself,
    keyed like ``truth`` (confirmed by a person); a candidate that finds one counts as right
    in the flagged precision and is left out of the ranking measures (it is neither a
    planted error nor a false alarm).
    """
    out = {}
    for t in ISSUE_TYPES:
        planted = sum(len(v) for v in truth[MISSING].values()) if t == MISSING else len(truth[t])
        hit = _hit_function(t, truth, missing_iou)
        known = _hit_function(t, natural, missing_iou) if natural and t in natural else None
        ranked = sorted(candidates.get(t, []), key=lambda c: -c.score)
        hits = [hit(c) for c in ranked]
        is_natural = [
            h is None and known is not None and known(c) is not None for c, h in zip(ranked, hits)
        ]

        def pr(rows, hits=hits, planted=planted, is_natural=is_natural):
            right = sum(hits[i] is not None or is_natural[i] for i in rows)
            found = {hits[i] for i in rows if hits[i] is not None}
            precision = right / len(rows) if rows else None
            return precision, (len(found) / planted if planted else None), len(rows)

        flagged = pr([i for i, c in enumerate(ranked) if c.flagged])
        first, seen = [], set()
        for i, h in enumerate(hits):
            if not is_natural[i]:
                first.append(h is not None and h not in seen)
                seen.add(h)
        top = pr([i for i in range(len(ranked)) if not is_natural[i]][:planted])
        reach = pr(list(range(len(ranked))))[1]
        out[t] = {
            "planted": planted,
            "candidates": len(ranked),
            "flagged": flagged[2],
            "precision": flagged[0],
            "recall": flagged[1],
            "natural": sum(is_natural[i] for i, c in enumerate(ranked) if c.flagged),
            "top_k_precision": top[0],
            "top_k_recall": top[1],
            "ap": average_precision(first, planted),
            "reach": reach,
        }
    return out


def format_quality(rows: dict[str, dict]) -> list[str]:
    """A text table of :func:`measure_quality` results: ``{finder name: result}``."""

    def f(v):
        return "   -" if v is None else f"{v:.2f}"

    lines = [
        f"{'finder':<34}{'type':<13}{'planted':>8}{'flagged':>8}{'P':>6}{'R':>6}"
        f"{'P@k':>6}{'R@k':>6}{'AP':>6}"
    ]
    for name, result in rows.items():
        for t, r in result.items():
            lines.append(
                f"{name:<34}{t:<13}{r['planted']:>8}{r['flagged']:>8}{f(r['precision']):>6}"
                f"{f(r['recall']):>6}{f(r['top_k_precision']):>6}{f(r['top_k_recall']):>6}"
                f"{f(r.get('ap')):>6}"
            )
    return lines
