"""Benchmark: CLIP embedding speed (ViT-B-32) and search latency at 10k / 100k vectors.

    .venv/bin/python bench/embeddings.py [--images 64] [--sizes 10000 100000]

1. Embedding: ``--images`` rendered 640x384 scenes with 4 boxes each, embedded with
   open_clip ViT-B-32 (random weights drawn with a seed: the same compute as the pretrained
   ones, which cannot be downloaded here) on this machine's CPU (or CUDA when present):
   images/s and patches/s, cold (nothing cached) and again from the cache.
2. Search: for each size, random 512-d vectors are indexed in a FiftyOne Brain similarity
   index (sklearn backend, cosine) over a dataset of that many samples; the latency of one
   top-50 vector query through ``search()`` (our path: load the index, restrict it to the
   view, query, build the ordered view) and through the index alone (``_kneighbors``), cold
   (first query: the backend builds its neighbour structure) and warm (median of 20),
   against a plain numpy brute force (rows normalised once; per query one matrix-vector
   product and ``argpartition``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed  # noqa: E402

K = 50


def _scenes(folder: Path, n: int, seed: int = 0):
    """``n`` 640x384 PNGs with 4 random filled boxes each; returns [(path, [[x, y, w, h]...])]."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 255, (384, 640, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        boxes = []
        for _ in range(4):
            w, h = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)
            x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            draw.rectangle([x * 640, y * 384, (x + w) * 640, (y + h) * 384], fill=color)
            boxes.append([x, y, w, h])
        path = folder / f"scene{i:04d}.png"
        image.save(path)
        out.append((str(path), boxes))
    return out


def bench_embedding(fo, folder: Path, n: int, batch_size: int) -> None:
    import torch

    from detection_debugger.search.clip_spec import ClipSpec
    from detection_debugger.search.embeddings import embed_images, embed_patches, load_model

    (folder / "images").mkdir()
    scenes = _scenes(folder / "images", n)
    dataset = fo.Dataset("bench-embeddings")
    dataset.add_samples(
        [
            fo.Sample(
                filepath=p,
                ground_truth=fo.Detections(
                    detections=[fo.Detection(label="thing", bounding_box=b) for b in boxes]
                ),
            )
            for p, boxes in scenes
        ]
    )
    spec = ClipSpec(model="ViT-B-32", random_weights_seed=0, batch_size=batch_size)
    model = load_model(spec)
    device = f"{model.device}" + (
        f", {torch.get_num_threads()} threads" if model.device.type == "cpu" else ""
    )
    print(f"ViT-B-32 on {device}, batch {batch_size}, {n} images of 640x384, 4 boxes each")
    cache = folder / "cache"
    embed_images(dataset.limit(2), model, cache_dir=folder / "warmup")  # first-call overheads
    t, table = timed(lambda: embed_images(dataset, model, cache_dir=cache))
    print(
        f"  images:  {len(table.vectors) / t:7.1f} images/s  ({t:.2f} s, {table.computed} computed)"
    )
    t2, table = timed(lambda: embed_images(dataset, model, cache_dir=cache))
    print(f"  images again, from the cache: {t2 * 1000:.0f} ms ({table.computed} computed)")
    t, table = timed(lambda: embed_patches(dataset, model, "ground_truth", cache_dir=cache))
    print(
        f"  patches: {len(table.vectors) / t:7.1f} patches/s ({t:.2f} s, {table.computed} computed)"
    )
    t2, table = timed(lambda: embed_patches(dataset, model, "ground_truth", cache_dir=cache))
    print(f"  patches again, from the cache: {t2 * 1000:.0f} ms ({table.computed} computed)")
    dataset.delete()


def bench_search(fo, size: int, dim: int = 512) -> None:
    import fiftyone.brain as fob

    from detection_debugger.search.index import search

    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    query = rng.standard_normal(dim).astype(np.float32)
    t_make = time.perf_counter()
    dataset = fo.Dataset(f"bench-search-{size}")
    dataset.add_samples(
        [fo.Sample(filepath=f"/nowhere/{i}.jpg") for i in range(size)], progress=False
    )
    ids = np.array(dataset.values("id"))
    index = fob.compute_similarity(
        dataset, embeddings=False, brain_key="clip_images", backend="sklearn", progress=False
    )
    index.add_to_index(vectors, ids)
    index.save()
    t_make = time.perf_counter() - t_make

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # once, like an index

    def brute():
        scores = unit @ (query / np.linalg.norm(query))
        top = np.argpartition(-scores, K)[:K]
        return ids[top[np.argsort(-scores[top])]]

    def ours():
        return search(dataset, query, k=K).values("id")

    loaded = dataset.load_brain_results("clip_images")
    t_index_cold, _ = timed(lambda: loaded._kneighbors(query=query, k=K))
    t_index, _ = timed(lambda: loaded._kneighbors(query=query, k=K), repeat=20)
    dataset.clear_cache()  # search() loads the index from the database
    t_ours_cold, _ = timed(ours)
    t_ours, hits = timed(ours, repeat=20)
    t_brute, _ = timed(brute, repeat=20)
    print(f"{size:>7,} vectors x {dim} (dataset + index made in {t_make:.1f} s)")
    print(f"  numpy brute force:               {t_brute * 1000:8.2f} ms")
    print(
        f"  sklearn index query, cold/warm:  {t_index_cold * 1000:8.2f} / {t_index * 1000:.2f} ms"
        f"  = {t_index / t_brute:.1f}x brute force (warm)"
    )
    print(
        f"  search() -> view, cold/warm:     {t_ours_cold * 1000:8.2f} / {t_ours * 1000:.2f} ms"
        f"  = {t_ours / t_brute:.1f}x brute force (warm)"
    )
    assert len(hits) == K
    dataset.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="images to embed (64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args()

    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    with (
        tempfile.TemporaryDirectory(prefix="dd-bench-") as tmp,
        MongoServer(Path(tmp) / "mongo") as server,
    ):
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        import fiftyone as fo

        if not args.skip_embedding:
            bench_embedding(fo, Path(tmp), args.images, args.batch_size)
        for size in args.sizes:
            bench_search(fo, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
