"""Training the detector on images and KITTI labels, on the CPU; saving and loading weights.

The weights file is a ``torch.save`` dictionary: half-precision ``state_dict``, the class
names, the input size and a ``meta`` dictionary (how it was made: command, seed, data).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from detection_debugger.detector.network import STRIDE, CenterNet
from detection_debugger.detector.targets import centernet_loss, make_targets
from detection_debugger.formats import ImageObjects

__all__ = ["TrainConfig", "load_detector", "load_images", "save_detector", "train_detector"]


@dataclass(frozen=True)
class TrainConfig:
    """How a detector is trained.

    Attributes:
        iterations: optimiser steps (the same for every model of a comparison).
        batch_size: images a step.
        learning_rate: Adam's peak rate (cosine decay to 5% of it).
        input_size: ``(width, height)`` the images are resized to (multiples of 32).
        seed: seeds torch and the batch order.
        threads: torch's CPU threads.
    """

    iterations: int = 600
    batch_size: int = 16
    learning_rate: float = 2e-3
    input_size: tuple[int, int] = (320, 192)
    seed: int = 0
    threads: int = 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's CPU threads set to ``threads`` inside the block and restored after it: the
    detector runs inside other processes (the tests, the App), whose torch work must not
    change with it (thread count changes a float sum's order)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_images(paths: Sequence[str | Path], input_size: tuple[int, int]) -> torch.Tensor:
    """``(N, 3, H, W)`` uint8 tensor of the images resized to ``input_size`` (W, H)."""
    from PIL import Image

    out = torch.empty((len(paths), 3, input_size[1], input_size[0]), dtype=torch.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB").resize(input_size, Image.BILINEAR))
        out[i] = torch.from_numpy(array.copy()).permute(2, 0, 1)
    return out


def _scaled_boxes(images: Sequence[ImageObjects], sizes, classes, input_size):
    """Per image: ``(boxes (N, 4) in output cells, labels (N,))``; unknown classes and
    crowd regions are left out."""
    out = []
    for image, (width, height) in zip(images, sizes):
        kept = [o for o in image.objects if not o.crowd and o.label in classes]
        boxes = np.array([o.box for o in kept], np.float32).reshape(-1, 4)
        boxes *= np.array([input_size[0] / width, input_size[1] / height] * 2, np.float32)
        labels = np.array([classes.index(o.label) for o in kept], np.int64)
        out.append((boxes / STRIDE, labels))
    return out


def _batch_targets(items, flips, num_classes: int, h: int, w: int) -> dict[str, torch.Tensor]:
    parts = []
    for (boxes, labels), flip in zip(items, flips):
        if flip:
            boxes = boxes.copy()
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        parts.append(make_targets(boxes, labels, num_classes, h, w))
    return {k: torch.from_numpy(np.stack([p[k] for p in parts])) for k in parts[0]}


def _schedule(iterations: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over 5% of the steps, cosine decay to 5%."""
    warm = max(1, iterations // 20)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        done = (step - warm) / max(1, iterations - warm)
        return 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(done, 1.0)))

    return factor


# long: one training loop (batches, augmentation, schedule, loss, progress) read in order
def train_detector(
    image_paths: Sequence[str | Path],
    labels: Sequence[ImageObjects],
    sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
    config: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] | None = print,
) -> tuple[CenterNet, dict]:
    """Trains a :class:`CenterNet` from scratch on ``config.threads`` CPU threads.

    Args:
        image_paths: the training images.
        labels: their ground truth (pixel boxes), in the same order.
        sizes: ``(width, height)`` of each image.
        classes: the class names (the heatmap's channels, in this order).

    Returns:
        The model (in eval mode) and a summary (seconds, final loss parts, images).
    """
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        classes = list(classes)
        started = time.monotonic()
        pixels = load_images(image_paths, config.input_size)
        items = _scaled_boxes(labels, sizes, classes, config.input_size)
        h, w = config.input_size[1] // STRIDE, config.input_size[0] // STRIDE
        model = CenterNet(len(classes))
        model.train()
        optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(config.iterations))
        order, cursor, parts = rng.permutation(len(items)), 0, {}
        for step in range(config.iterations):
            if cursor + config.batch_size > len(order):
                order, cursor = rng.permutation(len(items)), 0
            chosen = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            flips = rng.random(len(chosen)) < 0.5
            x = pixels[torch.from_numpy(chosen)].float() / 255.0
            x[torch.from_numpy(flips)] = x[torch.from_numpy(flips)].flip(-1)
            targets = _batch_targets([items[i] for i in chosen], flips, len(classes), h, w)
            loss, parts = centernet_loss(model(x), targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if progress and (step + 1) % 50 == 0:
                elapsed = time.monotonic() - started
                losses = " ".join(f"{k} {v:.3f}" for k, v in parts.items())
                progress(f"  step {step + 1}/{config.iterations} ({elapsed:.0f} s): {losses}")
        model.eval()
        summary = {
            "seconds": round(time.monotonic() - started, 1),
            "images": len(items),
            "objects": int(sum(len(b) for b, _ in items)),
            "final_loss": {k: round(v, 4) for k, v in parts.items()},
            "config": asdict(config),
        }
        return model, summary


@dataclass
class LoadedDetector:
    """A detector read from a weights file."""

    model: CenterNet
    classes: list[str]
    input_size: tuple[int, int]
    meta: dict = field(default_factory=dict)


def save_detector(path, model: CenterNet, classes, input_size, meta: dict) -> None:
    """Writes the weights (float16) with the classes, input size and ``meta``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(
        {
            "state_dict": state,
            "classes": list(classes),
            "input_size": list(input_size),
            "meta": meta,
        },
        path,
    )


def load_detector(path) -> LoadedDetector:
    """Reads a weights file written by :func:`save_detector` (model in eval mode)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = CenterNet(len(saved["classes"]))
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in saved["state_dict"].items()}
    )
    model.eval()
    return LoadedDetector(model, saved["classes"], tuple(saved["input_size"]), saved["meta"])
