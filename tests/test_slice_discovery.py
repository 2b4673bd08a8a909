"""Slice discovery, pure tier: exact per-cell AP against MatchTable.evaluate, planted failure
slices found (one descriptor, an image attribute, a pair), noise and small dips not reported,
and the pixel / box descriptors against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, MatchTable
from detection_debugger.evaluation.cell_ap import CellEvaluator, _read_recall
from detection_debugger.evaluation.coco_metrics import RECALL_THRESHOLDS
from detection_debugger.evaluation.descriptors import (
    ImageTables,
    assign_clusters,
    box_descriptors,
    kmeans,
    patch_statistics,
)
from detection_debugger.evaluation.slice_discovery import (
    Descriptor,
    DiscoveryConfig,
    _burial_ranks,
    _mann_whitney,
    discover,
)

# ---------------------------------------------------------------- exact AP per cell


def _table(seed: int, **kwargs) -> MatchTable:
    config = SyntheticConfig(num_images=60, num_classes=3, crowd_rate=0.05, seed=seed, **kwargs)
    gt, results = make_coco(config)
    return MatchTable.build(DetectionSet.from_coco(gt, results))


def _assert_same(ap: np.ndarray, reference: list) -> None:
    """``ap`` (K,) against MatchTable's per-class AP (None where undefined)."""
    for ours, ref in zip(ap, reference):
        if ref is None:
            assert np.isnan(ours)
        else:
            assert ours == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize(
    "seed, kwargs",
    [
        pytest.param(1, {}, id="plain"),
        pytest.param(2, {"score_decimals": 1}, id="score-ties"),
        pytest.param(3, {"ghosts_per_image": 12.0, "miss_rate": 0.4}, id="many-ghosts"),
    ],
)
def test_cell_ap_equals_the_match_table_on_object_cells(seed, kwargs):
    table = _table(seed, **kwargs)
    data = table.data
    rng = np.random.default_rng(seed)
    cells = 4
    gt = rng.integers(-1, cells, (3, len(data.gt_ids)))
    pred = rng.integers(-1, cells, (3, len(data.pred_ids)))
    ap = CellEvaluator.from_table(table).ap(gt, pred, cells)  # three partitions at once
    for m in range(3):
        for c in range(cells):
            result = table.evaluate(None, gt[m] == c, pred[m] == c)
            _assert_same(ap[m, :, c], [result.classes[n].AP for n in data.class_names])


@pytest.mark.parametrize("seed", [4, 7, 8])
def test_cell_ap_of_image_cells_is_pycocotools_on_those_images(seed):
    table = _table(seed, **({"score_decimals": 1} if seed == 7 else {}))
    data = table.data
    image = np.random.default_rng(seed).integers(-1, 3, (2, data.num_images))
    gt, pred = image[:, data.gt_image], image[:, data.pred_image]
    evaluator = CellEvaluator.from_table(table)
    general, fast = evaluator.ap(gt, pred, 3), evaluator.image_ap(gt, pred, 3)
    for m in range(2):
        for c in range(3):
            result = table.evaluate(image[m] == c)
            expected = [result.classes[n].AP for n in data.class_names]
            _assert_same(general[m, :, c], expected)
            _assert_same(fast[m, :, c], expected)


def _normalized_ap(table: MatchTable, k: int, gt_mask: np.ndarray) -> float | None:
    """Reference: the normalized AP of class ``k``'s objects in ``gt_mask`` (Hoiem et al.),
    accumulated prediction by prediction as pycocotools does, threshold by threshold."""
    coco, data = table.coco, table.data
    counted = coco.gt_counted[0] & (data.gt_class == k)
    mine, total = counted & gt_mask, counted.sum()
    n = mine.sum()
    if n == 0:
        return None
    per_threshold = []
    for t in range(coco.pred_tp.shape[0]):
        tps = fps = 0
        recall, precision = [], []
        for d in np.flatnonzero(coco.pred_class == k):
            if coco.pred_fp[t, 0, d]:
                fps += 1
            elif coco.pred_tp[t, 0, d] and mine[coco.pred_gt[t, 0, d]]:
                tps += 1
            else:
                continue  # matched to a crowd region or to an object of another slice
            found = tps * (total / n)
            recall.append(tps / n)
            precision.append(found / (found + fps + np.spacing(1)))
        envelope = np.maximum.accumulate(np.array(precision[::-1] or [0.0]))[::-1]
        reads = np.searchsorted(np.array(recall), RECALL_THRESHOLDS, side="left")
        per_threshold.append(sum(envelope[i] for i in reads if i < len(recall)) / 101)
    return float(np.mean(per_threshold))


@pytest.mark.parametrize("seed", [11, 12])
def test_object_ap_equals_the_match_table_with_every_prediction_and_the_reference(seed):
    """Random object cells: not normalized, the AP of a cell is MatchTable.evaluate with
    the cell's objects and every prediction; normalized, the reference's."""
    table = _table(seed, score_decimals=2)
    data = table.data
    rng = np.random.default_rng(seed)
    cells = rng.integers(-1, 3, (2, len(data.gt_ids)))
    evaluator = CellEvaluator.from_table(table)
    plain = evaluator.object_ap(cells, 3, normalized=False)
    normalized = evaluator.object_ap(cells, 3)
    every = np.ones(len(data.pred_ids), bool)
    for m in range(2):
        for c in range(3):
            result = table.evaluate(None, cells[m] == c, every)
            _assert_same(plain[m, :, c], [result.classes[n].AP for n in data.class_names])
            expected = [_normalized_ap(table, k, cells[m] == c) for k in range(3)]
            _assert_same(normalized[m, :, c], expected)
    whole = evaluator.object_ap(np.zeros((1, len(data.gt_ids)), int), 1)[0, :, 0]
    _assert_same(whole, [table.evaluate().classes[n].AP for n in data.class_names])


def test_the_mann_whitney_test_is_scipys():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(3)
    burial = np.round(rng.random(300), 1)  # many ties
    gt_class = rng.integers(0, 2, 300)
    counted = rng.random(300) > 0.1
    ranks, ties = _burial_ranks(burial, gt_class, counted, 2)
    for k in range(2):
        mine = counted & (gt_class == k)
        inside = mine & (rng.random(300) < 0.3)
        expected = mannwhitneyu(
            burial[inside], burial[mine & ~inside], alternative="greater", method="asymptotic"
        ).pvalue
        ours = _mann_whitney(ranks[inside].sum(), inside.sum(), mine.sum(), ties[k])
        assert ours == pytest.approx(expected, rel=1e-9)


def test_cell_ap_of_one_class_ignores_the_others():
    table = _table(5)
    data = table.data
    gt = np.random.default_rng(5).integers(0, 2, (1, len(data.gt_ids)))
    pred = np.random.default_rng(6).integers(0, 2, (1, len(data.pred_ids)))
    every = CellEvaluator.from_table(table).ap(gt, pred, 2)
    evaluator = CellEvaluator.from_table(table, [1])
    np.testing.assert_array_equal(evaluator.gt_rows, np.flatnonzero(data.gt_class == 1))
    one = evaluator.ap(gt[:, evaluator.gt_rows], pred[:, evaluator.pred_rows], 2)
    np.testing.assert_allclose(one[0, 1], every[0, 1], rtol=1e-12)
    assert np.isnan(one[0, 0]).all()  # the other classes have no objects


def test_recall_thresholds_read_the_true_positive_pycocotools_reads():
    """For every curve length up to 400 objects and every number of true positives, the
    recall thresholds read the precision where pycocotools' searchsorted finds it."""
    rng = np.random.default_rng(0)
    sizes = [(n, m) for n in range(1, 400) for m in (0, 1, n // 3, n)]
    n = np.array([s[0] for s in sizes])
    count = np.array([s[1] for s in sizes])
    first = np.r_[0, np.cumsum(count)[:-1]]
    envelope = rng.random(count.sum())
    expected = []
    for k, (objects, found) in enumerate(sizes):
        recall = np.arange(1, found + 1, dtype=np.float64) / objects  # tp / npig
        reads = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
        curve = envelope[first[k] : first[k] + found]
        expected.append(sum(curve[i] for i in reads if i < found))
    np.testing.assert_allclose(_read_recall(envelope, first, count, n), expected, rtol=1e-12)


# ---------------------------------------------------------------- planted slices


def _planted(seed=0, images=500, fail=None, image_attr=None):
    """Three classes, ~5 objects an image; ``fail(k, dark, other, weather)`` gives each
    object's chance of being missed. Returns the table and the descriptors' raw values."""
    rng = np.random.default_rng(seed)
    weather = rng.integers(0, 3, images)  # 0 sun, 1 rain, 2 fog
    gi, gc, gb, dark, other = [], [], [], [], []
    pi, pc, pb, ps, pdark, pother = [], [], [], [], [], []
    for i in range(images):
        for _ in range(rng.poisson(5)):
            k, d, o = int(rng.integers(3)), rng.normal(), rng.normal()
            w, h = rng.uniform(20, 120, 2)
            x, y = rng.uniform(0, 500, 2)
            gi.append(i), gc.append(k), gb.append([x, y, w, h]), dark.append(d), other.append(o)
            if rng.random() < fail(k, d, o, weather[i]):
                continue
            j = rng.normal(0, 0.05, 4) * [w, h, w, h]
            pi.append(i), pc.append(k), pb.append([x + j[0], y + j[1], w + j[2], h + j[3]])
            ps.append(rng.uniform(0.3, 1)), pdark.append(d), pother.append(o)
        for _ in range(rng.poisson(2)):
            pi.append(i), pc.append(int(rng.integers(3))), ps.append(rng.uniform(0, 0.6))
            pb.append([*rng.uniform(0, 500, 2), 40, 40])
            pdark.append(rng.normal()), pother.append(rng.normal())
    data = DetectionSet.from_arrays(
        image_ids=np.arange(images),
        class_names=["car", "bike", "crosswalk"],
        gt_image_ids=np.array(gi),
        gt_labels=np.array(gc),
        gt_boxes=np.array(gb),
        pred_image_ids=np.array(pi),
        pred_labels=np.array(pc),
        pred_boxes=np.array(pb),
        pred_scores=np.array(ps),
    )
    table = MatchTable.build(data)
    values = {
        "dark": (np.array(dark), np.array(pdark)),
        "other": (np.array(other), np.array(pother)),
        "weather": weather,
    }
    return table, values, rng


def _descriptors(table, values, rng, noise=6) -> list[Descriptor]:
    data = table.data
    out = [
        Descriptor("dark", "objects", *values["dark"], field="dd_dark"),
        Descriptor("other", "objects", *values["other"], field="dd_other"),
        Descriptor.of_images(
            "weather", values["weather"], table, categories=("sun", "rain", "fog"), field="w"
        ),
    ]
    for j in range(noise):
        out.append(
            Descriptor(
                f"noise{j}",
                "objects",
                rng.normal(size=len(data.gt_ids)),
                rng.normal(size=len(data.pred_ids)),
            )
        )
    return out


def test_a_planted_failure_range_is_the_top_hypothesis():
    table, values, rng = _planted(fail=lambda k, d, o, w: 0.8 if k == 2 and d < -0.5 else 0.1)
    found = discover(table, _descriptors(table, values, rng))
    top = found.hypotheses[0]
    assert top.cls == "crosswalk" and top.level == "objects"
    (condition,) = top.conditions
    assert condition.descriptor == "dark" and condition.low is None
    assert -1.0 < condition.high < 0.0
    assert top.AP < top.baseline_AP - 0.15
    # num_gt is what the condition selects among the class's objects
    gt_dark = values["dark"][0]
    selected = (table.data.gt_class == 2) & condition.mask(gt_dark) & ~table.data.gt_crowd
    assert top.num_gt == int(selected.sum())
    assert all(h.descriptor.startswith("noise") is False for h in top.conditions)
    row = top.to_dict()
    assert {"name", "description", "level", "num_gt", "AP", "delta_AP", "baseline_AP", "score"} <= (
        set(row)
    )
    assert row["delta_AP"] == pytest.approx(top.AP - top.baseline_AP)


def test_every_reported_slice_has_the_ap_of_its_exact_reevaluation():
    """The fast path against plain per-slice evaluation: each hypothesis (singles and
    pairs, object and image slices, alpha 1 so that many are reported) re-evaluated on
    its own: object slices by the reference normalized AP, image slices by
    MatchTable.evaluate on their images."""

    def fail(k, d, o, w):
        return 0.6 if (d < -0.5 or w == 2) else 0.1

    table, values, rng = _planted(seed=5, fail=fail)
    descriptors = _descriptors(table, values, rng, noise=2)
    config = DiscoveryConfig(alpha=1.0, top=40, pair_margin=-1.0, max_overlap=1.0, max_nested=1.0)
    found = discover(table, descriptors, config=config)
    data = table.data
    by_name = {d.name: d for d in descriptors}
    levels = {(h.level, len(h.conditions)) for h in found.hypotheses}
    assert {("objects", 1), ("images", 1), ("objects", 2)} <= levels, levels
    for h in found.hypotheses:
        k = data.class_names.index(h.cls)
        if h.level == "images":
            image = np.ones(data.num_images, bool)
            for c in h.conditions:
                image &= c.mask(np.asarray(values["weather"]))
            expected = table.evaluate(image).classes[h.cls].AP
        else:
            mask = np.ones(len(data.gt_ids), bool)
            for c in h.conditions:
                mask &= c.mask(np.asarray(by_name[c.descriptor].gt_values))
            expected = _normalized_ap(table, k, mask)
        assert h.AP == pytest.approx(expected, abs=1e-12), h.name


def test_a_pair_is_never_one_of_its_parents_again():
    """A flag that is 0 for most objects has collapsed tertiles: its upper tertile holds
    every object; a pair cell with it would be the other descriptor's cell again."""

    def fail(k, d, o, w):
        return 0.7 if d < -0.5 else 0.1

    table, values, rng = _planted(seed=6, fail=fail)
    data = table.data
    flag = Descriptor(
        "flag",
        "objects",
        (rng.random(len(data.gt_ids)) < 0.05).astype(float),
        (rng.random(len(data.pred_ids)) < 0.05).astype(float),
    )
    descriptors = [*_descriptors(table, values, rng, noise=1), flag]
    config = DiscoveryConfig(alpha=1.0, top=200, pair_margin=-1.0, max_overlap=1.0, max_nested=1.0)
    found = discover(table, descriptors, config=config)
    by_name = {d.name: d for d in descriptors}
    pairs = [h for h in found.hypotheses if len(h.conditions) == 2]
    assert pairs
    for h in pairs:
        mine = (data.gt_class == data.class_names.index(h.cls)) & ~data.gt_crowd
        masks = [mine & c.mask(np.asarray(by_name[c.descriptor].gt_values)) for c in h.conditions]
        both = masks[0] & masks[1]
        assert not any(np.array_equal(both, m) for m in masks), h.name


def test_an_image_attribute_failure_is_an_image_slice():
    table, values, rng = _planted(fail=lambda k, d, o, w: 0.7 if k == 0 and w == 2 else 0.1)
    found = discover(table, _descriptors(table, values, rng))
    top = found.hypotheses[0]
    assert top.cls == "car" and top.level == "images"
    assert [(c.descriptor, c.value) for c in top.conditions] == [("weather", "fog")]


def test_a_failure_of_two_descriptors_together_is_found_as_a_pair():
    def fail(k, d, o, w):
        return 0.9 if k == 1 and d < -0.4 and o > 0.4 else 0.1

    table, values, rng = _planted(seed=3, images=900, fail=fail)
    found = discover(table, _descriptors(table, values, rng, noise=2), classes=["bike"])
    pairs = [h for h in found.hypotheses if len(h.conditions) == 2]
    assert pairs, [h.name for h in found.hypotheses]
    assert {c.descriptor for c in pairs[0].conditions} == {"dark", "other"}


def test_noise_is_not_reported():
    table, values, rng = _planted(fail=lambda k, d, o, w: 0.15)
    found = discover(table, _descriptors(table, values, rng, noise=10))
    assert found.num_tested > 500
    assert found.hypotheses == []


def test_a_dip_in_fewer_objects_than_the_minimum_support_is_not_reported():
    table, values, rng = _planted(fail=lambda k, d, o, w: 0.95 if k == 2 and d < -2.2 else 0.1)
    found = discover(
        table, _descriptors(table, values, rng), config=DiscoveryConfig(min_support=40)
    )
    assert all(h.num_gt >= 40 for h in found.hypotheses)
    assert not any(
        c.high is not None and c.high < -1.5 for h in found.hypotheses for c in h.conditions
    )


def test_an_unknown_class_is_refused():
    table, values, rng = _planted(images=50, fail=lambda k, d, o, w: 0.1)
    with pytest.raises(ValueError, match="unknown classes"):
        discover(table, _descriptors(table, values, rng), classes=["tram"])


# ---------------------------------------------------------------- descriptors


def test_patch_statistics_equal_direct_numpy():
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, (40, 60))
    gray[10:20, 5:30] = 30.0  # a flat dark patch
    boxes = np.array([[5, 10, 25, 10], [0, 0, 60, 40], [30.4, 2.2, 10.1, 7.5]])
    stats = patch_statistics(ImageTables.of(gray), boxes)
    lap = np.zeros_like(gray)
    lap[1:-1, 1:-1] = np.abs(
        4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    )
    for i, (x0, y0, x1, y1) in enumerate([(5, 10, 30, 20), (0, 0, 60, 40), (30, 2, 41, 10)]):
        patch = gray[y0:y1, x0:x1]
        assert stats["brightness"][i] == pytest.approx((patch.mean() - gray.mean()) / 255)
        assert stats["contrast"][i] == pytest.approx(patch.std() / gray.std())
        assert stats["sharpness"][i] == pytest.approx(lap[y0:y1, x0:x1].mean() / lap.mean())
    assert stats["contrast"][0] == pytest.approx(0.0, abs=1e-6)


def test_box_descriptors():
    sizes = np.array([[100, 50]])
    boxes = np.array([[0, 10, 20, 20], [10, 15, 20, 20], [60, 10, 10, 10]], dtype=float)
    image = np.zeros(3, dtype=int)
    out = box_descriptors(boxes, image, sizes, boxes, image, exclude=np.arange(3))
    np.testing.assert_allclose(out["at_border"], [1, 0, 0])
    np.testing.assert_allclose(out["overlap"], [0.5 * 15 / 20, 0.5 * 15 / 20, 0.0])
    np.testing.assert_allclose(out["size"], np.sqrt([400 / 5000, 400 / 5000, 100 / 5000]))
    np.testing.assert_allclose(out["center_x"], [0.1, 0.2, 0.65])
    np.testing.assert_allclose(out["aspect"], [0, 0, 0])


def test_kmeans_separates_two_groups():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, (30, 8)) + np.eye(8)[0]
    b = rng.normal(0, 0.05, (20, 8)) + np.eye(8)[1]
    labels, centroids = kmeans(np.vstack([a, b]), 2)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1
    assert labels[0] != labels[30]
    np.testing.assert_array_equal(assign_clusters(np.vstack([a, b]), centroids), labels)
