"""Slice discovery on a real dataset: descriptors stored and cached as fields, a low-contrast
failure found from the pixels, the hypothesis's view re-evaluated to the same AP, excluded
fields left out, the CLI (table, JSON, --save) and the operator."""

from __future__ import annotations

import json
import uuid

import fiftyone as fo
import numpy as np
import pytest
from fiftyone.operators import execute_operator
from helpers import FAINT_SIGNS_KEY as KEY
from helpers import faint_signs_dataset, run_cli

from detection_debugger.datasets.descriptors import (
    ensure_descriptors,
    exclude_from_discovery,
    run_descriptors,
)
from detection_debugger.datasets.discovery import (
    discover_run,
    discover_slices,
    hypothesis_view,
    save_hypothesis,
)
from detection_debugger.datasets.runs import load_run
from detection_debugger.datasets.slices import evaluate_view

pytestmark = pytest.mark.fiftyone

PLUGIN = "@datacentric/detection-debugger"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    ds = faint_signs_dataset(
        tmp_path_factory.mktemp("discovery"),
        f"discovery-{uuid.uuid4().hex[:8]}",
        weather=lambda i: ["sun", "rain"][i % 2],
        answer=lambda i: i % 3,
    )
    yield ds
    ds.delete()


def test_descriptors_are_stored_once(dataset):
    assert ensure_descriptors(dataset, ["predictions"], "ground_truth") is True
    assert dataset.has_field("ground_truth.detections.dd_contrast")
    assert dataset.has_field("predictions.detections.dd_size")
    assert dataset.count("dd_image_brightness") == len(dataset)
    assert dataset.count("ground_truth.detections.dd_contrast") == dataset.count(
        "ground_truth.detections"
    )
    assert ensure_descriptors(dataset, ["predictions"], "ground_truth") is False


def test_the_faint_signs_are_found_from_the_pixels_and_the_view_gives_the_same_ap(dataset):
    rows = discover_slices(dataset, KEY, "sign", top=5)
    assert rows, "no hypothesis"
    top = rows[0]
    assert set(top) >= {"name", "description", "level", "num_gt", "AP", "delta_AP"}
    assert top["level"] == "objects" and top["class"] == "sign"
    assert top["conditions"][0]["descriptor"] in ("contrast", "brightness", "sharpness")
    assert top["AP"] < top["baseline_AP"] - 0.1
    results = load_run(dataset, KEY)
    for row in rows:
        result, selection = evaluate_view(results, hypothesis_view(dataset, KEY, row))
        assert result.classes["sign"].AP == pytest.approx(row["slice_AP"], abs=1e-9), row["name"]
        assert result.classes["sign"].num_gt == row["num_gt"]
        if row["level"] == "images":
            assert row["slice_AP"] == row["AP"]
        else:  # normalized to the class's objects: as if all were like these
            assert row["AP"] >= row["slice_AP"] - 1e-12


def test_excluded_fields_are_not_searched(dataset):
    names = {d.name for d in run_descriptors(dataset, load_run(dataset, KEY))}
    assert {"weather", "answer", "contrast", "image_brightness"} <= names
    assert not any(n.startswith(KEY) for n in names)  # the run's own fields
    exclude_from_discovery(dataset, ["answer"])
    names = {d.name for d in run_descriptors(dataset, load_run(dataset, KEY))}
    assert "answer" not in names and "weather" in names


def test_save_hypothesis_saves_a_slice(dataset):
    found = discover_run(dataset, KEY, "sign")
    row = found.to_dicts()[0]
    name = save_hypothesis(dataset, KEY, row, name="faint signs", overwrite=True)
    assert dataset.has_saved_view(name)
    assert dataset.get_saved_view_info(name)["description"] == row["description"]


def test_cli_discover_prints_writes_json_and_saves(dataset, tmp_path):
    out = tmp_path / "found.json"
    args = ["slices", "discover", "--dataset", dataset.name, "--eval-key", KEY]
    run = run_cli(*args, "--class", "sign", "--top", "3", "--save", "--output", str(out))
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())
    assert 1 <= len(rows) <= 3
    dataset.reload()  # the slices were saved by another process
    for row in rows:
        assert set(row) >= {
            "name",
            "description",
            "level",
            "num_gt",
            "AP",
            "delta_AP",
            "baseline_AP",
            "score",
        }
        assert row["level"] in ("images", "objects")
        assert dataset.has_saved_view(row["name"])
    assert rows[0]["name"] in run.stdout and "Bonferroni" in run.stdout
    bad = run_cli(*args, "--class", "tram")
    assert bad.returncode != 0 and "tram" in bad.stderr


def test_operator_discovers_and_shows_the_first_hypothesis(dataset):
    out = execute_operator(
        f"{PLUGIN}/discover_slices",
        ctx={"dataset": dataset, "params": {"eval_key": KEY, "cls": "sign", "top": 3}},
    )
    assert out.error is None, out.error
    rows = out.result["hypotheses"]
    assert rows and rows[0]["class"] == "sign"
    requests = out.executor._requests
    set_view = [r for r in requests if r.operator_uri == "set_view"]
    assert set_view
    view = fo.DatasetView._build(dataset, set_view[0].params["view"])
    expected = hypothesis_view(dataset, KEY, rows[0])
    assert view.values("id") == expected.values("id")


def test_clip_clusters_of_the_objects_are_a_descriptor(dataset):
    import fiftyone.brain as fob

    from detection_debugger.datasets.descriptors import compute_clip_clusters

    ensure_descriptors(dataset, ["predictions"], "ground_truth")
    rng = np.random.default_rng(0)
    ids, contrast = dataset.values(
        ["id", "ground_truth.detections.dd_contrast"]
    )  # two groups of "embeddings": faint and bright objects
    embeddings = {
        sid: np.array([np.eye(4)[int(c < 0.5)] + rng.normal(0, 0.05, 4) for c in values])
        for sid, values in zip(ids, contrast)
    }
    fob.compute_similarity(
        dataset,
        patches_field="ground_truth",
        embeddings=embeddings,
        brain_key="clip_ground_truth",
        backend="sklearn",
    )
    assert compute_clip_clusters(dataset, "ground_truth", "predictions", k=2)
    assert dataset.count("ground_truth.detections.dd_clip_cluster") == dataset.count(
        "ground_truth.detections"
    )
    names = {d.name for d in run_descriptors(dataset, load_run(dataset, KEY))}
    assert "clip_cluster" in names
    faint = [c < 0.5 for v in contrast for c in v]
    clusters = dataset.values("ground_truth.detections.dd_clip_cluster", unwind=True)
    assert len(set(zip(faint, clusters))) == 2  # one cluster per group


def test_a_range_leaves_out_samples_without_a_value(dataset):
    dataset.set_values("speed", [None if i < 10 else float(i) for i in range(len(dataset))])
    condition = {"descriptor": "speed", "field": "speed", "level": "images", "value": None}
    row = {"class": "sign", "conditions": [{**condition, "low": None, "high": 30.0}]}
    view = hypothesis_view(dataset, KEY, row)
    assert sorted(view.values("speed")) == [float(i) for i in range(10, 30)]


def test_the_descriptors_kept_in_memory_follow_the_dataset(dataset):
    first = discover_run(dataset, KEY, "sign")
    dataset.set_values("lane", [i % 4 for i in range(len(dataset))])
    second = discover_run(dataset, KEY, "sign")
    assert "lane" not in first.descriptors and "lane" in second.descriptors
