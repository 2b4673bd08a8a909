"""Slices (saved views) re-evaluated from a run's stored matches; two runs compared."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from fiftyone import ViewField as F
from fiftyone.operators import execute_operator
from helpers import run_cli, run_pycocotools

from detection_debugger.datasets import slices
from detection_debugger.datasets.comparison import compare_runs
from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.runs import evaluate_detections
from detection_debugger.datasets.views import cell_view, change_view
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files
from detection_debugger.evaluation import Outcome

pytestmark = pytest.mark.fiftyone

PLUGIN = "@datacentric/detection-debugger"
CLASSES = ("car", "bike", "crosswalks")


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    config = SyntheticConfig(
        num_images=40,
        num_classes=3,
        crowd_rate=0.05,
        seed=21,
        image_size=(240, 180),
        class_names=CLASSES,
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("slices"), gt, results, gt_format="coco")
    return gt, results, paths


@pytest.fixture(scope="module")
def dataset(coco):
    _, _, paths = coco
    plan = plan_import(
        f"slices-{uuid.uuid4().hex[:8]}",
        paths["images"],
        [
            LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
            LabelSource(paths["pred"], "tao", "predictions", predictions=True),
        ],
    )
    ds = apply_import(plan, progress=False)
    evaluate_detections(ds, "predictions", eval_key="base")
    evaluate_detections(ds, "predictions", eval_key="strict", iou=0.75)
    yield ds
    ds.delete()


def _reference_on(gt, results, view):
    """pycocotools on the images of ``view`` (matched by file name)."""
    names = {Path(p).name for p in view.values("filepath")}
    ids = [im["id"] for im in gt["images"] if im["file_name"] in names]
    return run_pycocotools(gt, results, ids)


def _non_crowd(view) -> int:
    """Ground-truth objects of ``view`` that are not crowd regions."""
    return sum(not c for c in view.values("ground_truth.detections.iscrowd", unwind=True))


def test_image_slices_equal_pycocotools_on_their_images(dataset, coco):
    gt, results, _ = coco
    for seed in range(5):
        view = dataset.take(int(5 + 6 * seed), seed=seed)
        name = f"random {seed}"
        slices.save_slice(dataset, name, view, description="random images", overwrite=True)
        result = slices.evaluate_slice(dataset, "base", name)
        assert result.params["selection"] == "images" and result.params["slice"] == name
        assert result.params["num_images"] == len(view)
        reference = _reference_on(gt, results, view)
        ours = np.array([-1 if v is None else v for v in result.stats.values()])
        np.testing.assert_allclose(ours, reference.stats, atol=1e-6)


def test_object_slices_follow_the_rule(dataset):
    view = dataset.filter_labels("ground_truth", F("label") == "crosswalks")
    slices.save_slice(dataset, "crosswalks only", view, overwrite=True)
    result = slices.evaluate_slice(dataset, "base", "crosswalks only")
    assert result.params["selection"] == "objects"
    whole_images = slices.evaluate_view(
        slices.load_run(dataset, "base"), dataset.select(view.values("id"))
    )[0]
    # The slice's class is evaluated exactly as on its images; the others have no ground
    # truth and, by the rule, no ghosts.
    assert result.classes["crosswalks"] == whole_images.classes["crosswalks"]
    for name in ("car", "bike"):
        m = result.classes[name]
        assert (m.AP, m.num_gt, m.tp, m.fn, m.fp) == (None, 0, 0, 0, 0)


def test_object_slice_selects_exactly_the_shown_objects(dataset):
    big = dataset.filter_labels("ground_truth", F("bounding_box")[2] > 0.2)
    results = slices.load_run(dataset, "base")
    selection = slices.slice_selection(results, big)
    shown = set(big.values("ground_truth.detections.id", unwind=True))
    ids = results.label_ids("gt")
    assert {i.decode() for i in ids[selection.gt_mask]} == shown
    result = results.table().evaluate(selection.image_mask, selection.gt_mask, selection.pred_mask)
    for name, m in result.classes.items():
        expected = _non_crowd(big.filter_labels("ground_truth", F("label") == name))
        assert m.num_gt == expected and m.tp + m.fn + m.mispredicted == expected


def test_patch_slices_of_undetected_objects(dataset):
    patches = cell_view(dataset, "base", "ground_truth", "predictions", "crosswalks", "background")
    slices.save_slice(dataset, "undetected crosswalks", patches, overwrite=True)
    result = slices.evaluate_slice(dataset, "base", "undetected crosswalks")
    m = result.classes["crosswalks"]
    assert m.num_gt == len(patches) > 0
    assert (m.tp, m.fn, m.AR100) == (0, len(patches), 0.0)


def test_slices_are_listed_and_missing_ones_named(dataset):
    slices.save_slice(dataset, "listed", dataset.limit(3), description="three")
    rows = {row["name"]: row for row in slices.list_slices(dataset)}
    assert rows["listed"]["num_samples"] == 3 and rows["listed"]["description"] == "three"
    with pytest.raises(ValueError, match="already has a slice"):
        slices.save_slice(dataset, "listed", dataset.limit(4))
    with pytest.raises(ValueError, match="no slice 'nope'.*listed"):
        slices.evaluate_slice(dataset, "base", "nope")
    with pytest.raises(ValueError, match="no evaluation 'nope'"):
        slices.evaluate_slice(dataset, "nope", "listed")


def test_save_slice_operator_saves_the_current_view(dataset):
    view = dataset.match(F("base_fn") > 0)
    out = execute_operator(
        f"{PLUGIN}/save_slice",
        ctx={
            "dataset": dataset,
            "view": view,
            "params": {"name": "with misses", "description": "images with a miss"},
        },
    )
    assert out.error is None, out.error
    assert out.result == {"name": "with misses", "num_samples": len(view)}
    assert dataset.load_saved_view("with misses").values("id") == view.values("id")
    assert dataset.get_saved_view_info("with misses")["description"] == "images with a miss"


def test_comparison_deltas_and_per_object_changes(dataset):
    run = compare_runs(dataset, "base", "strict")
    a, b = slices.load_run(dataset, "base").result, slices.load_run(dataset, "strict").result
    for name, sides in run.comparison.classes.items():
        assert sides["delta"]["AP50"] == pytest.approx(b.classes[name].AP50 - a.classes[name].AP50)
        assert sides["delta"]["tp"] == b.classes[name].tp - a.classes[name].tp
    # At IoU 0.75 some objects found at 0.5 are lost, none is newly found.
    total = {
        c: sum(counts[c] for counts in run.changes.counts.values())
        for c in run.changes.counts["car"]
    }
    assert total["regressed"] > 0 and total["fixed"] == 0
    for name, counts in run.changes.counts.items():
        lost = dataset.filter_labels(
            "ground_truth",
            (F("label") == name)
            & (F("base_outcome") == "tp")
            & F("strict_outcome").is_in(["fn", "mispredicted"]),
        )
        assert counts["regressed"] == lost.count("ground_truth.detections")
        view = change_view(dataset, "base", "strict", "ground_truth", "regressed", name)
        assert view.count("ground_truth.detections") == counts["regressed"]
        # the old model's box that found each lost object is shown with it
        assert view.count("predictions.detections") == counts["regressed"]
    table = slices.load_run(dataset, "base").table()
    assert np.all(np.isin(table.outcomes.gt_outcome[run.changes.change == "regressed"], Outcome.TP))


def test_comparison_on_a_slice_counts_only_its_objects(dataset):
    view = dataset.filter_labels("ground_truth", F("label") == "car")
    run = compare_runs(dataset, "base", "strict", view, scope="cars")
    assert run.scope == "cars"
    assert all(sum(c.values()) == 0 for name, c in run.changes.counts.items() if name != "car")
    assert sum(run.changes.counts["car"].values()) == _non_crowd(view)


def test_cli_slices_and_compare(dataset, tmp_path):
    slices.save_slice(dataset, "cli slice", dataset.limit(12), overwrite=True)
    out = tmp_path / "slice.json"
    run = run_cli(
        "slices",
        "evaluate",
        "--dataset",
        dataset.name,
        "--eval-key",
        "base",
        "--slice",
        "cli slice",
        "--output",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    expected = slices.evaluate_slice(dataset, "base", "cli slice").to_dict()
    assert doc == json.loads(json.dumps(expected))
    assert set(doc) == {"stats", "classes", "confusion", "params"}

    listing = run_cli("slices", "list", "--dataset", dataset.name, "--eval-key", "base")
    assert listing.returncode == 0, listing.stderr
    assert "cli slice" in listing.stdout and "AP" in listing.stdout

    compared = run_cli(
        "compare",
        "--dataset",
        dataset.name,
        "--eval-keys",
        "base",
        "strict",
        "--slice",
        "cli slice",
    )
    assert compared.returncode == 0, compared.stderr
    doc = json.loads(compared.stdout)
    assert [s["scope"] for s in doc["scopes"]] == ["whole run", "cli slice"]
    assert doc["scopes"][0]["classes"]["car"]["delta"]["tp"] == (
        doc["scopes"][0]["classes"]["car"]["b"]["tp"]
        - doc["scopes"][0]["classes"]["car"]["a"]["tp"]
    )
    table = run_cli(
        "compare", "--dataset", dataset.name, "--eval-keys", "base", "strict", "--format", "table"
    )
    assert table.returncode == 0 and "regressed" in table.stdout

    listed = tmp_path / "samples.txt"
    paths = dataset.limit(5).values("filepath")
    listed.write_text("\n".join([dataset.first().id, *paths[1:]]) + "\n")
    saved = run_cli(
        "slices",
        "save",
        "--dataset",
        dataset.name,
        "--slice",
        "from cli",
        "--samples",
        str(listed),
        "--description",
        "five",
    )
    assert saved.returncode == 0, saved.stderr
    dataset.reload()  # saved by another process
    assert dataset.load_saved_view("from cli").values("filepath") == paths
    listed.write_text("/nowhere.jpg\n")
    unknown = run_cli(
        "slices", "save", "--dataset", dataset.name, "--slice", "x", "--samples", str(listed)
    )
    assert unknown.returncode == 2 and f"{listed}:1:" in unknown.stderr

    bad = run_cli(
        "slices", "evaluate", "--dataset", dataset.name, "--eval-key", "base", "--slice", "missing"
    )
    assert bad.returncode == 2 and "no slice 'missing'" in bad.stderr
    assert "Traceback" not in bad.stderr
