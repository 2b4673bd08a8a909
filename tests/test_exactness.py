"""Numbers computed inside FiftyOne equal pycocotools' on the user's source files.

FiftyOne stores boxes relative to the image size; reading them back must give the pixel
values the files held, or boxes of exactly 32 x 32 leave COCO's ``small`` range and IoUs of
exactly 0.75 fail that threshold. The data here is built to sit on those edges: integer
boxes on non-square images, areas of exactly 32**2 and 96**2, IoUs of exactly 0.5, 0.75 and
0.95, equal scores.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from helpers import run_pycocotools

from detection_debugger.formats.relative_boxes import pixel_boxes, recover_decimals, relative_box

SIZES = [(500, 333), (427, 640), (333, 500), (640, 427), (375, 500), (612, 612), (491, 367)]
NAMES = ("car", "person", "crosswalks")


# --- the conversion itself (pure) ---------------------------------------------------------


def test_the_float_noise_is_real_and_removed():
    assert 7 / 333 * 333 != 7  # what FiftyOne's relative boxes do to a pixel value
    assert recover_decimals([7 / 333 * 333]).tolist() == [7.0]
    box = relative_box((29, 7, 61, 39), 333, 333)
    assert pixel_boxes([box], [(333, 333)]).tolist() == [[29.0, 7.0, 32.0, 32.0]]


@pytest.mark.parametrize("places", [0, 1, 2, 3, 6])
def test_values_written_with_up_to_six_decimals_come_back_exactly(places):
    rng = np.random.default_rng(places)
    sizes = rng.integers(17, 4000, size=(20000, 2)).astype(float)
    x1 = np.round(rng.uniform(0, 1, 20000) * sizes[:, 0] * 0.5, places)
    w = np.round(rng.uniform(0, 1, 20000) * sizes[:, 0] * 0.5, places)
    y1 = np.round(rng.uniform(0, 1, 20000) * sizes[:, 1] * 0.5, places)
    h = np.round(rng.uniform(0, 1, 20000) * sizes[:, 1] * 0.5, places)
    relative = [
        relative_box((a, b, a + c, b + d), W, H) for a, b, c, d, (W, H) in zip(x1, y1, w, h, sizes)
    ]
    back = pixel_boxes(relative, sizes)
    assert np.array_equal(back, np.stack([x1, y1, w, h], axis=1))


def test_values_with_more_decimals_stay_as_computed():
    values = np.array([12.3456789, 102.39999999, 1 / 3 * 640])
    assert np.array_equal(recover_decimals(values), values)
    assert recover_decimals([np.nan, np.inf]).tolist()[1] == np.inf


# --- through FiftyOne -------------------------------------------------------------------


def _edge_cases() -> tuple[list, list, list]:
    """Images, ground truth and predictions exactly on the thresholds (pixel boxes)."""
    gt, pred = [], []
    # areas on the inclusive range limits: 32 x 32 is small, 96 x 96 medium
    gt += [(0, 0, [58, 77, 32, 32]), (0, 0, [113, 151, 96, 96]), (0, 1, [301, 29, 16, 64])]
    pred += [(0, 0, [58, 77, 32, 32], 0.9), (0, 0, [113, 151, 96, 96], 0.8)]
    pred += [(0, 1, [301, 29, 16, 64], 0.7)]
    # IoU exactly 0.5, 0.75 and 0.95 (pycocotools' first, sixth and last threshold)
    gt += [(1, 0, [58, 101, 20, 10]), (1, 1, [173, 33, 40, 10]), (1, 2, [61, 300, 100, 10])]
    pred += [(1, 0, [58, 101, 10, 10], 0.6), (1, 1, [173, 33, 30, 10], 0.6)]
    pred += [(1, 2, [61, 300, 95, 10], 0.6)]
    # the same on a wide image, with equal scores across classes
    gt += [(3, 2, [77, 58, 64, 32]), (3, 0, [33, 201, 60, 20])]
    pred += [(3, 2, [77, 58, 48, 32], 0.5), (3, 0, [33, 201, 45, 20], 0.5)]
    return gt, pred


def _random_cases(rng: np.random.Generator) -> tuple[list, list]:
    """Integer boxes and integer-jittered predictions: many exact IoU ties."""
    gt, pred = [], []
    for image, (width, height) in enumerate(SIZES):
        for _ in range(int(rng.integers(3, 12))):
            w, h = (int(v) for v in rng.integers(4, 110, size=2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            label = int(rng.integers(0, len(NAMES)))
            gt.append((image, label, [x, y, w, h]))
            for _ in range(int(rng.integers(0, 3))):
                dx, dy, dw, dh = (int(v) for v in rng.integers(-4, 5, size=4))
                guess = label if rng.random() < 0.85 else int(rng.integers(0, len(NAMES)))
                box = [x + dx, y + dy, max(1, w + dw), max(1, h + dh)]
                pred.append((image, guess, box, round(float(rng.choice([0.3, 0.5, 0.9])), 2)))
        for _ in range(int(rng.integers(0, 4))):  # ghosts
            w, h = (int(v) for v in rng.integers(4, 60, size=2))
            box = [int(rng.integers(0, width - w)), int(rng.integers(0, height - h)), w, h]
            pred.append((image, int(rng.integers(0, len(NAMES))), box, 0.4))
    return gt, pred


def _coco_files(folder, seed: int):
    """COCO ground truth and two result sets (models a and b) of the edge and random cases."""
    from PIL import Image

    images_dir = folder / "images"
    images_dir.mkdir(parents=True)
    images = []
    for i, (width, height) in enumerate(SIZES):
        name = f"img_{i:03d}.jpg"
        Image.new("RGB", (width, height), (90, 90, 90)).save(images_dir / name)
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
    edge_gt, edge_pred = _edge_cases()
    rng = np.random.default_rng(seed)
    more_gt, pred_a = _random_cases(rng)
    gt = {
        "images": images,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)],
        "annotations": [
            {
                "id": j + 1,
                "image_id": image + 1,
                "category_id": label + 1,
                "bbox": box,
                "area": box[2] * box[3],
                "iscrowd": 0,
            }
            for j, (image, label, box) in enumerate(edge_gt + more_gt)
        ],
    }

    def results(predictions):
        return [
            {"image_id": image + 1, "category_id": label + 1, "bbox": box, "score": score}
            for image, label, box, score in predictions
        ]

    _, pred_b = _random_cases(np.random.default_rng(seed))  # same GT, b's own predictions
    shift = np.random.default_rng(seed + 1)
    pred_b = [(i, k, [b[0] + int(shift.integers(-2, 3)), *b[1:]], s) for i, k, b, s in pred_b]
    paths = {"images": images_dir, "gt": folder / "gt.json"}
    paths["gt"].write_text(json.dumps(gt))
    for model, predictions in (("a", edge_pred + pred_a), ("b", edge_pred + pred_b)):
        paths[model] = folder / f"results_{model}.json"
        paths[model].write_text(json.dumps(results(predictions)))
    return gt, json.loads(paths["a"].read_text()), json.loads(paths["b"].read_text()), paths


def _assert_equal_stats(ours: dict, evaluator) -> None:
    got = np.array([-1.0 if v is None else v for v in ours.values()])
    np.testing.assert_allclose(got, evaluator.stats, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    import fiftyone as fo
    from fiftyone.operators import execute_operator

    from detection_debugger.cli.main import main

    folder = tmp_path_factory.mktemp("exact")
    gt, results_a, results_b, paths = _coco_files(folder, seed=3)
    name = f"exact-{uuid.uuid4().hex[:8]}"
    common = ["import", "--dataset", name, "--images", str(paths["images"])]
    gt_args = ["--gt", str(paths["gt"]), "--gt-format", "coco"]
    for model in ("a", "b"):
        pred = ["--pred", str(paths[model]), "--pred-format", "coco", "--pred-field", model]
        assert main(common + gt_args + pred) == 0
        gt_args = ["--images-json", str(paths["gt"])]  # second run: predictions only
    dataset = fo.load_dataset(name)
    for model in ("a", "b"):
        result = execute_operator(
            "@datacentric/detection-debugger/evaluate_detections",
            ctx={
                "dataset": dataset,
                "params": {
                    "gt_field": "ground_truth",
                    "pred_field": model,
                    "eval_key": f"eval_{model}",
                },
            },
        )
        assert result.error is None, result.error
    yield {"dataset": dataset, "gt": gt, "a": results_a, "b": results_b}
    dataset.delete()


@pytest.mark.fiftyone
@pytest.mark.parametrize("model", ["a", "b"])
def test_operator_run_equals_pycocotools_on_the_source_files(imported, model):
    from detection_debugger.datasets import slices

    result = slices.evaluate_slice(imported["dataset"], f"eval_{model}")
    evaluator = run_pycocotools(imported["gt"], imported[model])
    _assert_equal_stats(result.stats, evaluator)
    precision = evaluator.eval["precision"][:, :, :, 0, 2]  # (T, R, K) area all, 100 dets
    for k, name in enumerate(NAMES):
        p = precision[:, :, k]
        expected = float(np.mean(p[p > -1])) if (p > -1).any() else None
        assert result.classes[name].AP == pytest.approx(expected, abs=1e-9), name


@pytest.mark.fiftyone
def test_slice_equals_pycocotools_on_the_slice_images(imported):
    from detection_debugger.datasets import slices

    dataset = imported["dataset"]
    chosen = sorted(dataset.values("filepath"))[:4]  # the edge-case images and one more
    view = dataset.select_by("filepath", chosen)
    slices.save_slice(dataset, "edge images", view, overwrite=True)
    result = slices.evaluate_slice(dataset, "eval_a", "edge images")
    ids = [i + 1 for i in range(4)]
    _assert_equal_stats(result.stats, run_pycocotools(imported["gt"], imported["a"], ids))


@pytest.mark.fiftyone
def test_model_comparison_equals_the_difference_of_pycocotools(imported):
    from detection_debugger.datasets.comparison import compare_runs

    stats = compare_runs(imported["dataset"], "eval_a", "eval_b").comparison.stats
    a = run_pycocotools(imported["gt"], imported["a"])
    b = run_pycocotools(imported["gt"], imported["b"])
    _assert_equal_stats(stats["a"], a)
    _assert_equal_stats(stats["b"], b)
    delta = np.array([v for v in stats["delta"].values()], dtype=float)
    np.testing.assert_allclose(delta, b.stats - a.stats, rtol=0, atol=1e-9)
