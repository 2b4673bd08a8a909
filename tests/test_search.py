"""CLIP embeddings, similarity indexes and search, with a tiny random-weight open_clip model.

The model (``tiny-test-clip``: embed_dim 64, 2-layer ViT on 64x64 inputs) is registered
with ``open_clip.add_model_config``; its weights are random, drawn from a fixed seed, and
asked for explicitly (``random_weights_seed``). For the paths that need weights that can
be reloaded by name (the App's text search, the operators), the same weights are saved
as a local checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import fiftyone as fo
import numpy as np
import open_clip
import pytest
from fiftyone import ViewField as F
from PIL import Image, ImageDraw

from detection_debugger.search.clip_spec import ClipSpec, WeightsNotFoundError, check_weights
from detection_debugger.search.embeddings import (
    crop_box,
    embed_images,
    embed_patches,
    load_model,
)
from detection_debugger.search.index import build_index, ensure_index, save_slice, search

pytestmark = pytest.mark.fiftyone

TINY = "tiny-test-clip"
PLUGIN = "@datacentric/detection-debugger"
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 220), (20, 20, 20), (200, 200, 0)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Registers the tiny config; returns a local checkpoint of the seed-0 weights."""
    folder = tmp_path_factory.mktemp("clip")
    config = {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    }
    (folder / f"{TINY}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY}.json")
    import torch

    model = load_model(ClipSpec(model=TINY, random_weights_seed=0, device="cpu"))
    torch.save(model._model.state_dict(), folder / "tiny.pt")
    return folder / "tiny.pt"


@pytest.fixture(scope="module")
def model(tiny):
    return load_model(ClipSpec(model=TINY, random_weights_seed=0, device="cpu", batch_size=4))


def _scene(path, i: int) -> list:
    """A 96x64 image with two coloured rectangles; returns their relative boxes."""
    image = Image.new("RGB", (96, 64), COLORS[i % len(COLORS)])
    draw = ImageDraw.Draw(image)
    boxes = []
    for j, (x, y, w, h) in enumerate([(8, 8, 30, 20), (50, 30, 36, 26)]):
        color = COLORS[(i + 2 * j + 1) % len(COLORS)]
        for stripe in range(x, x + w, 4 + i % 3):  # zebra-like stripes, varying pitch
            draw.rectangle([stripe, y, stripe + 1, y + h], fill=color)
        boxes.append([x / 96, y / 64, w / 96, h / 64])
    draw.ellipse([4 + 7 * i, 44, 14 + 7 * i, 54], fill=COLORS[(i + 3) % len(COLORS)])  # unique
    image.save(path)
    return boxes


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTION_DEBUGGER_EMBEDDINGS_DIR", str(tmp_path / "cache"))
    ds = fo.Dataset(f"search-{uuid.uuid4().hex[:8]}")
    samples = []
    for i in range(10):
        path = tmp_path / f"img{i}.png"
        boxes = _scene(path, i)
        gt = [
            fo.Detection(label="crosswalk" if j == 0 else "car", bounding_box=b)
            for j, b in enumerate(boxes)
        ]
        pred = [fo.Detection(label="crosswalk", bounding_box=boxes[0], confidence=0.9)]
        samples.append(
            fo.Sample(
                filepath=str(path),
                ground_truth=fo.Detections(detections=gt),
                predictions=fo.Detections(detections=pred),
            )
        )
    ds.add_samples(samples)
    yield ds
    ds.delete()


def _cosine(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``vectors`` ``[N, D]`` with ``query`` ``[D]``."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return v @ (query / np.linalg.norm(query))


def assert_ranked(hit_ids: list, ids: np.ndarray, scores: np.ndarray, k: int) -> None:
    """The hits are the ``k`` best of ``ids`` by ``scores``, best first (ties in any order)."""
    by_id = dict(zip(ids.tolist(), scores.tolist()))
    assert len(hit_ids) == min(k, len(ids)) and len(set(hit_ids)) == len(hit_ids)
    got = [by_id[i] for i in hit_ids]
    np.testing.assert_allclose(got, np.sort(scores)[::-1][:k], atol=1e-5)


# FiftyOne's sklearn backend ranks by cosine similarity after centring the embeddings: on
# the mean of the searched items for a text/vector query (the query itself is not
# centred), on the mean of the whole index for a query by ids (the query rows too).


# --- embeddings --------------------------------------------------------------------------


def test_crop_box_adds_the_margin_and_clips():
    image = Image.new("RGB", (100, 50))
    assert crop_box(image, [0.2, 0.2, 0.5, 0.4], margin=0.1).size == (60, 24)
    assert crop_box(image, [0.0, 0.0, 0.1, 0.1], margin=0.5).size == (15, 8)
    assert crop_box(image, [0.99, 0.99, 0.0, 0.0], margin=0.0).size == (1, 1)


def test_embeddings_have_the_right_shape_and_are_deterministic(dataset, model, tmp_path):
    images = embed_images(dataset, model, cache_dir=tmp_path / "a")
    assert images.vectors.shape == (10, 64) and images.vectors.dtype == np.float32
    assert list(images.sample_ids) == dataset.values("id") and images.label_ids is None
    again = load_model(ClipSpec(model=TINY, random_weights_seed=0, device="cpu"))
    fresh = embed_images(dataset, again, cache_dir=tmp_path / "b")
    assert fresh.computed == 10
    np.testing.assert_array_equal(images.vectors, fresh.vectors)
    patches = embed_patches(dataset, model, "ground_truth", cache_dir=tmp_path / "a")
    assert patches.vectors.shape == (20, 64)
    assert sorted(patches.label_ids) == sorted(
        dataset.values("ground_truth.detections.id", unwind=True)
    )
    assert model.embed_prompts(["a crosswalk", "a car"]).shape == (2, 64)
    # a crop is embedded like the same crop given directly
    first = dataset.first()
    det = first.ground_truth.detections[0]
    row = list(patches.label_ids).index(det.id)
    crop = crop_box(Image.open(first.filepath).convert("RGB"), det.bounding_box, 0.1)
    np.testing.assert_allclose(model.embed_all([crop])[0], patches.vectors[row], atol=1e-5)


def test_cache_skips_unchanged_images_and_objects(dataset, model, tmp_path):
    first = embed_images(dataset, model)
    assert first.computed == 10
    second = embed_images(dataset, model)
    assert second.computed == 0
    np.testing.assert_array_equal(first.vectors, second.vectors)
    sample = dataset.first()
    _scene(sample.filepath, 3)  # same path, new content and mtime
    os.utime(sample.filepath, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = embed_images(dataset, model)
    assert third.computed == 1
    assert not np.allclose(third.vectors[0], first.vectors[0])

    objects = embed_patches(dataset, model, "predictions")
    assert objects.computed == 10
    sample = dataset.last()
    sample.predictions.detections[0].bounding_box = [0.1, 0.1, 0.3, 0.3]
    sample.save()
    assert embed_patches(dataset, model, "predictions").computed == 1
    assert embed_patches(dataset, model, "predictions", margin=0.2).computed == 10
    # another model (other weights) has its own cache
    other = load_model(ClipSpec(model=TINY, random_weights_seed=1, device="cpu"))
    assert embed_images(dataset, other).computed == 10


# --- search ------------------------------------------------------------------------------


def test_text_ranking_equals_numpy_cosine(dataset, model):
    index, table = build_index(dataset, model)
    assert index.key == "clip_images" and index.total_index_size == 10
    query = "a faded zebra crosswalk"
    hits = search(dataset, query, k=10, model=model)
    vectors = table.vectors
    scores = _cosine(vectors - vectors.mean(axis=0), model.embed_prompts([query])[0])
    assert len(set(np.round(scores, 5))) == 10  # distinct images: the order is unique
    assert hits.values("id") == list(table.sample_ids[np.argsort(-scores)])
    top3 = search(dataset, query, k=3, model=model)
    assert top3.values("id") == hits.values("id")[:3]


def test_objects_more_like_this_and_view_restriction(dataset, model):
    _, table = build_index(dataset, model, patches_field="ground_truth")
    centred = table.vectors - table.vectors.mean(axis=0)
    example = table.label_ids[0]
    by_example = _cosine(centred, centred[0])
    hits = search(dataset, [example], k=20, patches_field="ground_truth")
    assert hits._is_patches and hits.values("id")[0] == example
    assert_ranked(hits.values("id"), table.label_ids, by_example, 20)

    crosswalks = dataset.filter_labels("ground_truth", F("label") == "crosswalk")
    keep = np.isin(table.label_ids, crosswalks.values("ground_truth.detections.id", unwind=True))
    hits = search(crosswalks, [example], k=4, patches_field="ground_truth")
    assert len(hits) == 4 and set(hits.values("ground_truth.label")) == {"crosswalk"}
    assert_ranked(hits.values("id"), table.label_ids[keep], by_example[keep], 4)

    query = model.embed_prompts(["a faded crosswalk"])[0]
    inside = table.vectors[keep]
    hits = search(crosswalks, "a faded crosswalk", k=6, patches_field="ground_truth", model=model)
    assert_ranked(
        hits.values("id"), table.label_ids[keep], _cosine(inside - inside.mean(0), query), 6
    )

    images = search(crosswalks, [example], k=3, patches_field="ground_truth", objects=False)
    assert not images._is_patches and images.count("ground_truth.detections") == 3

    with pytest.raises(ValueError, match="no similarity index 'clip_predictions'"):
        search(dataset, "x", patches_field="predictions", model=model)


def test_hits_saved_as_slices_of_objects_or_images(dataset, model):
    build_index(dataset, model, patches_field="ground_truth")
    hits = search(dataset, "a crosswalk", k=5, patches_field="ground_truth", model=model)
    saved = save_slice(hits, "clip objects", description="test", objects=True)
    assert saved._is_patches and saved.values("id") == hits.values("id")
    assert dataset.get_saved_view_info("clip objects")["description"] == "test"
    images = save_slice(hits, "clip images", objects=False)
    ids = list(dict.fromkeys(hits.values("sample_id")))
    assert images.values("id") == ids
    # the image slice keeps every label (ready for re-evaluation)
    assert images.count("ground_truth.detections") == 2 * len(ids)
    assert dataset.load_saved_view("clip images").values("id") == ids


def test_index_is_updated_not_rebuilt_and_forgets_deleted_items(dataset, tiny):
    model = load_model(ClipSpec(model=TINY, checkpoint=str(tiny), device="cpu"))
    first = dataset.limit(6)
    index, table = build_index(first, model)
    assert index.total_index_size == 6 and table.computed == 6
    index = ensure_index(dataset, model)  # 4 missing: embeds only those
    assert index.total_index_size == 10
    dataset.delete_samples(dataset.first())
    index, table = build_index(dataset, model)
    assert index.total_index_size == 9 and table.computed == 0


def test_checkpoint_index_answers_the_apps_text_query(dataset, tiny):
    """With reloadable weights, FiftyOne itself (as the App does) embeds the prompt."""
    model = load_model(ClipSpec(model=TINY, checkpoint=str(tiny), device="cpu"))
    build_index(dataset, model, patches_field="ground_truth")
    assert dataset.get_brain_info("clip_ground_truth").config.model_kwargs == {
        "clip_model": TINY,
        "pretrained": str(tiny),
    }
    patches = dataset.to_patches("ground_truth")
    app = patches.sort_by_similarity("a crosswalk", k=5, brain_key="clip_ground_truth")
    ours = search(dataset, "a crosswalk", k=5, patches_field="ground_truth")  # index's model
    assert app.values("id") == ours.values("id")
    with_model = search(dataset, "a crosswalk", k=5, patches_field="ground_truth", model=model)
    assert with_model.values("id") == ours.values("id")


def test_missing_weights_fail_fast_with_the_way_out(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="--checkpoint") as error:
        load_model(ClipSpec())  # ViT-B-32 / laion2b_s34b_b79k, not cached
    assert time.perf_counter() - start < 3
    assert "laion2b_s34b_b79k" in str(error.value)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        check_weights(ClipSpec(checkpoint=str(tmp_path / "nope.bin")))
    with pytest.raises(WeightsNotFoundError, match="never used unless"):
        check_weights(ClipSpec(pretrained=None))  # no silent random weights
    with pytest.raises(WeightsNotFoundError, match="not a pretrained tag"):
        check_weights(ClipSpec(pretrained="no-such-tag"))


# --- operators and CLI -------------------------------------------------------------------


def test_operators_embed_then_search_and_save(dataset, tiny):
    from fiftyone.operators import execute_operator

    params = {
        "target": "ground_truth",
        "model": TINY,
        "checkpoint": {"absolute_path": str(tiny)},
        "device": "cpu",
    }
    result = execute_operator(
        f"{PLUGIN}/compute_embeddings", ctx={"dataset": dataset, "params": params}
    )
    assert result.error is None, result.error
    assert result.result == {"brain_key": "clip_ground_truth", "count": 20, "computed": 20}
    again = execute_operator(
        f"{PLUGIN}/compute_embeddings", ctx={"dataset": dataset, "params": params}
    )
    assert again.result["computed"] == 0

    view = dataset.filter_labels("ground_truth", F("label") == "crosswalk")
    result = execute_operator(
        f"{PLUGIN}/search",
        ctx={
            "dataset": dataset,
            "view": view,
            "params": {
                "target": "ground_truth",
                "mode": "text",
                "query": "faded crosswalk",
                "k": 3,
                "slice_name": "faded hits",
                "slice_objects": True,
            },
        },
    )
    assert result.error is None, result.error
    assert result.result["count"] == 3 and result.result["slice"] == "faded hits"
    saved = dataset.load_saved_view("faded hits")
    assert saved.values("id") == result.result["ids"]
    assert set(saved.values("ground_truth.label")) == {"crosswalk"}

    example = dataset.first().ground_truth.detections[1]
    result = execute_operator(
        f"{PLUGIN}/search",
        ctx={
            "dataset": dataset,
            "params": {"target": "ground_truth", "mode": "selected", "k": 2},
            "selected_labels": [
                {"label_id": example.id, "sample_id": dataset.first().id, "field": "ground_truth"}
            ],
        },
    )
    assert result.error is None, result.error
    assert result.result["ids"][0] == example.id


def test_cli_search_builds_the_index_and_saves_the_slice(dataset, tiny, capsys):
    import argparse

    from detection_debugger.cli.search import add_search_command

    parser = argparse.ArgumentParser()
    add_search_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "search",
            "--dataset",
            dataset.name,
            "--query",
            "faded crosswalk",
            "--objects",
            "ground_truth",
            "-k",
            "4",
            "--save-slice",
            "cli hits",
            "--model",
            TINY,
            "--checkpoint",
            str(tiny),
            "--device",
            "cpu",
        ]
    )
    assert args.run(args) == 0
    out = capsys.readouterr().out
    ranked = [line for line in out.splitlines() if re.match(r"\s*\d+  [0-9a-f]{24}  ", line)]
    assert len(ranked) == 4 and all(line.endswith(("crosswalk", "car")) for line in ranked)
    assert "saved 4 hits as slice 'cli hits'" in out
    assert len(dataset.load_saved_view("cli hits")) == 4
