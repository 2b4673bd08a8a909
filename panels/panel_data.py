"""What the Detection Debugger panel shows, as data: table rows and Plotly traces.

Pure functions of :class:`~detection_debugger.evaluation.EvaluationResult` objects (no App,
no database), so the panel's ``_refresh`` only reads the context and stores these.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from detection_debugger.evaluation import MAIN_ERRORS

__all__ = [
    "CONFUSION_ORDERS",
    "class_rows",
    "confusion_classes",
    "confusion_heatmap",
    "effective_thresholds",
    "imbalance_bars",
    "operating_rows",
    "pr_curves",
    "rescored",
    "slice_bars",
    "slice_rows",
    "summary_cards",
    "tide_bars",
    "tide_rows",
]

CONFUSION_ORDERS = ("class order", "errors", "name")


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
            "num_gt": m.num_gt,
            "num_pred": m.num_pred,
            "tp": m.tp,
            "fn": m.fn,
            "mispredicted": m.mispredicted,
            "fp": m.fp,
        }
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


def confusion_classes(
    result, top_n: int | None = None, order: str = "class order", focus: str | None = None
) -> tuple[list[int], int]:
    """Which classes (indices) the matrix shows, in display order, and how many there are.

    ``focus``: that class and every class it is confused with; else the ``top_n`` classes
    with most errors (off-diagonal cells of their row and column), all when None. ``order``:
    one of :data:`CONFUSION_ORDERS` (errors: most first).
    """
    m = np.asarray(result.confusion.matrix)
    labels = list(result.confusion.labels)
    k = len(labels) - 1  # the last label is the background
    diagonal = np.diag(m)[:k]
    errors = m[:k, :].sum(1) + m[:, :k].sum(0) - 2 * diagonal
    chosen = list(range(k))
    if focus in labels[:k]:
        f = labels.index(focus)
        chosen = [j for j in range(k) if j == f or m[f, j] or m[j, f]]
    ranked = sorted(chosen, key=lambda j: (-errors[j], j))
    if top_n is not None and len(ranked) > top_n:
        keep = set(ranked[:top_n])
        if focus in labels[:k]:
            keep.add(labels.index(focus))
        chosen = [j for j in chosen if j in keep]
    if order == "errors":
        chosen = sorted(chosen, key=lambda j: (-errors[j], j))
    elif order == "name":
        chosen = sorted(chosen, key=lambda j: labels[j].lower())
    return chosen, k


def confusion_heatmap(
    result,
    log_scale: bool,
    top_n: int | None = None,
    off_diagonal: bool = False,
    order: str = "class order",
    focus: str | None = None,
) -> tuple[list, dict]:
    """Plotly data and layout of the confusion matrix (rows: ground truth, top-down), on the
    classes of :func:`confusion_classes` plus the background; ``off_diagonal`` leaves the
    correct cells blank. Every row and column is labelled."""
    chosen, k = confusion_classes(result, top_n, order, focus)
    index = chosen + [k]
    labels = [result.confusion.labels[i] for i in index]
    counts = np.asarray(result.confusion.matrix)[np.ix_(index, index)].tolist()
    z = [[math.log10(1 + v) if log_scale else v for v in row] for row in counts]
    text = [list(row) for row in counts]
    if off_diagonal:
        for i in range(len(index)):
            z[i][i], text[i][i] = None, ""
    data = [
        {
            "type": "heatmap",
            "x": labels,
            "y": labels,
            "z": z,
            "text": text,
            "texttemplate": "%{text}",
            "hovertemplate": "ground truth %{y}<br>predicted %{x}<br>%{text} objects<extra></extra>",
            "colorscale": "Viridis",
            "showscale": False,
            "xgap": 1,
            "ygap": 1,
        }
    ]
    axis = {"type": "category", "tickmode": "array", "tickvals": labels, "ticktext": labels}
    axis.update(automargin=True, tickfont={"size": 11 if len(labels) <= 30 else 9})
    layout = {
        "xaxis": {**axis, "title": "predicted", "tickangle": -60},
        "yaxis": {**axis, "title": "ground truth", "autorange": "reversed"},
        "margin": {"t": 10, "l": 10, "b": 10, "r": 10},
        "height": max(420, 22 * len(labels) + 160),
    }
    return data, layout


def rescored(result, confusion, counts: dict):
    """``result`` with the confusion matrix and per-class counts of :func:`rescore` (AP and
    AR are the run's: they do not depend on a score threshold)."""
    classes = {
        name: replace(m, **{key: counts[name][key] for key in counts.get(name, {})})
        for name, m in result.classes.items()
    }
    return replace(result, classes=classes, confusion=confusion)


def summary_cards(result, tide_main: dict | None = None) -> list[tuple[str, str]]:
    """``(title, value)`` of the cards above the tabs (``tide_main``: TIDE's dAP per main
    error type, :attr:`TideResult.main`)."""
    stats, classes = result.stats, result.classes.values()

    def number(v):
        return "n/a" if v is None else f"{v:.3f}"

    cards = [
        ("AP", number(stats["AP"])),
        ("AP50", number(stats["AP50"])),
        ("AR", number(stats.get("AR100"))),
        ("ground truth", str(sum(m.num_gt for m in classes))),
        ("TP", str(sum(m.tp for m in classes))),
        ("undetected", str(sum(m.fn for m in classes))),
        ("mispredicted", str(sum(m.mispredicted for m in classes))),
        ("ghosts", str(sum(m.fp for m in classes))),
    ]
    if tide_main is not None:
        worst = max(MAIN_ERRORS, key=lambda t: tide_main[t])
        cards.append(("largest TIDE error", f"{worst} (dAP {tide_main[worst]:.1f})"))
    return cards


def imbalance_bars(result) -> tuple[list, dict]:
    """Annotations vs predictions per class, side by side."""
    names = list(result.classes)
    data = [
        {
            "type": "bar",
            "name": "annotations",
            "x": names,
            "y": [result.classes[n].num_gt for n in names],
        },
        {
            "type": "bar",
            "name": "predictions",
            "x": names,
            "y": [result.classes[n].num_pred for n in names],
        },
    ]
    layout = {"barmode": "group", "height": 300, "margin": {"t": 10, "b": 60}}
    return data, layout


def slice_rows(result, whole) -> list[dict]:
    """Per class: the slice's metrics next to the whole run's, with the differences."""
    rows = []
    for name, m in result.classes.items():
        w = whole.classes.get(name)
        row = {"class": name}
        for metric in ("AP", "AP50", "AR100"):
            mine, theirs = getattr(m, metric), None if w is None else getattr(w, metric)
            row[metric] = None if mine is None else round(mine, 4)
            row[f"{metric}_whole"] = None if theirs is None else round(theirs, 4)
            row[f"{metric}_delta"] = (
                None if mine is None or theirs is None else round(mine - theirs, 4)
            )
        row.update(num_gt=m.num_gt, tp=m.tp, fn=m.fn, mispredicted=m.mispredicted, fp=m.fp)
        rows.append(row)
    return rows


def slice_bars(result, whole, scope: str) -> tuple[list, dict]:
    """AP per class, whole run vs the slice, side by side."""
    names = [n for n in result.classes if result.classes[n].AP is not None]
    data = [
        {
            "type": "bar",
            "name": "whole run",
            "x": names,
            "y": [whole.classes[n].AP if n in whole.classes else None for n in names],
        },
        {"type": "bar", "name": scope, "x": names, "y": [result.classes[n].AP for n in names]},
    ]
    layout = {
        "barmode": "group",
        "height": 300,
        "margin": {"t": 10, "b": 60},
        "yaxis": {"title": "AP", "range": [0, 1]},
    }
    return data, layout


# ---------------------------------------------------------------------- TIDE


def tide_rows(tide, data, class_name: str | None = None) -> list[dict]:
    """One row per TIDE main error type: dAP (AP50 points) and count, overall and for
    ``class_name`` (the class's AP; counts of its predictions, ``Miss`` of its objects)."""
    k = None if class_name is None else list(data.class_names).index(class_name)
    per_class = tide.classes.get(class_name, {}).get("main", {}) if k is not None else {}
    rows = []
    for name in MAIN_ERRORS:
        if name == "Miss":
            flags, classes = tide.gt_error == name, data.gt_class
        else:
            flags, classes = tide.pred_error == name, data.pred_class
        row = {"type": name, "dAP": round(tide.main[name], 2), "count": int(tide.counts[name])}
        if k is not None:
            row["dAP_class"] = round(per_class.get(name, 0.0), 2)
            row["count_class"] = int(np.count_nonzero(flags & (classes == k)))
        rows.append(row)
    return rows


def tide_bars(tide, class_name: str | None = None) -> tuple[list, dict]:
    """dAP per main error type, overall (and for ``class_name``), side by side."""
    names = list(MAIN_ERRORS) + ["FalsePos", "FalseNeg"]
    values = {**tide.main, **tide.special}
    data = [{"type": "bar", "name": "all classes", "x": names, "y": [values[n] for n in names]}]
    if class_name in tide.classes:
        parts = tide.classes[class_name]
        mine = {**parts["main"], **parts["special"]}
        data.append({"type": "bar", "name": class_name, "x": names, "y": [mine[n] for n in names]})
    layout = {
        "barmode": "group",
        "height": 280,
        "margin": {"t": 10, "b": 40},
        "yaxis": {"title": "dAP (AP50 points)"},
    }
    return data, layout


# ---------------------------------------------------------------------- operating points


def effective_thresholds(class_names, threshold=None, class_thresholds=None):
    """``{class: score threshold}`` from one threshold for all and per-class overrides; None
    when neither is set (the run's own outcomes)."""
    if threshold is None and not class_thresholds:
        return None
    base = {} if threshold is None else {name: float(threshold) for name in class_names}
    base.update({k: float(v) for k, v in (class_thresholds or {}).items() if k in class_names})
    return base


def _finite(values, digits: int = 6) -> list:
    """JSON-ready numbers: None for NaN (undefined precision or recall)."""
    return [None if v is None or not math.isfinite(v) else round(float(v), digits) for v in values]


def pr_curves(points: dict, names: list[str], thresholds: dict | None) -> tuple[list, dict]:
    """Precision-recall curves of ``names`` (one line each), the best-F1 point of each (★)
    and the point at the chosen threshold (●)."""
    data = []
    for i, name in enumerate(names):
        p = points[name]
        if p.num_gt == 0 or len(p.score) == 0:
            continue
        color = _COLORS[i % len(_COLORS)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": _finite(p.recall),
                "y": _finite(p.precision),
                "text": [f"{s:.3f}" for s in p.score.tolist()],
                "hovertemplate": f"{name}<br>score ≥ %{{text}}<br>recall %{{x:.3f}}<br>"
                "precision %{y:.3f}<extra></extra>",
                "line": {"color": color},
            }
        )
        best = p.best_f1
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name}: best F1",
                "showlegend": False,
                "x": [best["recall"]],
                "y": [best["precision"]],
                "marker": {"symbol": "star", "size": 14, "color": color},
                "hovertemplate": f"{name}: best F1 {best['f1']:.3f} at score "
                f"{best['score']:.3f}<extra></extra>",
            }
        )
        # always a third trace (empty without a threshold): the App's plot updates traces in
        # place by position, and a line taking a marker trace's place inherits its markers
        data.append(_chosen_point(name, p, color, (thresholds or {}).get(name)))
    layout = {
        "xaxis": {"title": "recall", "range": [0, 1.02]},
        "yaxis": {"title": "precision", "range": [0, 1.05]},
        "height": 420,
        "margin": {"t": 10, "b": 40},
    }
    return data, layout


def _chosen_point(name: str, p, color: str, threshold: float | None) -> dict:
    """The trace of the point at the chosen threshold (no point without one)."""
    at = p.at(threshold) if threshold is not None else None
    return {
        "type": "scatter",
        "mode": "markers",
        "name": f"{name}: chosen",
        "showlegend": False,
        "x": _finite([at["recall"]]) if at else [],
        "y": _finite([at["precision"]]) if at else [],
        "marker": {"symbol": "circle-open", "size": 12, "color": color},
        "hovertemplate": f"{name} at score {threshold:.3f}<extra></extra>" if at else "",
    }


_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def operating_rows(points: dict, thresholds: dict | None, own: float) -> list[dict]:
    """Per class: the best-F1 threshold and its F1, the chosen threshold (``own``, the run's,
    when none) and precision, recall, F1, TP and kept predictions there."""
    rows = []
    for name, p in points.items():
        best = p.best_f1
        t = own if thresholds is None else thresholds.get(name, own)
        at = p.at(t)
        rows.append(
            {
                "class": name,
                "best_score": None if best is None else round(best["score"], 3),
                "best_f1": None if best is None else round(best["f1"], 3),
                "threshold": round(float(t), 3),
                "precision": _finite([at["precision"]], 3)[0],
                "recall": _finite([at["recall"]], 3)[0],
                "f1": _finite([at["f1"]], 3)[0],
                "tp": at["tp"],
                "kept": at["kept"],
            }
        )
    return rows
