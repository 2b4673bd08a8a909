"""Label-issue quality on real data with one model: errors planted into the dashcam set's
ground truth (``../shared/real-data/dashcam``: real photos, one YOLOv5 model's predictions),
three seeds, scored at the default thresholds (pure numpy, seconds).

The floors sit a little under the figures measured when they were set (means over seeds 0-2:
missing P .74 R .705 R@k .63 AP .57; wrong_class .81 .905 .86 .85; spurious .58 .83 .73 .79;
loose_box .41 .63 .54 .55), so that a change that loses quality fails here. Flagged objects
the set itself leaves unannotated, confirmed by looking at the images
(``bench/dashcam_natural_omissions.json``), count as right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detection_debugger.demo import label_quality as lq
from detection_debugger.demo.planted_errors import load_dashcam_set, plant_label_errors
from detection_debugger.evaluation.label_issues import ISSUE_TYPES, find_label_issues

ROOT = Path(__file__).resolve().parents[1]
DASHCAM = ROOT.parent / "shared" / "real-data" / "dashcam"
NATURAL = ROOT / "bench" / "dashcam_natural_omissions.json"

pytestmark = pytest.mark.skipif(not DASHCAM.is_dir(), reason="../shared/real-data is not here")

# (precision, recall) at the defaults, recall at k, average precision of the ranking
FLOORS = {
    "missing": (0.7, 0.68, 0.6, 0.55),
    "wrong_class": (0.78, 0.88, 0.82, 0.8),
    "spurious": (0.55, 0.8, 0.7, 0.75),
    "loose_box": (0.38, 0.6, 0.5, 0.5),
}


@pytest.fixture(scope="module")
def dashcam():
    data, _, natural = load_dashcam_set(DASHCAM, NATURAL)
    return data, natural


def test_planting_is_seeded_and_complete(dashcam):
    data, _ = dashcam
    a, b = plant_label_errors(data, 0, image_size=(320, 320)), plant_label_errors(data, 0)
    assert a.truth["wrong_class"] == b.truth["wrong_class"]
    counts = {
        t: len(v) if isinstance(v, set) else sum(map(len, v.values())) for t, v in a.truth.items()
    }
    assert counts == {"missing": 35, "wrong_class": 21, "loose_box": 21, "spurious": 21}
    assert len(a.data.gt_ids) == len(data.gt_ids) - 35 + 21
    relabelled = sorted(a.truth["wrong_class"])
    assert (a.data.gt_class[relabelled] != data.gt_class[a.original_row[relabelled]]).all()


def test_quality_with_one_model_on_planted_errors(dashcam):
    data, natural = dashcam
    results = []
    for seed in range(3):
        planted = plant_label_errors(data, seed, image_size=(320, 320))
        issues = find_label_issues([planted.data])
        results.append(
            lq.measure_quality(lq.engine_candidates(issues), planted.truth, natural=natural)
        )
    mean = {
        t: {
            m: float(np.mean([r[t][m] for r in results]))
            for m in ("precision", "recall", "top_k_recall", "ap")
        }
        for t in ISSUE_TYPES
    }
    print(
        "\n"
        + "\n".join(
            f"{t:<12}" + " ".join(f"{m}={v:.2f}" for m, v in q.items()) for t, q in mean.items()
        )
    )
    for t, (p, r, rk, ap) in FLOORS.items():
        q = mean[t]
        assert q["precision"] >= p and q["recall"] >= r, (t, q)
        assert q["top_k_recall"] >= rk and q["ap"] >= ap, (t, q)
