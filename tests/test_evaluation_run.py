"""The engine as a FiftyOne evaluation run: fields, FiftyOne's tools, parity."""

from __future__ import annotations

import uuid

import fiftyone as fo
import numpy as np
import pytest
from fiftyone.operators import execute_operator
from helpers import run_pycocotools

from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.runs import DebuggerResults, evaluate_detections
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files
from detection_debugger.evaluation import MatchTable

pytestmark = pytest.mark.fiftyone

PLUGIN = "@datacentric/detection-debugger"


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    config = SyntheticConfig(
        num_images=25,
        num_classes=3,
        crowd_rate=0.08,
        seed=11,
        image_size=(240, 180),
        class_names=("car", "bike", "crosswalks"),
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("eval"), gt, results, gt_format="coco")
    return gt, results, paths


@pytest.fixture
def dataset(coco):
    _, _, paths = coco
    name = f"eval-{uuid.uuid4().hex[:8]}"
    plan = plan_import(
        name,
        paths["images"],
        [
            LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
            LabelSource(paths["pred"], "tao", "predictions", predictions=True),
        ],
    )
    ds = apply_import(plan, progress=False)
    yield ds
    ds.delete()


def test_operator_saves_a_run_fiftyone_understands(dataset, coco):
    gt, results, _ = coco
    out = execute_operator(
        f"{PLUGIN}/evaluate_detections",
        ctx={"dataset": dataset, "params": {"pred_field": "predictions", "eval_key": "dd"}},
    )
    assert out.error is None, out.error
    assert out.result["eval_key"] == "dd"
    assert dataset.list_evaluations() == ["dd"]
    info = dataset.get_evaluation_info("dd")
    assert info.config.method == "detection-debugger" and info.config.type == "detection"
    loaded = dataset.load_evaluation_results("dd")
    assert isinstance(loaded, DebuggerResults)
    # The stats are pycocotools' on the same boxes (up to the relative-coordinate round trip).
    reference = run_pycocotools(gt, results)
    ours = np.array([-1 if v is None else v for v in loaded.result.stats.values()])
    np.testing.assert_allclose(ours, reference.stats, atol=1e-6)
    assert loaded.mAP() == pytest.approx(reference.stats[0], abs=1e-6)
    category_order = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    for name in loaded.classes:
        p = reference.eval["precision"][:, :, category_order.index(name), 0, -1]
        assert loaded.result.classes[name].AP == pytest.approx(p[p > -1].mean(), abs=1e-6)
    # FiftyOne's own tools.
    assert len(dataset.load_evaluation_view("dd")) == len(dataset)
    patches = dataset.to_evaluation_patches("dd")
    counts = patches.count_values("type")
    assert counts["tp"] == dataset.sum("dd_tp") and counts["fp"] == dataset.sum("dd_fp")
    outcomes = dataset.count_values("predictions.detections.dd_outcome")
    assert set(outcomes) <= {"tp", "fp", "duplicate", "mispredicted", "ignored", "below_threshold"}
    confused = dataset.filter_labels("ground_truth", fo.ViewField("dd_outcome") == "mispredicted")
    names = confused.values("ground_truth.detections.dd_confused_with", unwind=True)
    assert all(n in loaded.classes for n in names)


def test_per_object_outcomes_equal_fiftyones_classwise_evaluation(dataset):
    evaluate_detections(dataset, "predictions", eval_key="dd")
    dataset.evaluate_detections(
        "predictions", gt_field="ground_truth", eval_key="fo", classwise=True, progress=False
    )
    for field in ("predictions", "ground_truth"):
        for suffix in ("", "_id"):
            assert dataset.values(f"{field}.detections.dd{suffix}") == dataset.values(
                f"{field}.detections.fo{suffix}"
            )
        ours = dataset.values(f"{field}.detections.dd_iou", unwind=True)
        theirs = dataset.values(f"{field}.detections.fo_iou", unwind=True)
        assert [v is None for v in ours] == [v is None for v in theirs]
        assert np.allclose([v for v in ours if v is not None], [v for v in theirs if v is not None])
    for suffix in ("_tp", "_fp", "_fn"):
        assert dataset.values(f"dd{suffix}") == dataset.values(f"fo{suffix}")


def test_rename_and_delete_clean_up_every_field(dataset):
    before = set(dataset.get_field_schema(flat=True))
    evaluate_detections(dataset, "predictions", eval_key="dd")
    written = set(dataset.get_field_schema(flat=True)) - before
    assert "predictions.detections.dd_outcome" in written and "dd_tp" in written
    dataset.rename_evaluation("dd", "renamed")
    after_rename = set(dataset.get_field_schema(flat=True)) - before
    assert after_rename == {f.replace("dd", "renamed") for f in written}
    dataset.delete_evaluation("renamed")
    assert set(dataset.get_field_schema(flat=True)) == before


def test_subsets_are_re_evaluated_exactly_from_the_stored_table(dataset):
    results = evaluate_detections(dataset, "predictions", eval_key="dd")
    loaded = dataset.load_evaluation_results("dd")
    # Images keep the dataset's order (with equal scores, pycocotools' results depend on it).
    subset = dataset.select(dataset.take(9, seed=1).values("id"))
    sliced = loaded.evaluate_samples(subset.values("id"))
    from detection_debugger.datasets.arrays import detection_set_from_view

    data, _ = detection_set_from_view(
        subset, "ground_truth", "predictions", classes=results.classes.tolist()
    )
    assert sliced.to_dict()["stats"] == MatchTable.build(data).evaluate().to_dict()["stats"]
    with pytest.raises(ValueError, match="not in evaluation"):
        fresh = fo.Dataset()
        fresh.add_sample(fo.Sample(filepath="/tmp/x.jpg"))
        loaded.evaluate_samples(fresh.values("id"))


def test_label_filtered_views_write_to_the_right_objects(dataset):
    F = fo.ViewField
    confident = dataset.filter_labels("predictions", F("confidence") > 0.5, only_matches=False)
    evaluate_detections(confident, "predictions", eval_key="dd")
    pairs = list(
        zip(
            dataset.values("predictions.detections.confidence", unwind=True),
            dataset.values("predictions.detections.dd", unwind=True),
        )
    )
    assert all((value is None) == (conf <= 0.5) for conf, value in pairs)
    assert dataset.count_values("predictions.detections.dd")[None] == sum(
        c <= 0.5 for c, _ in pairs
    )


def test_fiftyones_own_evaluate_detections_runs_this_method(dataset):
    """FiftyOne's documented way to add a method: ``method="detection-debugger"`` in
    ``dataset.evaluate_detections`` gives the same run as this plugin's function."""
    ours = evaluate_detections(dataset, "predictions", "ground_truth", eval_key="ours")
    theirs = dataset.evaluate_detections(
        "predictions", "ground_truth", eval_key="theirs", method="detection-debugger"
    )
    assert isinstance(theirs, DebuggerResults)
    assert dataset.get_evaluation_info("theirs").config.method == "detection-debugger"
    assert theirs.result.to_dict()["stats"] == ours.result.to_dict()["stats"]
    assert dataset.values("theirs_tp") == dataset.values("ours_tp")  # counts rewritten in bulk
    assert dataset.values("predictions.detections.theirs_outcome") == dataset.values(
        "predictions.detections.ours_outcome"
    )
    loaded = dataset.load_evaluation_results("theirs")
    assert (
        loaded.evaluate_samples(dataset.values("id")[:5]).stats
        == ours.evaluate_samples(dataset.values("id")[:5]).stats
    )


def test_tide_types_are_written_on_every_object_and_kept_in_the_results(dataset):
    from detection_debugger.datasets.arrays import detection_set_from_view
    from detection_debugger.evaluation import tide_errors

    results = evaluate_detections(dataset, "predictions", eval_key="dd")
    data, ids = detection_set_from_view(
        dataset, "ground_truth", "predictions", classes=results.classes.tolist()
    )
    expected = tide_errors(data)
    for field, side, errors in (
        ("predictions", "pred", expected.pred_error),
        ("ground_truth", "gt", expected.gt_error),
    ):
        stored = dict(
            zip(
                dataset.values(f"{field}.detections.id", unwind=True),
                dataset.values(f"{field}.detections.dd_tide", unwind=True),
            )
        )
        want = {i: (e or None) for i, e in zip(ids[side], errors.tolist())}
        assert stored == want, field
    assert set(expected.pred_error.tolist()) - {""}  # the set has errors to write
    loaded = dataset.load_evaluation_results("dd")
    assert loaded.tide["main"] == pytest.approx(expected.to_dict()["main"])
    assert loaded.tide["counts"] == expected.counts
    dataset.delete_evaluation("dd")
    assert not dataset.has_field("predictions.detections.dd_tide")
    assert not dataset.has_field("ground_truth.detections.dd_tide")


def test_thresholds_are_saved_with_the_run_renamed_and_removed_with_it(dataset):
    from detection_debugger.datasets.runs import save_thresholds, saved_thresholds

    evaluate_detections(dataset, "predictions", eval_key="dd")
    assert saved_thresholds(dataset, "dd") is None
    save_thresholds(dataset, "dd", 0.4, {"car": 0.7})
    assert saved_thresholds(dataset, "dd") == {"threshold": 0.4, "classes": {"car": 0.7}}
    dataset.rename_evaluation("dd", "renamed")
    assert saved_thresholds(dataset, "renamed")["classes"] == {"car": 0.7}
    assert saved_thresholds(dataset, "dd") is None
    dataset.delete_evaluation("renamed")
    assert saved_thresholds(dataset, "renamed") is None


def _reference_matches(table, ids: dict, classes: list[str]) -> list[tuple]:
    """FiftyOne's flat match list, object by object (the loop the columns replace)."""
    from detection_debugger.evaluation import Outcome

    data, out = table.data, table.outcomes
    matches = []
    for j in range(len(data.gt_ids)):
        if data.gt_crowd[j]:
            continue
        p = int(out.gt_match[j])
        if p >= 0:
            matches.append(
                (
                    classes[data.gt_class[j]],
                    classes[data.pred_class[p]],
                    float(out.gt_iou[j]),
                    float(data.pred_scores[p]),
                    ids["gt"][j],
                    ids["pred"][p],
                )
            )
        else:
            matches.append((classes[data.gt_class[j]], None, None, None, ids["gt"][j], None))
    for p in np.flatnonzero(np.isin(out.pred_outcome, (Outcome.FP, Outcome.DUPLICATE))):
        matches.append(
            (
                None,
                classes[data.pred_class[p]],
                None,
                float(data.pred_scores[p]),
                None,
                ids["pred"][p],
            )
        )
    return matches


def test_fiftyones_match_columns_are_built_from_the_table_not_stored(dataset):
    """The run stores no per-match lists (millions of JSON values at scale); a loaded run
    builds FiftyOne's ``ytrue``/``ypred``/``ious``/``confs``/ids from its table, equal to
    the object-by-object list, and FiftyOne's report and confusion matrix work on them."""
    import fiftyone.utils.eval.coco as fouc

    evaluate_detections(dataset, "predictions", eval_key="dd")
    stored = dataset._doc.evaluations["dd"].results.read()  # the stored JSON
    assert b"ytrue" not in stored and b"match_table" in stored
    loaded = dataset.load_evaluation_results("dd")
    assert "ytrue" not in vars(loaded)  # not built before it is used
    table = loaded.table()
    ids = {side: loaded.label_ids(side).astype(str).tolist() for side in ("gt", "pred")}
    matches = _reference_matches(table, ids, list(loaded.classes))
    reference = fouc.COCODetectionResults(
        dataset,
        loaded.config,
        "dd",
        matches,
        loaded.precision,
        loaded.recall,
        loaded.iou_threshs,
        list(loaded.classes),
    )
    for name in ("ytrue", "ypred", "ious", "confs", "ytrue_ids", "ypred_ids"):
        ours, theirs = getattr(loaded, name), getattr(reference, name)
        assert ours.dtype == theirs.dtype, name
        assert ours.tolist() == theirs.tolist(), name
    assert loaded.report() == reference.report()
    np.testing.assert_array_equal(loaded.confusion_matrix(), reference.confusion_matrix())
