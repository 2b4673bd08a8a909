"""Which open_clip model and weights: :class:`ClipSpec`, and the fail-fast weights check.

Imports neither torch nor FiftyOne, so the CLI and the operators' forms stay fast.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MARGIN",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "ZOO_MODEL",
    "ClipSpec",
    "WeightsNotFoundError",
    "check_weights",
    "hf_offline",
]

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
ZOO_MODEL = "open-clip-torch"
DEFAULT_MARGIN = 0.1
CACHE_ENV = "DETECTION_DEBUGGER_EMBEDDINGS_DIR"


class WeightsNotFoundError(RuntimeError):
    """The model's weights are not on this machine (nothing is downloaded in the background)."""


@dataclass(frozen=True)
class ClipSpec:
    """Which open_clip model to run, and where.

    Args:
        model: open_clip architecture name (``open_clip.list_models()``)
        pretrained: open_clip pretrained tag, used when no ``checkpoint`` is given
        checkpoint: path of a local ``.bin``/``.pt``/``.safetensors`` state dict; wins over
            ``pretrained``
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None``: CUDA when present
        batch_size: images or crops per forward pass
        random_weights_seed: tests and benchmarks only: random weights drawn with this
            seed instead of pretrained ones (never used unless set)
    """

    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    checkpoint: str | None = None
    device: str | None = None
    batch_size: int = 32
    random_weights_seed: int | None = None

    @property
    def weights(self) -> str | None:
        """What open_clip's ``pretrained=`` receives: a checkpoint path, a tag, or None."""
        if self.random_weights_seed is not None:
            return None
        if self.checkpoint:
            return os.path.abspath(os.path.expanduser(self.checkpoint))
        return self.pretrained

    def identity(self) -> str:
        """Names the weights exactly (cache key): a changed checkpoint file is a new model."""
        if self.random_weights_seed is not None:
            return f"{self.model}|random:{self.random_weights_seed}"
        weights = self.weights
        if self.checkpoint and os.path.isfile(weights):
            stat = os.stat(weights)
            return f"{self.model}|{weights}|{stat.st_mtime_ns}|{stat.st_size}"
        return f"{self.model}|{weights}"

    def zoo_kwargs(self) -> dict | None:
        """Arguments of ``load_zoo_model("open-clip-torch", ...)`` that rebuild this model in
        another process (the App), or None for random weights, which cannot be rebuilt."""
        if self.weights is None:
            return None
        return {"clip_model": self.model, "pretrained": self.weights}


@contextlib.contextmanager
def hf_offline():
    """Hugging Face Hub offline mode for the block (no request, no minute of retries)."""
    import huggingface_hub.constants as hfc

    previous_env, previous = os.environ.get("HF_HUB_OFFLINE"), hfc.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    hfc.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hfc.HF_HUB_OFFLINE = previous
        if previous_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous_env


def _how_to_fix(spec: ClipSpec) -> str:
    return (
        f'download it once on a machine with internet (python -c "import open_clip; '
        f"open_clip.create_model_and_transforms('{spec.model}', pretrained='{spec.pretrained}')\" "
        "fills ~/.cache/huggingface), or pass a local state dict with --checkpoint PATH "
        "(Python: ClipSpec(checkpoint=PATH); the model_kwargs 'pretrained' of the zoo model "
        "'open-clip-torch' also accepts a path)"
    )


def check_weights(spec: ClipSpec) -> str | None:
    """Fails at once, without network, when the weights of ``spec`` are not on this machine.

    Returns the local file that open_clip will read (None for random weights).

    Raises:
        WeightsNotFoundError: missing checkpoint file, unknown tag, or tag not cached
    """
    import open_clip

    if spec.random_weights_seed is not None:
        return None
    if spec.checkpoint:
        path = spec.weights
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f"checkpoint {path} does not exist (--checkpoint)")
        return path
    if not spec.pretrained:
        raise WeightsNotFoundError(
            "no weights given: pass a pretrained tag or a checkpoint (random weights are "
            "never used unless random_weights_seed is set)"
        )
    if spec.model not in open_clip.list_models():
        raise WeightsNotFoundError(f"unknown open_clip model {spec.model!r}")
    cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(spec.model)
        raise WeightsNotFoundError(
            f"{spec.pretrained!r} is not a pretrained tag of {spec.model} (known: "
            f"{', '.join(tags) or 'none'}) nor a file; for a local file use --checkpoint"
        )
    found = _cached_weights(cfg)
    if found is None:
        raise WeightsNotFoundError(
            f"weights {spec.model}/{spec.pretrained} are not on this machine and are never "
            f"downloaded in the background: {_how_to_fix(spec)}"
        )
    return found


def _cached_weights(cfg: dict) -> str | None:
    """The local copy open_clip would load for a pretrained config, if there is one."""
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)
        candidates = [filename] if filename else ["open_clip_model.safetensors"]
        candidates += ["open_clip_pytorch_model.bin"] if not filename else []
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for name in candidates:
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str):
                return found
        return None
    url = cfg.get("url", "")
    if url:
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        return path if os.path.isfile(path) else None
    return None
