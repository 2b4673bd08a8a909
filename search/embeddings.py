"""CLIP embeddings of whole images and of object patches, with an on-disk cache.

The model is FiftyOne's own open_clip zoo wrapper (``fiftyone.utils.open_clip``,
zoo name ``open-clip-torch``) with three changes: weights never come from the network
unless they are already cached (missing weights fail at once with a message naming the
local-checkpoint option), random weights exist only when asked for with a seed (tests,
benchmarks), and image batches go straight to ``encode_image``. Image vectors are
``encode_image`` without normalisation, exactly what the zoo model's ``visual`` hook
returns, and prompts are embedded as ``"A photo of <prompt>"`` like the zoo model, so a
similarity index built from these vectors answers the App's text queries through the zoo
model with the same weights.

Cache: one ``.npz`` per (dataset, what was embedded, model identity) under
:func:`default_cache_dir`, holding ``keys`` (sample or label ids), ``fingerprints``
(file path + mtime + size, and for objects the box and margin) and ``vectors``. An item
is recomputed only when its fingerprint changed. Vectors are kept out of the sample and
label documents so that the App and every evaluation do not load 512 floats per object;
the similarity index keeps its own copy in the database.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fiftyone.utils.open_clip as fouoc
import numpy as np
import torch

from detection_debugger.datasets.fiftyone_private import (
    dataset_id,
    is_patches_view,
    open_clip_model_class,
    root_dataset_of,
)
from detection_debugger.search.clip_spec import (
    CACHE_ENV,
    DEFAULT_MARGIN,
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ZOO_MODEL,
    ClipSpec,
    WeightsNotFoundError,
    check_weights,
    hf_offline,
)

__all__ = [
    "DeviceError",
    "check_device",
    "DEFAULT_MARGIN",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "ZOO_MODEL",
    "ClipSpec",
    "EmbeddingTable",
    "OpenClipEmbedder",
    "OpenClipEmbedderConfig",
    "WeightsNotFoundError",
    "check_weights",
    "crop_box",
    "default_cache_dir",
    "embed_images",
    "embed_patches",
    "load_model",
]

logger = logging.getLogger(__name__)


class DeviceError(ValueError):
    """A device this machine does not have."""


def check_device(device: str | None) -> None:
    """Raises :class:`DeviceError` when ``device`` names a CUDA device that is not here."""
    if device and device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices"
            )


class OpenClipEmbedderConfig(fouoc.TorchOpenClipModelConfig):
    """The zoo config, but ``pretrained=None`` stays None (the zoo turns it into
    ``"openai"``) and ``random_weights_seed`` is required for random weights."""

    def __init__(self, d):
        super().__init__(d)
        self.pretrained = d.get("pretrained")
        self.random_weights_seed = self.parse_number(d, "random_weights_seed", default=None)


class OpenClipEmbedder(open_clip_model_class()):
    """open_clip image and prompt embeddings as a FiftyOne model
    (``Model`` + ``EmbeddingsMixin`` + ``PromptMixin``: ``can_embed_prompts`` is True).
    """

    spec: ClipSpec

    def load_network(self, config):
        if config.pretrained is None:
            if config.random_weights_seed is None:
                raise WeightsNotFoundError("random weights need random_weights_seed")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(config.random_weights_seed))
                return self._create(config, None)
        with hf_offline():
            try:
                return self._create(config, config.pretrained)
            except RuntimeError as error:  # a corrupt file, or a cache open_clip rejects
                raise WeightsNotFoundError(
                    f"could not load weights {config.pretrained!r} for {config.clip_model}: {error}"
                ) from error

    def _create(self, config, pretrained):
        import open_clip

        network, _, preprocess = open_clip.create_model_and_transforms(
            config.clip_model, pretrained=pretrained, device=self.device
        )
        network.eval()
        return self.attach(network, preprocess, open_clip.get_tokenizer(config.clip_model))

    @property
    def has_embeddings(self):
        return True

    def embed(self, arg):
        return self.embed_all([arg])[0]

    def embed_all(self, args):
        """``[N, D]`` float32 image embeddings of PIL images / HWC uint8 arrays / tensors."""
        if not len(args):
            return np.zeros((0, self.embedding_dim), np.float32)
        batch = torch.stack([self.preprocess_image(a) for a in args]).to(self.device)
        with torch.no_grad():
            features = self.network.encode_image(batch)
        return features.float().cpu().numpy()

    def embed_prompts(self, prompts):
        """``[len(prompts), D]`` float32 embeddings of ``"A photo of <prompt>"``."""
        with torch.no_grad():
            return self.encode_prompts(list(prompts)).float().cpu().numpy()

    @property
    def embedding_dim(self) -> int:
        return int(self.network.text_projection.shape[1])


def load_model(spec: ClipSpec | None = None):
    """The open_clip model of ``spec`` as a FiftyOne model (``OpenClipEmbedder``).

    Raises:
        WeightsNotFoundError: within milliseconds when the weights are not on this machine
    """
    spec = spec or ClipSpec()
    check_weights(spec)
    import fiftyone.zoo as foz

    d = dict(foz.get_zoo_model(ZOO_MODEL).default_deployment_config_dict["config"])
    d.update(clip_model=spec.model, pretrained=spec.weights, device=spec.device)
    d["random_weights_seed"] = spec.random_weights_seed
    model = OpenClipEmbedder(OpenClipEmbedderConfig(d))
    model.spec = spec
    return model


# --- cache ---------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$DETECTION_DEBUGGER_EMBEDDINGS_DIR``, else ``<fo default_dataset_dir>/
    detection-debugger/embeddings``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import fiftyone as fo

    return Path(fo.config.default_dataset_dir) / "detection-debugger" / "embeddings"


@dataclass
class _Cache:
    path: Path
    rows: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def open(cls, cache_dir, dataset, kind: str, spec: ClipSpec) -> _Cache:
        digest = hashlib.sha1(spec.identity().encode()).hexdigest()[:16]
        path = Path(cache_dir or default_cache_dir()) / dataset_id(dataset) / f"{kind}-{digest}.npz"
        cache = cls(path)
        if path.is_file():
            try:
                with np.load(path) as data:
                    for key, fp, vec in zip(data["keys"], data["fingerprints"], data["vectors"]):
                        cache.rows[str(key)] = (str(fp), vec)
            except (OSError, ValueError, KeyError) as error:
                logger.warning("ignoring unreadable embeddings cache %s: %s", path, error)
        return cache

    def get(self, key: str, fingerprint: str) -> np.ndarray | None:
        row = self.rows.get(key)
        return row[1] if row is not None and row[0] == fingerprint else None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.rows)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            keys=np.array(keys, dtype=str),
            fingerprints=np.array([self.rows[k][0] for k in keys], dtype=str),
            vectors=np.stack([self.rows[k][1] for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, 0), np.float32),
        )
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, self.path)  # atomic: a crash never leaves half a cache


# --- embedding -----------------------------------------------------------------------------


@dataclass
class EmbeddingTable:
    """Embeddings of one collection, row ``i`` for sample ``sample_ids[i]`` (and label
    ``label_ids[i]`` for objects).

    Shapes: ``vectors`` ``[N, D]`` float32; ``sample_ids`` ``[N]``; ``label_ids`` ``[N]`` or
    None for whole images. ``computed`` rows were computed now, the rest came from the cache.
    """

    sample_ids: np.ndarray
    label_ids: np.ndarray | None
    vectors: np.ndarray
    computed: int


def _file_fingerprint(filepath: str, stats: dict) -> str:
    if filepath not in stats:
        try:
            st = os.stat(filepath)
            stats[filepath] = f"{filepath}|{st.st_mtime_ns}|{st.st_size}"
        except OSError:
            stats[filepath] = f"{filepath}|missing"
    return stats[filepath]


def crop_box(image, box: Sequence[float], margin: float = DEFAULT_MARGIN):
    """The crop of a PIL image for a relative ``[x, y, w, h]`` box, grown by ``margin`` times
    the box size on every side and clipped to the image (at least 1x1 pixel)."""
    width, height = image.size
    x, y, w, h = box
    eps = 1e-6  # 0.16 * 50 is 7.999999: no pixel lost or gained to float rounding
    x1 = max(0, int(np.floor((x - margin * w) * width + eps)))
    y1 = max(0, int(np.floor((y - margin * h) * height + eps)))
    x2 = min(width, int(np.ceil((x + w + margin * w) * width - eps)))
    y2 = min(height, int(np.ceil((y + h + margin * h) * height - eps)))
    x1, y1 = min(x1, width - 1), min(y1, height - 1)
    return image.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))


def _run(model, todo, load, progress, cache, label: str) -> int:
    """Embeds ``todo`` = [(key, fingerprint, filepath, payload)] grouped by image, in batches.

    ``load(image, payload)`` returns the PIL image to embed.
    """
    import fiftyone.core.utils as fou
    from PIL import Image

    batch: list = []
    keys: list = []

    def flush():
        vectors = model.embed_all(batch)
        for (key, fp), vec in zip(keys, vectors):
            cache.rows[key] = (fp, vec)
        batch.clear()
        keys.clear()

    with fou.ProgressBar(total=len(todo), progress=progress) as pb:
        current, image = None, None
        for key, fp, filepath, payload in todo:
            if filepath != current:
                with Image.open(filepath) as im:
                    image = im.convert("RGB")
                current = filepath
            batch.append(load(image, payload))
            keys.append((key, fp))
            if len(batch) >= model.spec.batch_size:
                flush()
            pb.update()
        if batch:
            flush()
    if todo:
        logger.info("%s: embedded %d, cache %s", label, len(todo), cache.path)
        cache.save()
    return len(todo)


def embed_images(samples, model, cache_dir=None, progress=None) -> EmbeddingTable:
    """Embeddings of the images of ``samples`` (a dataset or view; for a patches view, the
    images the patches come from), computing only images that are new or changed on disk.

    Args:
        samples: a FiftyOne collection
        model: from :func:`load_model`
        cache_dir: root of the cache (default :func:`default_cache_dir`)
        progress: FiftyOne's ``progress`` argument (bool, None, or a callback taking the
            ``ProgressBar``, e.g. ``fo.report_progress(fn, dt=1)``)
    """
    id_path = "sample_id" if is_patches_view(samples) else "id"
    ids, paths = samples.values([id_path, "filepath"])
    first = {}
    for sample_id, filepath in zip(ids, paths):
        first.setdefault(str(sample_id), filepath)
    ids = list(first)
    cache = _Cache.open(cache_dir, root_dataset_of(samples), "images", model.spec)
    stats: dict = {}
    todo = []
    for sample_id in ids:
        fp = _file_fingerprint(first[sample_id], stats)
        if cache.get(sample_id, fp) is None:
            todo.append((sample_id, fp, first[sample_id], None))
    computed = _run(model, todo, lambda image, _: image, progress, cache, "images")
    vectors = _stack(cache, ids, model)
    return EmbeddingTable(np.array(ids, dtype=str), None, vectors, computed)


def _patch_records(samples, field_name: str):
    """``(sample_id, filepath, label_id, box)`` of every object of ``field_name`` shown in
    ``samples`` (a sample view, or a patches view of that field)."""
    if is_patches_view(samples):
        sids, paths, lids, boxes = samples.values(
            ["sample_id", "filepath", f"{field_name}.id", f"{field_name}.bounding_box"]
        )
        return list(zip(sids, paths, lids, boxes))
    sids, paths, lids, boxes = samples.values(
        ["id", "filepath", f"{field_name}.detections.id", f"{field_name}.detections.bounding_box"]
    )
    records = []
    for sid, path, labels, label_boxes in zip(sids, paths, lids, boxes):
        records.extend((sid, path, lid, box) for lid, box in zip(labels or (), label_boxes or ()))
    return records


def embed_patches(
    samples, model, field_name: str, margin: float = DEFAULT_MARGIN, cache_dir=None, progress=None
) -> EmbeddingTable:
    """Embeddings of the objects of the ``Detections`` field ``field_name`` shown in
    ``samples``, each cropped with ``margin`` (fraction of the box size) on every side;
    only objects whose image, box or margin changed are computed.
    """
    records = sorted(_patch_records(samples, field_name), key=lambda r: r[1])
    cache = _Cache.open(cache_dir, root_dataset_of(samples), f"objects-{field_name}", model.spec)
    stats: dict = {}
    todo = []
    for _sid, path, lid, box in records:
        fp = f"{_file_fingerprint(path, stats)}|{_box_text(box)}|{margin:g}"
        if cache.get(lid, fp) is None:
            todo.append((lid, fp, path, box))
    computed = _run(
        model, todo, lambda image, box: crop_box(image, box, margin), progress, cache, field_name
    )
    label_ids = [r[2] for r in records]
    vectors = _stack(cache, label_ids, model)
    return EmbeddingTable(
        np.array([r[0] for r in records], dtype=str),
        np.array(label_ids, dtype=str),
        vectors,
        computed,
    )


def _box_text(box) -> str:
    return ",".join(f"{v:.6f}" for v in box)


def _stack(cache: _Cache, keys: list, model) -> np.ndarray:
    if not keys:
        return np.zeros((0, model.embedding_dim), np.float32)
    return np.stack([cache.rows[k][1] for k in keys]).astype(np.float32)
