"""What the Detection Debugger panel shows, as data: table rows and Plotly traces.

Pure functions of :class:`~detection_debugger.evaluation.EvaluationResult` objects (no App,
no database), so the panel's ``_refresh`` only reads the context and stores these.
"""

from __future__ import annotations

import math

__all__ = ["class_rows", "confusion_heatmap", "imbalance_bars", "slice_bars", "slice_rows"]


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
