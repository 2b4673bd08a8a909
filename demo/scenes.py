"""The demo data: rendered traffic scenes, labels with planted errors, simulated TAO outputs.

Everything is generated from a seed, so the same arguments always give the same files:

- ``images/``: 640x384 street scenes drawn with PIL: road, lanes, crosswalks (with a fade
  level, some diagonal, some partly hidden by vehicles), crosswalk-like road markings,
  vehicles, pedestrians, bicycles, motorcycles and traffic lights.
- ``labels/``: KITTI ground truth with *planted label errors*: missing crosswalk annotations,
  crosswalk labels on road markings that are not crosswalks, wrong classes, loose boxes.
- ``predictions/baseline`` and ``predictions/retrained``: TAO inference output (KITTI lines
  with a 16th confidence column). The predictions are **simulated** from the true scene, not
  produced by a network: the baseline misses faded, diagonal and occluded crosswalks, fires on
  crosswalk-like markings and sometimes swaps motorcycles and bicycles; ``retrained`` behaves
  as a model trained on corrected data with more faded crosswalks.
- ``manifest.json``: every planted error and every scene attribute (fade, angle, occlusion),
  so that label-quality tools can be scored.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from detection_debugger.evaluation.label_issues import LOOSE_BOX, MISSING, SPURIOUS, WRONG_CLASS
from detection_debugger.formats import ImageObjects, ObjectRecord, write_kitti_folder

__all__ = ["CLASSES", "DemoConfig", "SceneObject", "ensure_demo_files", "generate_scene"]

CLASSES = ("vehicles", "pedestrians", "crosswalks", "bicycles", "motorcycles", "traffic_lights")
WIDTH, HEIGHT = 640, 384
HORIZON = 150  # the road starts here
ROAD = (72, 72, 76)
FADED_AT = 0.5  # crosswalks with fade >= this are "faded"


@dataclass(frozen=True)
class DemoConfig:
    """Size, seed and scene mix of a demo set.

    Attributes:
        num_images: scenes in the set.
        seed: the random seed.
        faded_share: chance that a crosswalk's paint is worn (fade >= ``FADED_AT``).
        crosswalks_per_image: mean crosswalks per scene (Poisson).
        clean_labels: label the true objects without planting errors.
    """

    num_images: int = 500
    seed: int = 0
    faded_share: float = 0.45
    crosswalks_per_image: float = 0.4
    clean_labels: bool = False

    @property
    def key(self) -> str:
        # the scene mix enters the key only when it is not the default (keys stay stable)
        fields = {
            k: v
            for k, v in asdict(self).items()
            if k in ("num_images", "seed") or v != getattr(DemoConfig, k)
        }
        text = json.dumps({"version": 1, **fields}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    @property
    def mix(self) -> dict:
        return {"faded_share": self.faded_share, "crosswalks": self.crosswalks_per_image}


@dataclass
class SceneObject:
    """One true object of a scene (what is really in the image)."""

    label: str  # one of CLASSES, or "marking" (a crosswalk-like road marking)
    box: tuple[float, float, float, float]  # x1 y1 x2 y2, pixels
    fade: float = 0.0
    angle: float = 0.0
    occlusion: float = 0.0
    attributes: dict = field(default_factory=dict)


def _clip_box(x1, y1, x2, y2):
    return (
        float(np.clip(x1, 0, WIDTH - 1)),
        float(np.clip(y1, 0, HEIGHT - 1)),
        float(np.clip(x2, 1, WIDTH)),
        float(np.clip(y2, 1, HEIGHT)),
    )


def _overlap(a, b) -> float:
    """Fraction of box ``a`` covered by box ``b``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]))


def _stripes(cx, cy, width, height, angle, count):
    """Polygons of the stripes of a zebra crossing centred at (cx, cy), rotated by angle."""
    cos, sin = math.cos(angle), math.sin(angle)
    step = width / count
    polygons = []
    for i in range(count):
        x0 = -width / 2 + i * step + step * 0.2
        x1 = x0 + step * 0.6
        corners = [(x0, -height / 2), (x1, -height / 2), (x1, height / 2), (x0, height / 2)]
        polygons.append([(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in corners])
    return polygons


# long: one scene's recipe, read top to bottom like the case study describes it
def generate_scene(
    rng: np.random.Generator, faded_share: float = 0.45, crosswalks: float = 0.4
) -> list[SceneObject]:
    """The true objects of one scene (before any labelling error); ``faded_share`` of the
    crosswalks have worn paint, ``crosswalks`` is their mean number per scene."""
    objects: list[SceneObject] = []
    # Crosswalks: about as frequent as motorcycles.
    for _ in range(rng.poisson(crosswalks)):
        cy = rng.uniform(HORIZON + 40, HEIGHT - 40)
        scale = 0.45 + 0.55 * (cy - HORIZON) / (HEIGHT - HORIZON)
        width, height = rng.uniform(150, 260) * scale, rng.uniform(38, 62) * scale
        cx = rng.uniform(width / 2 + 10, WIDTH - width / 2 - 10)
        diagonal = rng.random() < 0.3
        angle = float(rng.uniform(0.35, 0.6) * rng.choice([-1, 1])) if diagonal else 0.0
        # Paint is either fresh or clearly worn (45%): "faded" crosswalks are a real group.
        fresh = rng.random() < 1 - faded_share
        fade = float(rng.uniform(0.0, 0.3) if fresh else rng.uniform(0.5, 0.95))
        polys = _stripes(cx, cy, width, height, angle, int(rng.integers(6, 10)))
        xs = [x for p in polys for x, _ in p]
        ys = [y for p in polys for _, y in p]
        box = _clip_box(min(xs), min(ys), max(xs), max(ys))
        objects.append(
            SceneObject("crosswalks", box, fade=fade, angle=angle, attributes={"polygons": polys})
        )
    # Crosswalk-like markings (parking bays, hatched areas): not crosswalks.
    for _ in range(rng.poisson(0.18)):
        cy = rng.uniform(HORIZON + 30, HEIGHT - 30)
        scale = 0.45 + 0.55 * (cy - HORIZON) / (HEIGHT - HORIZON)
        width, height = rng.uniform(60, 110) * scale, rng.uniform(30, 50) * scale
        cx = rng.uniform(width, WIDTH - width)
        polys = _stripes(cx, cy, width, height, 0.8, 4)
        xs = [x for p in polys for x, _ in p]
        ys = [y for p in polys for _, y in p]
        objects.append(
            SceneObject(
                "marking",
                _clip_box(min(xs), min(ys), max(xs), max(ys)),
                attributes={"polygons": polys},
            )
        )
    # Road users: vehicles ~10x bicycles.
    counts = {
        "vehicles": rng.poisson(3.0),
        "pedestrians": rng.poisson(1.4),
        "bicycles": rng.poisson(0.32),
        "motorcycles": rng.poisson(0.4),
    }
    sizes = {
        "vehicles": (95, 55),
        "pedestrians": (16, 40),
        "bicycles": (38, 28),
        "motorcycles": (44, 32),
    }
    crosswalks = [o for o in objects if o.label == "crosswalks"]
    for label, n in counts.items():
        for _ in range(n):
            bottom = rng.uniform(HORIZON + 20, HEIGHT - 2)
            scale = 0.35 + 0.65 * (bottom - HORIZON) / (HEIGHT - HORIZON)
            w0, h0 = sizes[label]
            w = w0 * scale * rng.uniform(0.8, 1.3)
            h = h0 * scale * rng.uniform(0.85, 1.2)
            x = rng.uniform(0, WIDTH - w)
            objects.append(
                SceneObject(
                    label,
                    _clip_box(x, bottom - h, x + w, bottom),
                    attributes={"color": tuple(int(c) for c in rng.integers(30, 230, 3))},
                )
            )
    # Some vehicles stop on a crosswalk and hide part of it.
    for cw in crosswalks:
        if rng.random() < 0.3:
            bottom = min(HEIGHT - 2, cw.box[3] + rng.uniform(-5, 20))
            scale = 0.35 + 0.65 * (bottom - HORIZON) / (HEIGHT - HORIZON)
            w, h = 95 * scale * rng.uniform(0.8, 1.3), 55 * scale * rng.uniform(0.85, 1.2)
            x = float(np.clip(rng.uniform(cw.box[0] - w / 2, cw.box[2] - w / 2), 0, WIDTH - w))
            objects.append(
                SceneObject(
                    "vehicles",
                    _clip_box(x, bottom - h, x + w, bottom),
                    attributes={"color": tuple(int(c) for c in rng.integers(30, 230, 3))},
                )
            )
    for _ in range(rng.poisson(0.9)):
        x, y = rng.uniform(10, WIDTH - 30), rng.uniform(25, HORIZON - 50)
        s = rng.uniform(0.7, 1.2)
        objects.append(
            SceneObject(
                "traffic_lights",
                _clip_box(x, y, x + 13 * s, y + 32 * s),
                attributes={"state": int(rng.integers(3))},
            )
        )
    for cw in crosswalks:
        cw.occlusion = float(
            min(1.0, sum(_overlap(cw.box, o.box) for o in objects if o.label == "vehicles"))
        )
    return objects


# long: drawing instructions in painting order (road, markings, objects)
def render(objects: list[SceneObject], rng: np.random.Generator):
    """Draws a scene; returns a PIL image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), (150, 185, 215))
    draw = ImageDraw.Draw(image)
    for x in range(0, WIDTH, 70):  # buildings
        h = int(rng.uniform(40, 120))
        shade = int(rng.uniform(110, 170))
        draw.rectangle([x, HORIZON - h, x + 65, HORIZON], fill=(shade, shade - 10, shade - 20))
    draw.rectangle([0, HORIZON, WIDTH, HEIGHT], fill=ROAD)
    draw.rectangle([0, HORIZON, WIDTH, HORIZON + 8], fill=(150, 150, 140))  # kerb
    for x in range(0, WIDTH, 60):  # lane dashes
        draw.rectangle([x, 268, x + 30, 272], fill=(220, 210, 120))
    for o in objects:
        if o.label not in ("crosswalks", "marking"):
            continue
        level = 235 - (235 - ROAD[0]) * o.fade
        for poly in o.attributes["polygons"]:
            draw.polygon(poly, fill=(int(level), int(level), int(level) + 2))
        if o.fade > 0.3:  # worn paint: road-coloured patches
            x1, y1, x2, y2 = o.box
            for _ in range(int(25 * o.fade)):
                px, py = rng.uniform(x1, x2), rng.uniform(y1, y2)
                r = rng.uniform(2, 7)
                draw.ellipse([px - r, py - r, px + r, py + r], fill=ROAD)
    for o in sorted(objects, key=lambda o: o.box[3]):
        x1, y1, x2, y2 = o.box
        w, h = x2 - x1, y2 - y1
        color = o.attributes.get("color", (200, 60, 60))
        if o.label == "vehicles":
            draw.rectangle([x1, y1 + h * 0.25, x2, y2 - h * 0.15], fill=color)
            draw.rectangle([x1 + w * 0.2, y1, x2 - w * 0.2, y1 + h * 0.3], fill=color)
            draw.rectangle(
                [x1 + w * 0.25, y1 + h * 0.05, x2 - w * 0.25, y1 + h * 0.27], fill=(120, 160, 190)
            )
            for wx in (x1 + w * 0.22, x2 - w * 0.22):
                r = h * 0.17
                draw.ellipse([wx - r, y2 - 2 * r, wx + r, y2], fill=(20, 20, 20))
        elif o.label == "pedestrians":
            r = w * 0.35
            draw.ellipse([x1 + w / 2 - r, y1, x1 + w / 2 + r, y1 + 2 * r], fill=(230, 190, 160))
            draw.rectangle([x1 + w * 0.2, y1 + 2 * r, x2 - w * 0.2, y1 + h * 0.65], fill=color)
            draw.line([x1 + w * 0.35, y1 + h * 0.65, x1 + w * 0.2, y2], fill=(40, 40, 60), width=2)
            draw.line([x2 - w * 0.35, y1 + h * 0.65, x2 - w * 0.2, y2], fill=(40, 40, 60), width=2)
        elif o.label in ("bicycles", "motorcycles"):
            r = h * (0.3 if o.label == "bicycles" else 0.34)
            thick = 2 if o.label == "bicycles" else 5
            for wx in (x1 + r, x2 - r):
                draw.ellipse([wx - r, y2 - 2 * r, wx + r, y2], outline=(20, 20, 20), width=thick)
            draw.line(
                [x1 + r, y2 - r, x1 + w / 2, y1 + h * 0.35, x2 - r, y2 - r], fill=color, width=thick
            )
            if o.label == "motorcycles":
                draw.rectangle(
                    [x1 + w * 0.3, y1 + h * 0.3, x2 - w * 0.3, y1 + h * 0.55], fill=color
                )
        elif o.label == "traffic_lights":
            draw.rectangle([x1 + w * 0.4, y2, x1 + w * 0.6, HORIZON], fill=(60, 60, 60))
            draw.rectangle([x1, y1, x2, y2], fill=(25, 25, 25))
            for i, lamp in enumerate(((220, 40, 40), (230, 200, 40), (40, 200, 80))):
                on = lamp if i == o.attributes["state"] else (70, 70, 70)
                cy = y1 + h * (i + 0.5) / 3
                r = w * 0.32
                draw.ellipse([x1 + w / 2 - r, cy - r, x1 + w / 2 + r, cy + r], fill=on)
    return image


def _jitter(box, rng, sigma):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx, dy = rng.normal(0, sigma * w), rng.normal(0, sigma * h)
    sw, sh = math.exp(rng.normal(0, sigma)), math.exp(rng.normal(0, sigma))
    cx, cy = (x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy
    return _clip_box(cx - w * sw / 2, cy - h * sh / 2, cx + w * sw / 2, cy + h * sh / 2)


# How each simulated model sees the world. recall: chance to find an object; sigma: box
# jitter (relative); crosswalk_penalty: how much fade / diagonal / occlusion hurt.
MODELS = {
    "baseline": {
        "recall": {
            "vehicles": 0.93,
            "pedestrians": 0.86,
            "crosswalks": 0.95,
            "bicycles": 0.84,
            "motorcycles": 0.86,
            "traffic_lights": 0.9,
        },
        "sigma": {"crosswalks": 0.06, "default": 0.045},
        "fade": 1.0,
        "diagonal": 0.6,
        "occlusion": 1.0,
        "marking_ghost": 0.75,
        "swap": 0.12,
        "ghosts": 0.6,
        "duplicates": 0.05,
    },
    "retrained": {
        "recall": {
            "vehicles": 0.94,
            "pedestrians": 0.88,
            "crosswalks": 0.97,
            "bicycles": 0.86,
            "motorcycles": 0.88,
            "traffic_lights": 0.91,
        },
        "sigma": {"crosswalks": 0.025, "default": 0.04},
        "fade": 0.1,
        "diagonal": 0.95,
        "occlusion": 0.3,
        "marking_ghost": 0.08,
        "swap": 0.06,
        "ghosts": 0.35,
        "duplicates": 0.03,
    },
}


def simulate_predictions(objects, model: str, rng) -> list[ObjectRecord]:
    """TAO-like detections of the true objects of a scene by a simulated model."""
    spec = MODELS[model]
    out = []
    for o in objects:
        if o.label == "marking":
            if rng.random() < spec["marking_ghost"]:
                out.append(
                    ObjectRecord(
                        "crosswalks", _jitter(o.box, rng, 0.08), score=float(rng.uniform(0.35, 0.8))
                    )
                )
            continue
        p = spec["recall"][o.label]
        if o.label == "crosswalks":
            p *= max(0.03, 1 - 1.3 * spec["fade"] * o.fade**1.2)
            p *= spec["diagonal"] if o.angle else 1.0
            p *= max(0.0, 1 - spec["occlusion"] * o.occlusion)
        if rng.random() >= p:
            continue
        label = o.label
        if label in ("bicycles", "motorcycles") and rng.random() < spec["swap"]:
            label = "motorcycles" if label == "bicycles" else "bicycles"
        sigma = spec["sigma"].get(o.label, spec["sigma"]["default"])
        quality = rng.beta(5, 1.6)
        score = float(np.clip(quality * rng.uniform(0.75, 1.0) * (0.8 + 0.2 * p), 0.02, 0.999))
        out.append(ObjectRecord(label, _jitter(o.box, rng, sigma * (1.4 - quality)), score=score))
        if rng.random() < spec["duplicates"]:
            out.append(
                ObjectRecord(
                    label,
                    _jitter(o.box, rng, sigma * 1.5),
                    score=float(score * rng.uniform(0.3, 0.7)),
                )
            )
    for _ in range(rng.poisson(spec["ghosts"])):
        label = CLASSES[int(rng.choice(6, p=[0.45, 0.2, 0.1, 0.05, 0.05, 0.15]))]
        x, y = rng.uniform(0, WIDTH - 60), rng.uniform(HORIZON - 40, HEIGHT - 40)
        box = _clip_box(x, y, x + rng.uniform(15, 90), y + rng.uniform(15, 60))
        out.append(ObjectRecord(label, box, score=float(rng.beta(1.3, 5))))
    return out


# long: every kind of planted label error in one place, logged as it is planted
def label_scene(objects, rng, stem: str, errors: list) -> list[ObjectRecord]:
    """Ground truth as an annotator would give it, planting (and logging) label errors."""
    out = []
    for index, o in enumerate(objects):
        attrs = {
            "truncated": 0.0,
            "occluded": round(min(o.occlusion, 1.0) * 3) if o.occlusion else 0,
        }
        if o.label == "marking":
            if rng.random() < 0.3:
                errors.append(
                    {
                        "image": stem,
                        "type": SPURIOUS,
                        "object": index,
                        "label": "crosswalks",
                        "box": o.box,
                        "line": len(out) + 1,
                    }
                )
                out.append(ObjectRecord("crosswalks", o.box, attributes=attrs))
            continue
        if o.label == "crosswalks" and rng.random() < 0.12:
            errors.append(
                {
                    "image": stem,
                    "type": MISSING,
                    "object": index,
                    "label": "crosswalks",
                    "box": o.box,
                }
            )
            continue
        label, box = o.label, o.box
        if o.label in ("motorcycles", "bicycles", "pedestrians") and rng.random() < 0.05:
            label = {
                "motorcycles": "bicycles",
                "bicycles": "motorcycles",
                "pedestrians": "bicycles",
            }[o.label]
            errors.append(
                {
                    "image": stem,
                    "type": WRONG_CLASS,
                    "object": index,
                    "label": label,
                    "true_label": o.label,
                    "box": o.box,
                    "line": len(out) + 1,
                }
            )
        elif rng.random() < 0.025:
            x1, y1, x2, y2 = o.box
            g = rng.uniform(0.2, 0.35)
            w, h = x2 - x1, y2 - y1
            box = _clip_box(x1 - g * w, y1 - g * h, x2 + g * w, y2 + g * h * 0.5)
            errors.append(
                {
                    "image": stem,
                    "type": LOOSE_BOX,
                    "object": index,
                    "label": label,
                    "box": box,
                    "true_box": o.box,
                    "line": len(out) + 1,
                }
            )
        out.append(ObjectRecord(label, box, attributes=attrs))
    return out


def ensure_demo_files(root: str | Path, config: DemoConfig = DemoConfig(), progress=print) -> dict:
    """Generates the demo files under ``root/demo-<key>/`` unless they are complete already.

    Returns the paths: ``{"folder", "images", "labels", "baseline", "retrained", "manifest"}``.
    """
    folder = Path(root) / f"demo-{config.num_images}-{config.seed}-{config.key}"
    paths = {
        "folder": folder,
        "images": folder / "images",
        "labels": folder / "labels",
        "baseline": folder / "predictions" / "baseline",
        "retrained": folder / "predictions" / "retrained",
        "manifest": folder / "manifest.json",
    }
    if paths["manifest"].exists():
        return {k: str(v) for k, v in paths.items()}
    progress(f"generating {config.num_images} demo scenes in {folder} ...")
    paths["images"].mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    gt_images, predictions = [], {name: [] for name in MODELS}
    scenes, errors = {}, []
    for i in range(config.num_images):
        stem = f"{i:06d}"
        objects = generate_scene(rng, **config.mix)
        render(objects, rng).save(paths["images"] / f"{stem}.jpg", quality=88)
        labels = (
            [ObjectRecord(o.label, o.box) for o in objects if o.label != "marking"]
            if config.clean_labels
            else label_scene(objects, rng, stem, errors)
        )
        gt_images.append(ImageObjects(stem, labels))
        for name in MODELS:
            predictions[name].append(ImageObjects(stem, simulate_predictions(objects, name, rng)))
        scenes[stem] = [
            {
                "label": o.label,
                "box": o.box,
                "fade": round(o.fade, 3),
                "angle": round(o.angle, 3),
                "occlusion": round(o.occlusion, 3),
            }
            for o in objects
        ]
        if progress and (i + 1) % 100 == 0:
            progress(f"  {i + 1}/{config.num_images} scenes")
    write_kitti_folder(paths["labels"], gt_images, with_score=False)
    for name in MODELS:
        write_kitti_folder(paths[name], predictions[name], with_score=True)
    manifest = {
        "config": asdict(config),
        "classes": list(CLASSES),
        "faded_at": FADED_AT,
        "note": "predictions are simulated from the scenes, not produced by a network",
        "errors": errors,
        "scenes": scenes,
    }
    paths["manifest"].write_text(json.dumps(manifest))  # written last: marks completion
    return {k: str(v) for k, v in paths.items()}
