"""TIDE's error decomposition equals tidecv 1.0.1's on the same inputs (to 1e-6).

tidecv is fed in memory through its ``Data`` objects, as its ``COCO()``/``COCOResult()``
loaders build them: crowd annotations become ignore regions of their class, images are
registered in id order, objects in row order.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from helpers import run_pycocotools

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, InputError
from detection_debugger.evaluation.tide import (
    MAIN_ERRORS,
    SPECIAL_ERRORS,
    TideTable,
    restrict_objects,
    tide_errors,
)

try:
    import tidecv
    import tidecv.ap
    from tidecv import TIDE, Data
    from tidecv.errors.main_errors import FalsePositiveError
except ImportError:  # pragma: no cover - tidecv is a dev dependency
    tidecv = None

needs_tidecv = pytest.mark.skipif(
    tidecv is None,
    reason="tidecv is not installed (pip install tidecv==1.0.1): TIDE parity needs the reference",
)

TOL = 1e-6


# ---------------------------------------------------------------------- the reference


def tidecv_data(data: DetectionSet, image_mask=None):
    """tidecv's ground truth and predictions ``Data`` of ``data`` (images of ``image_mask``)."""
    gt, preds = Data("gt", max_dets=100), Data("preds")
    selected = np.ones(data.num_images, bool) if image_mask is None else image_mask
    for i in np.flatnonzero(selected):
        gt.add_image(int(data.image_ids[i]), f"image {i}")
    for k, class_id in enumerate(data.class_ids):
        gt.add_class(int(class_id), data.class_names[k])
    gt_rows, pred_rows = [], []
    for j in range(len(data.gt_ids)):
        if selected[data.gt_image[j]]:
            image = int(data.image_ids[data.gt_image[j]])
            class_id = int(data.class_ids[data.gt_class[j]])
            box = data.gt_boxes[j].tolist()
            if data.gt_crowd[j]:
                gt.add_ignore_region(image, class_id, box)
            else:
                gt.add_ground_truth(image, class_id, box)
            gt_rows.append(j)
    for j in range(len(data.pred_ids)):
        if selected[data.pred_image[j]]:
            preds.add_detection(
                int(data.image_ids[data.pred_image[j]]),
                int(data.class_ids[data.pred_class[j]]),
                float(data.pred_scores[j]),
                data.pred_boxes[j].tolist(),
            )
            pred_rows.append(j)
    return gt, preds, np.array(gt_rows, np.int64), np.array(pred_rows, np.int64)


def _safe_map(ap_data) -> float:
    """tidecv's ``get_mAP``, but 0 where it divides by zero (no class left)."""
    aps = [x.get_ap() for x in ap_data.objs.values() if not x.is_empty()]
    return sum(aps) / len(aps) if aps else 0.0


def tidecv_reference(data: DetectionSet, image_mask=None) -> dict:
    """Everything tidecv reports on ``data``, keyed as :class:`TideResult`."""
    gt, preds, gt_rows, pred_rows = tidecv_data(data, image_mask)
    tide = TIDE()
    try:
        run = tide.evaluate(gt, preds, mode=TIDE.BOX, name="run")
    except ZeroDivisionError:  # no class to average: tidecv divides by zero, we say 0
        with mock.patch.object(tidecv.ap.ClassedAPDataObject, "get_mAP", _safe_map):
            run = tide.evaluate(gt, preds, mode=TIDE.BOX, name="run")
    variants = {
        error.short_name: run.fix_errors(lambda e, error=error: isinstance(e, error))
        for error in TIDE._error_types
    }
    variants["FalsePos"] = run.fix_errors(transform=FalsePositiveError.fix)
    variants["FalseNeg"] = run.fix_errors(false_neg_dict=run.false_negatives)
    main = {n: max(_safe_map(variants[n]) - run.ap, 0) for n in MAIN_ERRORS}
    special = {n: _safe_map(variants[n]) - run.ap for n in SPECIAL_ERRORS}
    try:  # where tidecv itself gets through, its public numbers are these
        assert tide.get_main_errors()["run"] == pytest.approx(main, abs=1e-12)
        assert tide.get_special_errors()["run"] == pytest.approx(special, abs=1e-12)
    except ZeroDivisionError:
        pass
    classes, class_ap = {}, {}
    for k, class_id in enumerate(data.class_ids):
        if int(class_id) not in run.ap_data.objs:
            continue
        base = run.ap_data.objs[int(class_id)].get_ap()
        name = data.class_names[k]
        class_ap[name] = base
        classes[name] = {
            "main": {
                n: max(variants[n].objs[int(class_id)].get_ap() - base, 0) for n in MAIN_ERRORS
            },
            "special": {n: variants[n].objs[int(class_id)].get_ap() - base for n in SPECIAL_ERRORS},
        }
    pred_error = np.full(len(data.pred_ids), "", dtype=object)
    gt_error = np.full(len(data.gt_ids), "", dtype=object)
    for error in run.errors:
        if hasattr(error, "pred"):
            pred_error[pred_rows[error.pred["_id"]]] = error.short_name
        else:
            gt_error[gt_rows[error.gt["_id"]]] = error.short_name
    return {
        "ap": run.ap,
        "main": main,
        "special": special,
        "classes": classes,
        "class_ap": class_ap,
        "counts": {e.short_name: n for e, n in run.count_errors().items()},
        "pred_error": pred_error,
        "gt_error": gt_error,
    }


def assert_matches_tidecv(data: DetectionSet, image_mask=None, result=None) -> None:
    reference = tidecv_reference(data, image_mask)
    if result is None:
        result = tide_errors(data, image_mask)
    assert result.ap == pytest.approx(reference["ap"], abs=TOL)
    assert result.main == pytest.approx(reference["main"], abs=TOL)
    assert result.special == pytest.approx(reference["special"], abs=TOL)
    assert result.counts == reference["counts"]
    assert result.pred_error.tolist() == reference["pred_error"].tolist()
    assert result.gt_error.tolist() == reference["gt_error"].tolist()
    assert set(result.classes) == set(reference["classes"])
    for name, parts in reference["classes"].items():
        assert result.class_ap[name] == pytest.approx(reference["class_ap"][name], abs=TOL)
        assert result.classes[name]["main"] == pytest.approx(parts["main"], abs=TOL), name
        assert result.classes[name]["special"] == pytest.approx(parts["special"], abs=TOL), name


# ---------------------------------------------------------------------- random sets


def random_config(seed: int) -> SyntheticConfig:
    rng = np.random.default_rng(seed)
    return SyntheticConfig(
        num_images=int(rng.integers(1, 40)),
        num_classes=int(rng.integers(1, 6)),
        gt_per_image=float(rng.uniform(0, 12)),
        ghosts_per_image=float(rng.uniform(0, 25)),
        duplicates_per_object=float(rng.uniform(0, 3)),
        miss_rate=float(rng.uniform(0, 0.5)),
        confusion_rate=float(rng.uniform(0, 0.4)),
        crowd_rate=float(rng.uniform(0, 0.3)),
        empty_image_rate=float(rng.uniform(0, 0.5)),
        score_decimals=(1, 2, 3, None)[seed % 4],  # 1 decimal: many score ties
        image_size=((160, 120), (640, 480))[seed % 2],  # small images: many overlaps
        seed=seed,
    )


def synthetic(config: SyntheticConfig) -> DetectionSet:
    return DetectionSet.from_coco(*make_coco(config))


@needs_tidecv
@pytest.mark.parametrize("seed", range(40))
def test_random_sets_match_tidecv(seed):
    assert_matches_tidecv(synthetic(random_config(seed)))


@needs_tidecv
@pytest.mark.parametrize("seed", range(10))
def test_image_slices_match_tidecv_on_the_slice(seed):
    data = synthetic(random_config(200 + seed))
    table = TideTable.build(data)
    rng = np.random.default_rng(seed)
    for fraction in (0.1, 0.5, 0.9):
        mask = rng.random(data.num_images) < fraction
        if not mask.any():
            mask[0] = True
        assert_matches_tidecv(data, mask, table.errors(mask))
        assert_matches_tidecv(data, mask, tide_errors(data, image_mask=mask))


@needs_tidecv
@pytest.mark.parametrize(
    "config",
    [
        pytest.param(
            SyntheticConfig(
                num_images=4,
                num_classes=2,
                gt_per_image=30,
                ghosts_per_image=120,
                duplicates_per_object=3,
                image_size=(120, 90),
                score_decimals=2,
                seed=7,
            ),
            id="more-than-100-per-image",
        ),
        pytest.param(
            SyntheticConfig(num_images=30, crowd_rate=0.5, image_size=(160, 120), seed=3),
            id="many-crowds",
        ),
        pytest.param(
            SyntheticConfig(num_images=30, confusion_rate=0.6, duplicates_per_object=2, seed=4),
            id="confusions-duplicates",
        ),
        pytest.param(
            SyntheticConfig(num_images=30, empty_image_rate=0.7, score_decimals=1, seed=5),
            id="empty-images-score-ties",
        ),
        pytest.param(
            SyntheticConfig(num_images=20, num_classes=12, gt_per_image=2, seed=6),
            id="classes-without-gt",
        ),
        pytest.param(
            SyntheticConfig(num_images=10, gt_per_image=0.0, seed=8), id="no-ground-truth"
        ),
        pytest.param(
            SyntheticConfig(num_images=10, ghosts_per_image=0.0, miss_rate=1.0, seed=9),
            id="no-predictions",
        ),
    ],
)
def test_special_sets_match_tidecv(config):
    data = synthetic(config)
    if config.ghosts_per_image > 100:
        assert np.bincount(data.pred_image).max() > 100
    assert_matches_tidecv(data)


# ---------------------------------------------------------------------- hand-built cases


def scene(gt, preds, num_classes=2, num_images=1) -> DetectionSet:
    """``gt``: ``[(image, class, box, crowd)]``; ``preds``: ``[(image, class, box, score)]``."""
    return DetectionSet.from_arrays(
        image_ids=range(1, num_images + 1),
        class_names=[f"c{k}" for k in range(num_classes)],
        gt_image_ids=[g[0] for g in gt],
        gt_labels=[g[1] for g in gt],
        gt_boxes=np.array([g[2] for g in gt], float).reshape(-1, 4),
        gt_crowd=[g[3] for g in gt],
        pred_image_ids=[p[0] for p in preds],
        pred_labels=[p[1] for p in preds],
        pred_boxes=np.array([p[2] for p in preds], float).reshape(-1, 4),
        pred_scores=[p[3] for p in preds],
    )


OBJ = [0, 0, 10, 10]  # IoU with [0, 0, 10, h] is h / 10 exactly
FAR = [50, 50, 10, 10]


@pytest.mark.parametrize(
    "gt, preds, pred_error, gt_error",
    [
        pytest.param([(1, 0, OBJ, False)], [(1, 0, OBJ, 0.9)], [""], [""], id="true-positive"),
        pytest.param([(1, 0, OBJ, False)], [(1, 0, [0, 0, 10, 3], 0.9)], ["Loc"], [""], id="loc"),
        pytest.param(
            [(1, 0, OBJ, False)],
            [(1, 0, [0, 0, 10, 1], 0.9)],
            ["Loc"],
            [""],
            id="loc-at-iou-0.1",
        ),
        pytest.param([(1, 0, OBJ, False)], [(1, 1, OBJ, 0.9)], ["Cls"], [""], id="cls"),
        pytest.param(
            [(1, 0, OBJ, False)],
            [(1, 1, [0, 0, 10, 5], 0.9)],
            ["Cls"],
            [""],
            id="cls-at-iou-0.5",
        ),
        pytest.param(
            [(1, 0, OBJ, False)], [(1, 1, [0, 0, 10, 3], 0.9)], ["Both"], ["Miss"], id="both"
        ),
        pytest.param(
            [(1, 0, OBJ, False)],
            [(1, 1, [0, 0, 10, 1], 0.9)],
            ["Bkg"],
            ["Miss"],
            id="bkg-at-iou-0.1",
        ),
        pytest.param(
            [(1, 0, OBJ, False)],
            [(1, 0, OBJ, 0.9), (1, 0, [0, 0, 10, 9], 0.8)],
            ["", "Dupe"],
            [""],
            id="dupe",
        ),
        pytest.param(
            [(1, 0, OBJ, False)],
            [(1, 0, OBJ, 0.9), (1, 0, [0, 0, 10, 5], 0.8)],
            ["", "Loc"],
            [""],
            id="iou-0.5-on-a-taken-object-is-loc",
        ),
        pytest.param(
            [(1, 0, OBJ, False)], [(1, 0, FAR, 0.9)], ["Bkg"], ["Miss"], id="bkg-and-miss"
        ),
        pytest.param(
            [(1, 0, OBJ, False), (1, 0, OBJ, False)],
            [(1, 0, OBJ, 0.9)],
            [""],
            ["", "Miss"],
            id="iou-tie-goes-to-the-earlier-object",
        ),
        pytest.param(
            [(1, 0, [0, 0, 40, 40], True)],
            [(1, 0, [0, 0, 10, 10], 0.9)],
            ["Bkg"],
            [""],
            id="ignored-by-a-crowd-still-classified",
        ),
        pytest.param(
            [(1, 0, OBJ, False), (1, 0, [0, 0, 12, 12], True)],
            [(1, 0, [0, 0, 10, 3], 0.9)],
            ["Loc"],
            ["", ""],
            id="ignored-loc-error",
        ),
        pytest.param(
            [],
            [(1, 0, OBJ, 0.9), (1, 1, OBJ, 0.8)],
            ["Bkg", "Bkg"],
            [],
            id="image-without-gt",
        ),
    ],
)
def test_hand_built_error_types(gt, preds, pred_error, gt_error):
    data = scene(gt, preds)
    result = tide_errors(data)
    assert result.pred_error.tolist() == pred_error
    assert result.gt_error.tolist() == gt_error
    if tidecv is not None:
        assert_matches_tidecv(data, result=result)


def test_crowd_iou_must_exceed_one_half():
    # Crowd IoU = intersection / prediction area: exactly 0.5 is not ignored (pycocotools
    # would ignore it), just above is.
    crowd = (1, 0, [0, 0, 10, 10], True)
    half = tide_errors(scene([crowd], [(1, 0, [5, 0, 10, 10], 0.9)]))
    more = tide_errors(scene([crowd], [(1, 0, [4, 0, 10, 10], 0.9)]))
    assert not half.pred_ignored[0] and more.pred_ignored[0]
    assert half.ap == 0.0 and half.counts["Bkg"] == 1  # class 0 counted with its false positive
    assert more.counts["Bkg"] == 1  # ignored, still an error


def test_oracles_on_a_hand_built_scene():
    # Two objects of c0; c0's predictions: a hit, a duplicate (higher score than the hit's
    # localisation error on the second object), a background box. AP is computed by hand.
    gt = [(1, 0, OBJ, False), (1, 0, [30, 30, 10, 10], False)]
    preds = [
        (1, 0, OBJ, 0.9),  # TP
        (1, 0, [0, 0, 10, 9], 0.8),  # Dupe
        (1, 0, [30, 30, 10, 3], 0.7),  # Loc on the second object
        (1, 0, FAR, 0.6),  # Bkg
    ]
    result = tide_errors(scene(gt, preds, num_classes=1))
    assert result.pred_error.tolist() == ["", "Dupe", "Loc", "Bkg"]
    # Base: TP, FP, FP, FP with 2 objects: precision 1 up to recall 0.5 -> 51/101.
    assert result.ap == pytest.approx(51 / 101 * 100)
    # Loc fixed: TP, FP, TP, FP -> 1 up to 0.5, then 2/3 up to 1.0.
    loc = (51 + 50 * 2 / 3) / 101 * 100
    assert result.main["Loc"] == pytest.approx(loc - result.ap)
    assert result.main["Dupe"] == 0.0  # the duplicate ranks after the only TP's recall
    assert result.main["Miss"] == 0.0  # nothing is missed: the Loc error targets object 2
    assert result.counts == {"Cls": 0, "Loc": 1, "Both": 0, "Dupe": 1, "Bkg": 1, "Miss": 0}
    # FalseNeg: only the found object counts -> recall 1 at precision 1.
    assert result.special["FalseNeg"] == pytest.approx(100 - result.ap)
    assert result.pred_gt.tolist() == [0, 0, 1, -1]


def test_score_ties_rank_false_positives_first_in_re_evaluations():
    # A TP and an FP at the same score: the base AP ranks them in image order (TP first),
    # tidecv's re-evaluations put error-derived points first, so "fixing" nothing of this
    # class changes its AP: FalseNeg differs from a plain recall change.
    gt = [(1, 0, OBJ, False)]
    preds = [(1, 0, OBJ, 0.5), (1, 0, FAR, 0.5)]
    result = tide_errors(scene(gt, preds, num_classes=1))
    assert result.ap == pytest.approx(100.0)
    assert result.special["FalseNeg"] == pytest.approx(50.0 - 100.0)
    if tidecv is not None:
        assert_matches_tidecv(scene(gt, preds, num_classes=1), result=result)


def test_only_the_best_cls_or_loc_error_of_an_object_is_fixed():
    gt = [(1, 0, OBJ, False)]
    preds = [(1, 1, OBJ, 0.9), (1, 0, [0, 0, 10, 3], 0.95), (1, 1, [0, 0, 10, 9], 0.8)]
    result = tide_errors(scene(gt, preds))
    assert result.pred_error.tolist() == ["Cls", "Loc", "Cls"]
    table = TideTable.build(scene(gt, preds))
    assert table.pred_fixable.tolist() == [False, True, False]  # highest score: the Loc
    assert result.main["Cls"] == 0.0  # fixing Cls only drops them (the object's best is Loc)
    if tidecv is not None:
        assert_matches_tidecv(scene(gt, preds), result=result)


def test_empty_inputs():
    empty = scene([], [], num_images=2)
    result = tide_errors(empty)
    assert result.ap == 0.0 and result.classes == {}
    assert all(v == 0.0 for v in result.main.values())
    assert all(v == 0.0 for v in result.special.values())
    nothing = tide_errors(
        scene([(1, 0, OBJ, False)], [(2, 0, OBJ, 0.5)], num_images=2), np.array([False, False])
    )
    assert nothing.ap == 0.0 and nothing.pred_error.tolist() == [""]


# ---------------------------------------------------------------------- object masks, API


@needs_tidecv
@pytest.mark.parametrize("seed", range(4))
def test_object_masks_restrict_the_set(seed):
    data = synthetic(random_config(300 + seed))
    rng = np.random.default_rng(seed)
    gt_mask = rng.random(len(data.gt_ids)) < 0.7
    pred_mask = rng.random(len(data.pred_ids)) < 0.7
    image_mask = rng.random(data.num_images) < 0.8
    result = tide_errors(data, image_mask, gt_mask, pred_mask)
    sub = restrict_objects(data, gt_mask, pred_mask)
    reference = tide_errors(sub, image_mask)
    assert result.main == reference.main and result.special == reference.special
    assert result.pred_error[pred_mask].tolist() == reference.pred_error.tolist()
    assert (result.pred_error[~pred_mask] == "").all()
    assert result.gt_error[gt_mask].tolist() == reference.gt_error.tolist()
    tp = result.pred_error == ""
    matched = result.pred_gt[tp & (result.pred_gt >= 0)]
    assert gt_mask[matched].all()
    assert_matches_tidecv(sub, image_mask, reference)


def test_to_dict_contract_and_classes():
    data = synthetic(SyntheticConfig(num_images=20, seed=1))
    result = tide_errors(data)
    d = result.to_dict()
    assert set(d) == {"main", "special", "classes"}
    assert list(d["main"]) == list(MAIN_ERRORS)
    assert list(d["special"]) == list(SPECIAL_ERRORS)
    assert set(d["classes"]) == set(data.class_names)
    for values in d["classes"].values():
        assert list(values) == list(MAIN_ERRORS) + list(SPECIAL_ERRORS)
    only = tide_errors(data, classes=["class_1", 0])
    assert list(only.classes) == ["class_1", "class_0"]
    assert only.classes["class_1"] == result.classes["class_1"]
    assert only.main == result.main
    with pytest.raises(InputError):
        tide_errors(data, classes=["nope"])
    with pytest.raises(InputError):
        tide_errors(data, image_mask=np.ones(3, bool))


# ---------------------------------------------------------------------- vs pycocotools


# tidecv's recall thresholds are x / 100; pycocotools' np.linspace(0, 1, 101) differs from
# them in the last bit at 10 of them, which matters when a recall lands exactly there.
_LINSPACE = np.linspace(0.0, 1.0, 101)
_OFF_BY_A_BIT = {x / 100 for x in range(101)} - set(_LINSPACE.tolist())


def recall_on_a_shifted_threshold(data: DetectionSet, table: TideTable) -> np.ndarray:
    """``(K,)`` bool: a recall of the class is one of the thresholds where TIDE and
    pycocotools differ by a bit."""
    counted = ~data.gt_crowd
    num_gt = np.bincount(data.gt_class[counted], minlength=data.num_classes)
    num_tp = np.bincount(data.pred_class[table.pred_tp], minlength=data.num_classes)
    return np.array(
        [any(k / n in _OFF_BY_A_BIT for k in range(1, t + 1)) for n, t in zip(num_gt, num_tp)]
    )


def test_recall_thresholds_differ_from_pycocotools_by_a_bit():
    assert len(_OFF_BY_A_BIT) == 10 and 0.7 in _OFF_BY_A_BIT
    # 10 objects, 7 found then a false positive: recall 0.7 exactly. pycocotools' threshold
    # 0.7000000000000001 is above it (precision 0 there); TIDE's 0.7 is reached.
    gt = [(1, 0, [20 * i, 0, 10, 10], False) for i in range(10)]
    preds = [(1, 0, [20 * i, 0, 10, 10], 0.9 - 0.01 * i) for i in range(7)]
    preds.append((1, 0, [0, 50, 10, 10], 0.1))
    result = tide_errors(scene(gt, preds, num_classes=1))
    assert result.ap == pytest.approx(71 / 101 * 100)
    assert result.ap - 70 / 101 * 100 > 0.9  # pycocotools: 70 thresholds at precision 1


@pytest.mark.parametrize("seed", range(12))
def test_tide_ap_equals_pycocotools_ap50_when_every_predicted_class_has_gt(seed):
    config = random_config(400 + seed)
    gt, results = make_coco(config)
    counted = {a["category_id"] for a in gt["annotations"] if not a["iscrowd"]}
    results = [r for r in results if r["category_id"] in counted]
    data = DetectionSet.from_coco(gt, results)
    if len(data.pred_ids):
        assert np.bincount(data.pred_image).max() <= 100
    reference = run_pycocotools(gt, results)
    table = TideTable.build(data)
    result = table.errors()
    shifted = recall_on_a_shifted_threshold(data, table)
    precision = reference.eval["precision"][0, :, :, 0, 2]  # IoU 0.5, all areas, 100 dets
    for k, name in enumerate(data.class_names):
        if name in result.class_ap and not shifted[k]:
            assert result.class_ap[name] == pytest.approx(precision[:, k].mean() * 100, abs=TOL)
    if not counted:
        assert result.ap == 0.0
    elif not shifted.any():
        assert result.ap == pytest.approx(reference.stats[1] * 100, abs=TOL)


def test_tide_ap_counts_classes_without_gt_as_zero():
    gt, results = make_coco(SyntheticConfig(num_images=20, num_classes=3, seed=12))
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != 3]
    data = DetectionSet.from_coco(gt, results)
    table = TideTable.build(data)
    assert not recall_on_a_shifted_threshold(data, table).any()
    reference = run_pycocotools(gt, results).stats[1] * 100
    result = table.errors()
    class_ap = result.class_ap
    assert class_ap["class_2"] == 0.0
    assert result.ap == pytest.approx((class_ap["class_0"] + class_ap["class_1"]) / 3)
    assert reference == pytest.approx((class_ap["class_0"] + class_ap["class_1"]) / 2, abs=TOL)
