"""Label-issue scores on hand-built scenes (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from detection_debugger.evaluation import DetectionSet, InputError
from detection_debugger.evaluation.label_issues import (
    ISSUE_TYPES,
    IssueScores,
    LabelIssueConfig,
    LabelIssues,
    find_label_issues,
)

CLASSES = ("car", "bike", "person")
CAR, BIKE, PERSON = range(3)
# Reference objects that make every model reliable (found, right) for every class: image 0.
REFERENCE = [(c, [10 + 60 * i, 10 + 60 * c, 40, 40]) for c in range(3) for i in range(6)]


def _set(gt: list, preds: list, num_images: int = 2) -> DetectionSet:
    """``gt``: ``[(image, class, box)]``; ``preds``: ``[(image, class, box, score)]``. Image 0
    holds the reference objects, found by every prediction set at 0.9."""
    gt = [(0, c, b) for c, b in REFERENCE] + list(gt)
    preds = [(0, c, b, 0.9) for c, b in REFERENCE] + list(preds)
    return DetectionSet.from_arrays(
        image_ids=np.arange(num_images),
        class_names=CLASSES,
        gt_image_ids=[g[0] for g in gt],
        gt_labels=[g[1] for g in gt],
        gt_boxes=[g[2] for g in gt],
        pred_image_ids=[p[0] for p in preds],
        pred_labels=[p[1] for p in preds],
        pred_boxes=[p[2] for p in preds],
        pred_scores=[p[3] for p in preds],
    )


FIRST = len(REFERENCE)  # row of the first scene object in the ground truth / predictions
BOX = [100, 100, 40, 40]
SHIFTED = [110, 110, 40, 40]  # IoU 0.39 with BOX
LOOSE = [90, 90, 70, 70]  # IoU 0.33 with BOX


def _rows(scores: IssueScores) -> list[int]:
    return sorted(int(g) for g in scores.gt[scores.flagged])


@pytest.mark.parametrize(
    ("gt", "sets", "expected"),
    [
        pytest.param([], [[(1, CAR, BOX, 0.9)]], 1, id="unlabelled-car"),
        pytest.param([], [[(1, CAR, BOX, 0.9)], [(1, CAR, BOX, 0.85)]], 1, id="two-sets-agree"),
        pytest.param([], [[(1, CAR, BOX, 0.2)]], 0, id="not-confident"),
        pytest.param([(1, CAR, BOX)], [[(1, CAR, BOX, 0.9)]], 0, id="annotated"),
        pytest.param([(1, CAR, SHIFTED)], [[(1, CAR, BOX, 0.9)]], 0, id="loose-not-missing"),
        pytest.param([(1, BIKE, BOX)], [[(1, CAR, BOX, 0.9)]], 0, id="other-class-is-wrong-class"),
        pytest.param(
            [],
            [[(1, CAR, BOX, 0.9), (1, CAR, [101, 101, 40, 40], 0.6)]],
            1,
            id="duplicate-counted-once",
        ),
        pytest.param([], [[(1, CAR, [100, 100, 400, 5], 0.9)]], 0, id="unlike-annotated-cars"),
    ],
)
def test_missing(gt, sets, expected):
    data = [_set(gt, preds) for preds in sets]
    missing = find_label_issues(data)["missing"]
    assert int(missing.flagged.sum()) == expected
    if expected:
        i = int(np.argmax(missing.score))
        assert missing.image[i] == 1 and missing.label[i] == CAR
        assert missing.confidence[i] == 0.9 and missing.pred_set[i] == 0
        assert missing.support[i] == len(sets)
        assert 0 < missing.score[i] <= 1


def test_agreement_raises_the_missing_score():
    one = find_label_issues([_set([], [(1, CAR, BOX, 0.9)]), _set([], [])])["missing"]
    two = find_label_issues([_set([], [(1, CAR, BOX, 0.9)]), _set([], [(1, CAR, BOX, 0.9)])])
    assert two["missing"].score.max() > one.score.max()
    assert two["missing"].support.max() == 2 and len(two["missing"]) == 1


@pytest.mark.parametrize(
    ("gt", "preds", "flagged", "proposed"),
    [
        pytest.param(
            [(1, BIKE, BOX)], [(1, PERSON, BOX, 0.9)], [FIRST], PERSON, id="person-as-bike"
        ),
        pytest.param(
            [(1, BIKE, BOX)],
            [(1, PERSON, BOX, 0.9), (1, BIKE, BOX, 0.5)],
            [],
            None,
            id="own-class-also-predicted",
        ),
        pytest.param([(1, BIKE, BOX)], [(1, PERSON, SHIFTED, 0.9)], [], None, id="iou-too-low"),
        pytest.param([(1, BIKE, BOX)], [(1, PERSON, BOX, 0.2)], [], None, id="not-confident"),
        pytest.param([(1, BIKE, BOX)], [(1, BIKE, BOX, 0.9)], [], None, id="right-class"),
    ],
)
def test_wrong_class(gt, preds, flagged, proposed):
    scores = find_label_issues([_set(gt, preds)])["wrong_class"]
    assert _rows(scores) == flagged
    if flagged:
        assert scores.proposed_label[0] == proposed and scores.label[0] == BIKE
        assert scores.iou[0] == 1.0 and scores.confidence[0] == 0.9


def test_neighbour_support_changes_the_wrong_class_score():
    data = _set([(1, BIKE, BOX)], [(1, PERSON, BOX, 0.6)])
    support = np.zeros((len(data.gt_ids), 3))
    plain = find_label_issues([data])["wrong_class"].score[0]
    support[FIRST, PERSON] = 1.0
    backed = find_label_issues([data], neighbour_support=support)["wrong_class"].score[0]
    assert backed > plain
    with pytest.raises(InputError, match="neighbour_support"):
        find_label_issues([data], neighbour_support=np.zeros((1, 3)))


@pytest.mark.parametrize(
    ("gt", "preds", "flagged"),
    [
        pytest.param([(1, CAR, BOX)], [], [FIRST], id="nothing-fires"),
        pytest.param([(1, CAR, BOX)], [(1, CAR, BOX, 0.9)], [], id="found"),
        pytest.param([(1, CAR, BOX)], [(1, BIKE, BOX, 0.9)], [], id="other-class-fires"),
        pytest.param(
            [(1, CAR, BOX)], [(1, CAR, [300, 300, 40, 40], 0.9)], [FIRST], id="prediction-elsewhere"
        ),
    ],
)
def test_spurious(gt, preds, flagged):
    scores = find_label_issues([_set(gt, preds)])["spurious"]
    assert _rows(scores) == flagged


def test_spurious_needs_a_reliable_model():
    # The model never finds cars elsewhere: its silence on this car says nothing.
    gt = [(1, CAR, BOX)]
    data = _set(gt, [])
    keep = data.pred_class != CAR
    blind = DetectionSet(
        **{
            **data.__dict__,
            **{
                f: getattr(data, f)[keep]
                for f in ("pred_image", "pred_class", "pred_boxes", "pred_scores", "pred_ids")
            },
        }
    )
    assert not find_label_issues([blind])["spurious"].flagged.any()


@pytest.mark.parametrize(
    ("preds", "flagged"),
    [
        pytest.param([(1, CAR, LOOSE, 0.9)], [FIRST], id="loose"),
        pytest.param([(1, CAR, LOOSE, 0.9), (1, CAR, BOX, 0.8)], [], id="good-match-too"),
        pytest.param([(1, CAR, [135, 135, 40, 40], 0.9)], [], id="iou-below-min"),
        pytest.param([(1, BIKE, LOOSE, 0.9)], [], id="other-class"),
        pytest.param([(1, CAR, LOOSE, 0.2)], [], id="not-confident"),
    ],
)
def test_loose_box(preds, flagged):
    scores = find_label_issues([_set([(1, CAR, BOX)], preds)])["loose_box"]
    assert _rows(scores) == flagged
    if flagged:
        assert scores.box[0].tolist() == LOOSE
        assert 0.1 <= scores.iou[0] < 0.6


def test_crowd_regions_are_never_issues():
    data = _set([(1, CAR, BOX)], [(1, BIKE, [102, 102, 10, 10], 0.9)])
    crowd = data.gt_crowd.copy()
    crowd[FIRST] = True
    data = DetectionSet(**{**data.__dict__, "gt_crowd": crowd})
    issues = find_label_issues([data])
    for t in ISSUE_TYPES:
        assert FIRST not in issues[t].gt.tolist()
    assert len(issues["missing"]) == 0  # the bike sits inside the crowd region


def test_thresholds_are_parameters():
    data = [_set([], [(1, CAR, BOX, 0.9)])]
    score = find_label_issues(data)["missing"].score.max()
    strict = LabelIssueConfig(missing_threshold=min(1.0, score + 0.01))
    assert not find_label_issues(data, config=strict)["missing"].flagged.any()
    with pytest.raises(InputError, match="loose_min_iou"):
        LabelIssueConfig(loose_min_iou=0.6, loose_max_iou=0.5)
    with pytest.raises(InputError, match="confidence"):
        LabelIssueConfig(confidence=1.5)


def test_sets_must_share_the_ground_truth():
    with pytest.raises(InputError, match="does not share"):
        find_label_issues([_set([(1, CAR, BOX)], []), _set([], [])])
    with pytest.raises(InputError, match="at least one"):
        find_label_issues([])


def test_results_round_trip_and_records():
    issues = find_label_issues(
        [_set([(1, BIKE, BOX)], [(1, PERSON, BOX, 0.9), (1, CAR, [300, 10, 40, 40], 0.9)])],
        set_names=["model"],
    )
    again = LabelIssues.from_dict(issues.to_dict())
    for t in ISSUE_TYPES:
        for name in IssueScores.__dataclass_fields__:
            a, b = getattr(issues[t], name), getattr(again[t], name)
            assert np.array_equal(a, b, equal_nan=True) if isinstance(a, np.ndarray) else a == b
    assert again.config == issues.config
    record = issues["wrong_class"].records(CLASSES, ["model"])[0]
    assert record["label"] == "bike" and record["proposed_label"] == "person"
    assert record["evidence"]["prediction_set"] == "model"
    assert issues.counts()["missing"]["flagged"] == 1


def test_missing_next_to_a_matched_neighbour_in_a_crowd():
    # A person beside an annotated (and matched) person: IoU 0.33 with it, yet a candidate.
    neighbour = [120, 100, 40, 40]
    data = _set([(1, PERSON, BOX)], [(1, PERSON, BOX, 0.9), (1, PERSON, neighbour, 0.9)])
    missing = find_label_issues([data])["missing"]
    assert missing.flagged.sum() == 1 and missing.box[0].tolist() == neighbour
    # Beside an object nothing matches, the same prediction is that object's loose box.
    alone = find_label_issues([_set([(1, PERSON, BOX)], [(1, PERSON, neighbour, 0.9)])])
    assert not alone["missing"].flagged.any() and alone["loose_box"].flagged.any()


def test_a_box_around_a_group_is_not_missing():
    gt = [(1, CAR, [100 + 50 * i, 100, 40, 40]) for i in range(3)]
    group = [95, 95, 160, 50]
    missing = find_label_issues([_set(gt, [(1, CAR, group, 0.9)])])["missing"]
    assert len(missing) == 0


def test_traces_separate_boxes_on_background_from_missed_objects():
    # The model leaves a faint prediction on each car it misses (images 2..7), so a car box
    # with nothing at all on it is more likely a box on background than one with a trace.
    missed = [(i, CAR, BOX) for i in range(2, 8)]
    traces = [(i, BIKE, BOX, 0.02) for i in range(2, 8)]
    gt = [(1, CAR, BOX), (1, CAR, [300, 300, 40, 40])] + missed
    preds = [(1, PERSON, [302, 302, 40, 40], 0.03)] + traces
    spurious = find_label_issues([_set(gt, preds, num_images=8)])["spurious"]
    score = dict(zip(spurious.gt.tolist(), spurious.score.tolist()))
    assert score[FIRST] > 0.6 > score[FIRST + 1]
    assert spurious.flagged[spurious.gt == FIRST].all()


def test_loose_box_inside_the_annotation_scores_higher():
    inside = [105, 105, 25, 25]  # IoU 0.39, all of it inside BOX
    spilling = [110, 110, 40, 40]  # IoU 0.39, half outside
    loose = find_label_issues([_set([(1, CAR, BOX)], [(1, CAR, inside, 0.9)])])["loose_box"]
    out = find_label_issues([_set([(1, CAR, BOX)], [(1, CAR, spilling, 0.9)])])["loose_box"]
    assert loose.score[0] > out.score[0] > 0


def test_neighbour_support_from_embeddings():
    from detection_debugger.evaluation.label_issues import neighbour_support

    # Two tight groups: objects 0-2 near (1, 0), objects 3-5 near (0, 1); object 6 has none.
    emb = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1], [-0.1, 1], [np.nan, np.nan]])
    labels = np.array([CAR, CAR, BIKE, PERSON, PERSON, PERSON, CAR])
    support = neighbour_support(emb, labels, 3, k=2, chunk=4)
    assert support.shape == (7, 3)
    assert support[2].tolist() == [1.0, 0.0, 0.0]  # the bike among cars: its neighbours say car
    assert support[3].tolist() == [0.0, 0.0, 1.0]
    assert support[6].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(support[:6].sum(axis=1), 1.0)


def test_missing_beside_a_neighbour_that_another_prediction_fits_better():
    # The annotated person's own prediction fits it loosely (IoU 0.51); the prediction on
    # the unannotated person beside it (IoU 0.33 with the annotated one) is still a candidate.
    own, beside = [110, 104, 40, 40], [120, 100, 40, 40]
    data = _set([(1, PERSON, BOX)], [(1, PERSON, own, 0.9), (1, PERSON, beside, 0.9)])
    missing = find_label_issues([data])["missing"]
    assert missing.flagged.sum() == 1 and missing.box[0].tolist() == beside


def _shape_scene(persons_found: bool, own_trace: float = 0.0, person_trace: float = 0.0):
    """Tall 10 x 40 persons (found or not by the model) and wide 80 x 60 cars (found),
    plus one car annotation of a person's shape with no prediction but a car one at
    ``own_trace`` and a person one at ``person_trace`` (0: none)."""
    persons = [(1, PERSON, [5 + 15 * i, 10, 10, 40]) for i in range(20)]
    cars = [(2, CAR, [5 + 90 * (i % 10), 10 + 70 * (i // 10), 80, 60]) for i in range(20)]
    odd = [(1, CAR, [150, 200, 10, 40])]
    preds = [(i, c, b, 0.9) for i, c, b in cars + (persons if persons_found else [])]
    for label, trace in ((CAR, own_trace), (PERSON, person_trace)):
        if trace:
            preds.append((1, label, [150, 200, 10, 40], trace))
    return _set(persons + cars + odd, preds, num_images=3)


def test_wrong_class_from_a_shape_implausible_for_the_class():
    scores = find_label_issues([_shape_scene(persons_found=False)])["wrong_class"]
    odd = FIRST + 40
    assert _rows(scores) == [odd]
    i = int(np.flatnonzero(scores.gt == odd)[0])
    assert scores.proposed_label[i] == PERSON and scores.pred[i] == -1
    assert scores.support[i] == 0 and np.isnan(scores.confidence[i])
    # A model that finds persons of that size and is silent here: a box on background.
    assert not find_label_issues([_shape_scene(True)])["wrong_class"].flagged.any()
    # Unless it leaves a faint person prediction there: it saw a person.
    faint = find_label_issues([_shape_scene(True, person_trace=0.05)])["wrong_class"]
    assert _rows(faint) == [odd] and faint.pred[faint.gt == odd][0] == -1
    # Even a faint prediction of its own class keeps the annotation.
    traced = find_label_issues([_shape_scene(False, own_trace=0.01)])["wrong_class"]
    assert not traced.flagged.any()
    off = LabelIssueConfig(shape_max_share=0.0)
    assert not find_label_issues([_shape_scene(False)], config=off)["wrong_class"].flagged.any()


def test_shape_neighbours_are_counted_exactly_up_to_the_cap_without_every_pair():
    """The binned count equals comparing every pair (capped), edges and ties included."""
    from detection_debugger.evaluation.label_issues import _count_close

    rng = np.random.default_rng(0)
    for trial in range(300):
        n, r = rng.integers(0, 60), rng.integers(0, 80)
        tol = float(rng.choice([0.1, np.log(1.5), 0.5, 1.0]))
        scale = rng.choice([0.2, 1, 5])
        ref = np.round(rng.normal(0, scale, (r, 2)), rng.integers(1, 4))
        query = np.round(rng.normal(0, scale, (n, 2)), rng.integers(1, 4))
        if r and n and trial % 3 == 0:
            query[: min(n, r)] = ref[: min(n, r)] + tol  # exactly at the window's edge
        cap = int(rng.integers(1, 6))
        every_pair = (np.abs(query[:, None, :] - ref[None]) <= tol).all(axis=2).sum(axis=1)
        got = _count_close(query, ref, tol, cap)
        np.testing.assert_array_equal(got, np.minimum(every_pair, cap), err_msg=str(trial))
