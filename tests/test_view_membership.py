"""The cached sample ids of a view (``datasets/view_membership.py``): a hit equals the
aggregation's answer; any write to the samples, through FiftyOne or this project's raw
writers, makes the next call run the aggregation again; views whose membership depends on
more than their sample documents are never cached.

Aggregations are counted by wrapping ``sample_ids_of`` where the module calls it. The samples'
``last_modified_at`` is set to :data:`AGED` before a view is first resolved (a dataset not
written for years); the freshness rule is tested on its own, and switched off
(``FRESH_S = 0``) where a test checks that a write changes the data version."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import fiftyone as fo
import numpy as np
import pytest
from fiftyone import ViewField as F

from detection_debugger.datasets import fiftyone_private as private
from detection_debugger.datasets import review, slices, view_membership
from detection_debugger.datasets.issue_fields import ISSUE_TAGS
from detection_debugger.datasets.label_issues import find_label_issues
from detection_debugger.datasets.object_writes import write_object_attributes
from detection_debugger.datasets.runs import evaluate_detections
from detection_debugger.datasets.view_membership import view_sample_ids
from detection_debugger.demo.runner import build_demo_dataset
from detection_debugger.demo.scenes import DemoConfig
from detection_debugger.evaluation.label_issues import ACCEPTED, REJECTED

pytestmark = pytest.mark.fiftyone

AGED = datetime(2020, 1, 1)
GT, PREDS = "ground_truth", ["baseline", "retrained"]
FIXED = GT + "_fixed"


def _age(dataset) -> None:
    """Every sample last written at :data:`AGED`."""
    private.samples_collection(dataset).update_many({}, {"$set": {"last_modified_at": AGED}})


@pytest.fixture
def aggregations(monkeypatch):
    """The views whose aggregation ran, one entry per run."""
    calls = []

    def counted(view):
        calls.append(view)
        return private.sample_ids_of(view)

    monkeypatch.setattr(view_membership, "sample_ids_of", counted)
    view_membership.clear_view_cache()
    yield calls
    view_membership.clear_view_cache()


@pytest.fixture
def no_fresh_rule(monkeypatch):
    """A write is trusted to change the version at once (the data version alone decides)."""
    monkeypatch.setattr(view_membership, "FRESH_S", 0.0)


@pytest.fixture
def dataset():
    """20 samples: ``x`` = 0..19, a car on even samples and a person on odd ones (tagged
    ``odd``), ``y`` on every third; written long ago."""
    ds = fo.Dataset(f"membership-{uuid.uuid4().hex[:8]}")
    ds.add_samples(
        [
            fo.Sample(
                filepath=f"/tmp/membership-{i}.jpg",
                x=i,
                tags=["odd"] if i % 2 else [],
                gt=fo.Detections(
                    detections=[
                        fo.Detection(label="person" if i % 2 else "car", bounding_box=[0.1] * 4)
                    ]
                ),
                **({"y": i} if i % 3 == 0 else {}),
            )
            for i in range(20)
        ]
    )
    _age(ds)
    yield ds
    ds.delete()


def _ids(ds) -> list[str]:
    return ds.values("id")


VIEWS = [
    pytest.param(lambda ds: ds, id="dataset"),
    pytest.param(lambda ds: ds.match(F("x") > 9), id="match"),
    pytest.param(lambda ds: ds.select(_ids(ds)[15:3:-2], ordered=True), id="select-ordered"),
    pytest.param(lambda ds: ds.exclude(_ids(ds)[:3]), id="exclude"),
    pytest.param(lambda ds: ds.sort_by("x", reverse=True).skip(2).limit(5), id="sort-skip-limit"),
    pytest.param(lambda ds: ds.take(7, seed=3), id="take"),
    pytest.param(lambda ds: ds.shuffle(seed=1), id="shuffle"),
    pytest.param(lambda ds: ds.match_tags("odd"), id="match-tags"),
    pytest.param(lambda ds: ds.exists("y"), id="exists"),
    pytest.param(
        lambda ds: ds.match(F("gt.detections").filter(F("label") == "car").length() > 0),
        id="match-on-labels",
    ),
]


@pytest.mark.parametrize("make", VIEWS)
def test_a_hit_is_the_aggregations_answer_and_runs_no_aggregation(dataset, aggregations, make):
    expected = private.sample_ids_of(make(dataset))
    assert expected == make(dataset).values("id")
    assert view_sample_ids(make(dataset)) == expected
    assert len(aggregations) == 1
    assert view_sample_ids(make(dataset)) == expected  # the same stages, a view built anew
    assert view_sample_ids(make(dataset)) == expected
    assert len(aggregations) == 1


def test_a_caller_cannot_change_the_cached_ids(dataset, aggregations):
    view = dataset.match(F("x") > 9)
    view_sample_ids(view).clear()
    assert view_sample_ids(view) == private.sample_ids_of(view)
    assert len(aggregations) == 1


def test_views_are_told_apart(dataset, aggregations):
    other = dataset.clone()  # the same stages, count and newest write: only its id differs
    try:
        _age(other)
        assert view_sample_ids(other.match(F("x") > 9)) == other.values("id")[10:]
        assert view_sample_ids(dataset.match(F("x") > 9)) == _ids(dataset)[10:]
        assert view_sample_ids(dataset.match(F("x") > 10)) == _ids(dataset)[11:]
        assert len(aggregations) == 3
        # Take without a seed draws its seed per view: two views of different samples.
        first, second = dataset.take(5), dataset.take(5)
        assert view_sample_ids(first) == first.values("id")
        assert view_sample_ids(second) == second.values("id")
        assert view_sample_ids(first) == first.values("id")
        assert len(aggregations) == 5
    finally:
        other.delete()


def test_the_cache_keeps_the_most_recent_views(dataset, aggregations):
    views = [dataset.match(F("x") > k) for k in range(view_membership.CACHE_ENTRIES + 1)]
    for view in views:
        view_sample_ids(view)
    view_sample_ids(views[-1])
    assert len(aggregations) == len(views)
    view_sample_ids(views[0])  # the least recent, dropped
    assert len(aggregations) == len(views) + 1


def test_nothing_is_cached_while_the_newest_write_is_fresh(dataset, aggregations):
    view = dataset.match(F("x") > 9)
    dataset.select(_ids(dataset)[0]).set_values("x", [1])  # written now
    view_sample_ids(view)
    view_sample_ids(view)
    assert len(aggregations) == 2
    future = datetime.utcnow() + timedelta(hours=1)  # a writer's clock ahead of ours
    private.samples_collection(dataset).update_many({}, {"$set": {"last_modified_at": future}})
    view_sample_ids(view)
    view_sample_ids(view)
    assert len(aggregations) == 4
    _age(dataset)
    view_sample_ids(view)
    view_sample_ids(view)
    assert len(aggregations) == 5


def _first(ds):
    return ds.select(_ids(ds)[0])


def _save_edit(ds):
    sample = ds.first()
    sample["x"] = 100
    sample.save()


MATCH = lambda ds: ds.match(F("x") > 9)  # noqa: E731
ODD = lambda ds: ds.match_tags("odd")  # noqa: E731
CARS = lambda ds: ds.match(F("gt.detections").filter(F("score_x") > 0.5).length() > 0)  # noqa: E731
FIFTYONE_CHANGES = [
    pytest.param(MATCH, lambda ds: ds.delete_samples(_ids(ds)[-1]), id="delete-sample"),
    pytest.param(
        MATCH, lambda ds: ds.add_sample(fo.Sample(filepath="/tmp/m-new.jpg", x=50)), id="add"
    ),
    pytest.param(MATCH, lambda ds: _first(ds).set_values("x", [100]), id="set-values"),
    pytest.param(MATCH, _save_edit, id="sample-save"),
    pytest.param(MATCH, lambda ds: ds.clear_sample_field("x"), id="clear-field"),
    pytest.param(MATCH, lambda ds: ds.rename_sample_field("x", "z"), id="rename-field"),
    pytest.param(ODD, lambda ds: _first(ds).tag_samples("odd"), id="tag"),
    pytest.param(ODD, lambda ds: ds.untag_samples("odd"), id="untag"),
]


def _object_scores(ds):
    """``score_x`` of every object through the bulk object writer: 1 on the first sample."""
    ids = _ids(ds)
    per_sample = {"score_x": [[1.0 if i == 0 else 0.0] for i in range(len(ids))]}
    write_object_attributes(ds, "gt", ids, per_sample)


def _sample_values(ds):
    ids = _ids(ds)
    write_object_attributes(ds, "gt", ids, {}, sample_values={"x": [100] + [0] * (len(ids) - 1)})


def _stored_values(ds):
    private.set_stored_values(ds, "x", {ds.first().filepath: 100}, "filepath")


OUR_CHANGES = [
    pytest.param(MATCH, _sample_values, id="object-writes-sample-values"),
    pytest.param(CARS, _object_scores, id="object-writes-object-attributes"),
    pytest.param(MATCH, _stored_values, id="set-stored-values"),
]


@pytest.mark.parametrize(("make", "change"), FIFTYONE_CHANGES + OUR_CHANGES)
def test_a_write_makes_the_next_call_read_again(dataset, aggregations, no_fresh_rule, make, change):
    if make is CARS:
        write_object_attributes(dataset, "gt", _ids(dataset), {"score_x": [[0.0]] * 20})
        _age(dataset)
    before = view_sample_ids(make(dataset))
    assert view_sample_ids(make(dataset)) == before
    assert len(aggregations) == 1
    change(dataset)
    after = view_sample_ids(make(dataset))
    assert len(aggregations) == 2
    assert after == private.sample_ids_of(make(dataset)) != before
    assert view_sample_ids(make(dataset)) == after  # cached again under the new version
    assert len(aggregations) == 2


def test_a_write_during_the_aggregation_costs_a_miss_not_a_stale_answer(
    dataset, monkeypatch, no_fresh_rule
):
    """The version is read before the ids: a write landing just after the aggregation read
    the samples leaves the ids older than the data, and the next call reads again."""
    view_membership.clear_view_cache()
    calls = []

    def then_a_write(view):
        ids = private.sample_ids_of(view)
        if not calls:
            _first(dataset).set_values("x", [100])
        calls.append(view)
        return ids

    monkeypatch.setattr(view_membership, "sample_ids_of", then_a_write)
    before = view_sample_ids(MATCH(dataset))
    after = view_sample_ids(MATCH(dataset))
    assert len(calls) == 2
    assert after == private.sample_ids_of(MATCH(dataset)) == [_ids(dataset)[0], *before]
    view_membership.clear_view_cache()


NEVER_CACHED = [
    pytest.param(lambda ds: ds.to_patches("gt"), id="patches"),
    pytest.param(lambda ds: ds.filter_labels("gt", F("label") == "car"), id="filter-labels"),
    pytest.param(lambda ds: ds.match(F.rand() < 0.5), id="random-match"),
    pytest.param(lambda ds: ds.match(F("x") > 9).set_field("x", 0), id="set-field"),
]


@pytest.mark.parametrize("make", NEVER_CACHED)
def test_views_that_depend_on_more_than_their_samples_are_never_cached(dataset, aggregations, make):
    view = make(dataset)
    view_sample_ids(view)
    view_sample_ids(view)
    assert len(aggregations) == 2


# The raw writers of the label review, on the demo's label issues: every sample document
# they change has a newer ``last_modified_at``, as after a FiftyOne write.


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo (60 images, seed 0) with its label issues found."""
    root = tmp_path_factory.mktemp("demo")
    ds, _ = build_demo_dataset(
        DemoConfig(60, 0), root, name=f"membership-demo-{uuid.uuid4().hex[:6]}", simulated=True
    )
    find_label_issues(ds, GT, PREDS)
    review._ensure_fixed(ds, GT)
    yield ds
    ds.delete()


@pytest.fixture
def issues(demo):
    ds = demo.clone(f"membership-issues-{uuid.uuid4().hex[:6]}")
    yield ds
    ds.delete()


def _one_of_each(ds) -> list[tuple[str, str]]:
    """One flagged object per issue type, each a different object."""
    out: dict[str, str] = {}
    for t in ISSUE_TAGS:
        out[t] = next(i for i in review.flagged_label_ids(ds, GT, t) if i not in out.values())
    return [(label_id, t) for t, label_id in out.items()]


def _documents(ds) -> dict:
    return {doc.pop("_id"): doc for doc in private.samples_collection(ds).find()}


def _changed_but_not_stamped(ds, change) -> tuple[int, list]:
    """Runs ``change`` on the aged samples: the number of sample documents it changed, and
    those whose ``last_modified_at`` it left as it was."""
    _age(ds)
    before = _documents(ds)
    change(ds)
    after = _documents(ds)
    changed = [
        i
        for i, doc in after.items()
        if {**doc, "last_modified_at": None} != {**before.get(i, {}), "last_modified_at": None}
    ]
    return len(changed), [i for i in changed if after[i]["last_modified_at"] <= AGED]


def _assert_stamped(ds, change) -> None:
    changed, unstamped = _changed_but_not_stamped(ds, change)
    assert changed and not unstamped, (changed, unstamped)


def test_the_finder_stamps_every_sample_it_writes(issues):
    # A sample without ground truth: only its missing candidates are written.
    issues.select(issues.first().id).set_values(GT, [fo.Detections()])
    _assert_stamped(issues, lambda ds: find_label_issues(ds, GT, PREDS[:1]))


def test_reviews_stamp_every_sample_they_write(issues):
    pairs = _one_of_each(issues)
    _assert_stamped(issues, lambda ds: review.accept_issues(ds, GT, pairs))
    _assert_stamped(issues, lambda ds: review.reject_issues(ds, GT, pairs))


@pytest.mark.parametrize("issue_type", list(ISSUE_TAGS))
def test_each_raw_edit_of_a_review_stamps_the_samples_it_changes(issues, issue_type):
    """One issue accepted, then rejected: each edit of the corrected field (removal, addition,
    attributes, an original put back) and each write of the decisions, checked on its own."""
    (pair,) = [p for p in _one_of_each(issues) if p[1] == issue_type]
    for status in (ACCEPTED, REJECTED):
        decided = review._decide(issues, GT, review._items([pair]), status)
        _assert_stamped(
            issues,
            lambda ds, d=decided, s=status: review._apply(ds, GT, FIXED, d, s, review.timestamp()),
        )
        _assert_stamped(issues, lambda ds, d=decided: review._write_decisions(ds, GT, d))


def test_a_review_makes_the_next_call_read_again(issues, aggregations, no_fresh_rule):
    def added(ds):
        return ds.match(F(f"{FIXED}.detections").filter(F("fix_type") == "missing").length() > 0)

    _age(issues)
    assert view_sample_ids(added(issues)) == []
    assert view_sample_ids(added(issues)) == []
    assert len(aggregations) == 1
    (label_id,) = [i for i, t in _one_of_each(issues) if t == "missing"]
    review.accept_issues(issues, GT, [(label_id, "missing")])
    assert view_sample_ids(added(issues)) == private.sample_ids_of(added(issues)) != []
    assert len(aggregations) == 2


def test_a_slice_resolved_again_runs_no_aggregation(issues, aggregations):
    evaluate_detections(issues, "baseline", gt_field=GT, eval_key="base")
    results = slices.load_run(issues, "base")
    _age(issues)
    view = issues.take(20, seed=1)
    first = slices.slice_selection(results, view)
    again = slices.slice_selection(results, issues.take(20, seed=1))
    assert len(aggregations) == 1
    assert np.array_equal(first.image_mask, again.image_mask)
    assert first.image_mask.sum() == 20
