"""``detection-debugger evaluate``, run as users run it: the installed console script."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli, run_pycocotools, stats_array

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco

CLASS_KEYS = {"AP", "AP50", "AP75", "AR100", "num_gt", "num_pred", "tp", "fn", "mispredicted", "fp"}
STAT_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    gt, results = make_coco(SyntheticConfig(num_images=80, num_classes=4, crowd_rate=0.05, seed=3))
    (folder / "gt.json").write_text(json.dumps(gt))
    (folder / "dets.json").write_text(json.dumps(results))
    return folder, gt, results


def test_evaluate_writes_the_documented_json(coco_files):
    folder, gt, results = coco_files
    run = run_cli("evaluate", "--gt", str(folder / "gt.json"), "--pred", str(folder / "dets.json"))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert list(out["stats"]) == STAT_KEYS
    assert set(out["classes"]) == {c["name"] for c in gt["categories"]}
    for metrics in out["classes"].values():
        assert CLASS_KEYS <= set(metrics)
    labels = out["confusion"]["labels"]
    assert labels == [c["name"] for c in gt["categories"]] + ["background"]
    matrix = np.array(out["confusion"]["matrix"])
    assert matrix.shape == (len(labels), len(labels))
    reference = run_pycocotools(gt, results)
    np.testing.assert_allclose(stats_array(out["stats"]), reference.stats, rtol=0, atol=1e-9)
    for k, metrics in enumerate(out["classes"].values()):
        assert metrics["tp"] == matrix[k, k]
        assert metrics["fn"] == matrix[k, -1]
        assert metrics["fp"] == matrix[-1, k]
        assert metrics["mispredicted"] == matrix[k, :-1].sum() - matrix[k, k]


def test_image_ids_and_output_file(coco_files, tmp_path):
    folder, gt, results = coco_files
    ids = [im["id"] for im in gt["images"]][::4]
    (tmp_path / "ids.txt").write_text("# a slice\n" + "\n".join(map(str, ids)) + "\n\n")
    out_path = tmp_path / "out.json"
    run = run_cli(
        "evaluate",
        "--gt",
        str(folder / "gt.json"),
        "--pred",
        str(folder / "dets.json"),
        "--image-ids",
        str(tmp_path / "ids.txt"),
        "--output",
        str(out_path),
        "--iou",
        "0.6",
        "--score-threshold",
        "0.2",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    out = json.loads(out_path.read_text())
    reference = run_pycocotools(gt, results, ids)
    np.testing.assert_allclose(stats_array(out["stats"]), reference.stats, rtol=0, atol=1e-9)
    assert out["params"] == {"iou": 0.6, "score_threshold": 0.2, "num_images": len(ids)}


def _write(path, text):
    path.write_text(text)
    return str(path)


GT_OK = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}], "annotations": []}


@pytest.mark.parametrize(
    "gt_text, pred_text, ids_text, expected",
    [
        pytest.param(None, "[]", None, "gt.json: file not found", id="missing-file"),
        pytest.param(
            '{"images": [\n  {"id": 1},\n  oops]}',
            "[]",
            None,
            "gt.json:3: invalid JSON",
            id="invalid-json",
        ),
        pytest.param(
            json.dumps(GT_OK),
            '[{"image_id": 2, "category_id": 1, "bbox": [0,0,1,1], "score": 1}]',
            None,
            "dets.json: detection 0: unknown image id 2",
            id="unknown-image",
        ),
        pytest.param(
            json.dumps(GT_OK),
            '[{"image_id": 1, "category_id": 9, "bbox": [0,0,1,1], "score": 1}]',
            None,
            "dets.json: detection 0: unknown category id 9",
            id="unknown-category",
        ),
        pytest.param(
            json.dumps(GT_OK),
            '[{"image_id": 1, "category_id": 1, "bbox": [0,0,-1,1], "score": 1}]',
            None,
            "dets.json: detection 0: bbox",
            id="negative-size",
        ),
        pytest.param(
            json.dumps({"images": []}),
            "[]",
            None,
            "gt.json: missing the 'annotations' list",
            id="not-coco",
        ),
        pytest.param(
            json.dumps(GT_OK),
            '{"a": 1}',
            None,
            "dets.json: expected a list of detections",
            id="results-not-a-list",
        ),
        pytest.param(
            json.dumps(GT_OK),
            "[]",
            "1\nabc\n",
            "ids.txt:2: not an integer image id",
            id="bad-image-id-line",
        ),
        pytest.param(
            json.dumps(GT_OK),
            "[]",
            "1\n7\n",
            "ids.txt: image id 7 is not in",
            id="unknown-image-id",
        ),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, gt_text, pred_text, ids_text, expected):
    gt = str(tmp_path / "gt.json") if gt_text is None else _write(tmp_path / "gt.json", gt_text)
    args = ["evaluate", "--gt", gt, "--pred", _write(tmp_path / "dets.json", pred_text)]
    if ids_text is not None:
        args += ["--image-ids", _write(tmp_path / "ids.txt", ids_text)]
    run = run_cli(*args)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert expected in lines[0]
    assert "Traceback" not in run.stderr


def test_bad_iou_is_a_usage_error(coco_files):
    folder, _, _ = coco_files
    run = run_cli(
        "evaluate",
        "--gt",
        str(folder / "gt.json"),
        "--pred",
        str(folder / "dets.json"),
        "--iou",
        "1.5",
    )
    assert run.returncode == 2
    assert "must be in (0, 1]" in run.stderr


def test_evaluate_adds_tide_pr_and_voc_sections_as_specified(coco_files, tmp_path):
    from detection_debugger.evaluation import (
        DetectionSet,
        MatchTable,
        operating_points,
        tide_errors,
        voc_ap,
    )

    folder, _, _ = coco_files
    gt, dets = folder / "gt.json", folder / "dets.json"
    names = [c["name"] for c in json.loads(gt.read_text())["categories"]]
    out = tmp_path / "out.json"
    run = run_cli(
        "evaluate",
        "--gt",
        str(gt),
        "--pred",
        str(dets),
        "--tide",
        "--pr",
        "--voc",
        "--class-iou",
        f"{names[0]}=0.7",
        "--output",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    document = json.loads(out.read_text())
    data = DetectionSet.from_coco(json.loads(gt.read_text()), json.loads(dets.read_text()))
    tide = document["tide"]
    assert set(tide) == {"main", "special", "classes"}
    assert set(tide["main"]) == {"Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"}
    assert set(tide["special"]) == {"FalsePos", "FalseNeg"}
    assert all(set(v) == set(tide["main"]) | set(tide["special"]) for v in tide["classes"].values())
    assert tide == json.loads(json.dumps(tide_errors(data).to_dict()))
    points = operating_points(MatchTable.build(data))
    for name, entry in document["pr"].items():
        assert set(entry) == {"best_f1", "curve"} and set(entry["curve"]) == {
            "score",
            "precision",
            "recall",
        }
        assert entry == json.loads(json.dumps(points[name].to_dict()))
    voc = document["voc"]
    assert set(voc) == {"iou", "classes", "mAP_all_point", "mAP_11_point"}
    assert voc["iou"][names[0]] == 0.7 and voc["iou"][names[1]] == 0.5
    expected = voc_ap(data, {names[0]: 0.7}, default_iou=0.5).to_dict()
    assert voc["mAP_all_point"] == pytest.approx(expected["mAP_all_point"], abs=1e-12)
    bad = run_cli("evaluate", "--gt", str(gt), "--pred", str(dets), "--class-iou", "nope=0.5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr


@pytest.mark.fiftyone
def test_evaluate_dataset_mode_stores_the_run_and_prints_the_file_modes_json(tmp_path):
    """import, then evaluate from the command line (the pipeline of the README)."""
    import uuid

    import fiftyone as fo

    from detection_debugger.demo.synthetic import write_files

    gt, results = make_coco(SyntheticConfig(num_images=12, num_classes=3, seed=8))
    paths = write_files(tmp_path, gt, results, gt_format="coco")
    name = f"cli-eval-{uuid.uuid4().hex[:8]}"
    imported = run_cli(
        "import",
        "--dataset",
        name,
        "--images",
        paths["images"],
        "--gt",
        paths["gt"],
        "--gt-format",
        "coco",
        "--pred",
        paths["pred"],
        "--pred-format",
        "tao",
    )
    assert imported.returncode == 0, imported.stderr
    try:
        run = run_cli("evaluate", "--dataset", name, "--pred-field", "predictions", "--tide")
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        assert out["params"]["eval_key"] == "eval_predictions" and "tide" in out
        reference = run_pycocotools(gt, results)
        np.testing.assert_allclose(stats_array(out["stats"]), reference.stats, atol=1e-9)
        dataset = fo.load_dataset(name)
        assert dataset.list_evaluations() == ["eval_predictions"]
        bad = run_cli("evaluate", "--dataset", name, "--pred-field", "nope")
        assert bad.returncode == 2 and "no field 'nope'" in bad.stderr
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
