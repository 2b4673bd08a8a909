"""``detection-debugger embed`` and ``detection-debugger search`` (CLIP search).

Wired into ``cli.build_parser`` with ``add_search_command(commands)``; importing this
module is cheap (torch and FiftyOne are imported when a command runs).
"""

from __future__ import annotations

import argparse
import math
import re

from detection_debugger.cli.common import UsageError
from detection_debugger.search.clip_spec import (
    DEFAULT_MARGIN,
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ClipSpec,
)

__all__ = ["add_search_command", "run_embed", "run_search"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _margin(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _device(text: str) -> str:
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (must match the one the index was built with)")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"open_clip model ({DEFAULT_MODEL})")
    group.add_argument(
        "--pretrained", default=DEFAULT_PRETRAINED, help=f"pretrained tag ({DEFAULT_PRETRAINED})"
    )
    group.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="local weights (.bin/.pt/.safetensors) instead of a tag",
    )
    group.add_argument(
        "--device", type=_device, help="cpu, cuda, cuda:1 (default: CUDA when present)"
    )
    group.add_argument("--batch-size", type=_positive, default=32, help="images per batch (32)")


def add_search_command(subparsers) -> None:
    """Adds ``embed`` and ``search`` to the ``detection-debugger`` sub-commands."""
    embed = subparsers.add_parser(
        "embed",
        help="CLIP embeddings of images or objects and a similarity index for search",
        description=(
            "Embeds the images (or the objects of --objects FIELD, cropped with a margin) of a "
            "dataset or saved view with open_clip, reusing cached embeddings of unchanged "
            "items, and (re)builds the similarity index the App's text search uses "
            "(brain key clip_images or clip_FIELD)."
        ),
    )
    embed.add_argument("--dataset", required=True)
    embed.add_argument("--objects", metavar="FIELD", help="embed the objects of this field")
    embed.add_argument("--view", metavar="SAVED_VIEW", help="embed only this saved view")
    embed.add_argument(
        "--margin", type=_margin, default=DEFAULT_MARGIN, help=f"crop margin ({DEFAULT_MARGIN})"
    )
    _model_options(embed)
    embed.set_defaults(run=run_embed)

    search = subparsers.add_parser(
        "search",
        help="CLIP text search over images or objects; save the hits as a slice",
        description=(
            "Ranks the images (or the objects of --objects FIELD) of a dataset or saved view "
            "by CLIP similarity to a text query and prints the top k. Embeddings and the index "
            "are computed first when missing (cached embeddings are reused)."
        ),
    )
    search.add_argument("--dataset", required=True)
    search.add_argument("--query", required=True, help='text, e.g. "faded crosswalk"')
    search.add_argument("--objects", metavar="FIELD", help="search the objects of this field")
    search.add_argument("--view", metavar="SAVED_VIEW", help="search only this saved view")
    search.add_argument("-k", type=_positive, default=50, help="number of hits (50)")
    search.add_argument("--save-slice", metavar="NAME", help="save the hits as this saved view")
    search.add_argument("--overwrite", action="store_true", help="replace an existing slice")
    search.add_argument(
        "--save-images",
        action="store_true",
        help="with --objects: save the hits' images (all labels) rather than the objects",
    )
    _model_options(search)
    search.set_defaults(run=run_search)


def _spec(args) -> ClipSpec:
    return ClipSpec(
        model=args.model,
        pretrained=args.pretrained,
        checkpoint=args.checkpoint,
        device=args.device,
        batch_size=args.batch_size,
    )


def _collection(args):
    import fiftyone as fo

    if not fo.dataset_exists(args.dataset):
        raise UsageError(f"no dataset named {args.dataset!r}")
    dataset = fo.load_dataset(args.dataset)
    if args.objects:
        detections = sorted(dataset.get_field_schema(embedded_doc_type=fo.Detections))
        if args.objects not in detections:
            what = "no field" if not dataset.has_field(args.objects) else "no Detections field"
            raise UsageError(
                f"dataset {args.dataset!r} has {what} {args.objects!r} (its Detections fields: "
                f"{', '.join(detections) or 'none'})"
            )
    if args.view:
        if not dataset.has_saved_view(args.view):
            raise UsageError(f"dataset {args.dataset!r} has no saved view {args.view!r}")
        return dataset, dataset.load_saved_view(args.view)
    return dataset, dataset


def _model(args):
    from detection_debugger.search.clip_spec import WeightsNotFoundError, check_weights

    spec = _spec(args)
    try:
        check_weights(spec)  # before torch is imported: the error comes in a second
        from detection_debugger.search.embeddings import DeviceError, check_device, load_model

        check_device(spec.device)
        return load_model(spec)
    except (WeightsNotFoundError, DeviceError) as error:
        raise UsageError(str(error)) from None


def run_embed(args: argparse.Namespace) -> int:
    from detection_debugger.search.index import build_index

    _dataset, samples = _collection(args)
    model = _model(args)
    index, table = build_index(samples, model, patches_field=args.objects, margin=args.margin)
    print(
        f"{index.key}: {len(table.vectors)} {'objects' if args.objects else 'images'} indexed "
        f"({table.computed} computed, {len(table.vectors) - table.computed} from the cache)"
    )
    return 0


def run_search(args: argparse.Namespace) -> int:
    from detection_debugger.search.index import ensure_index, save_slice, search

    dataset, samples = _collection(args)
    model = _model(args)
    ensure_index(samples, model, patches_field=args.objects)
    hits = search(samples, args.query, k=args.k, patches_field=args.objects, model=model)
    field = args.objects
    paths = hits.values("filepath")
    labels = hits.values(f"{field}.label") if field else [None] * len(paths)
    for rank, (hit_id, path, label) in enumerate(zip(hits.values("id"), paths, labels), 1):
        print(f"{rank:4d}  {hit_id}  {path}" + (f"  {label}" if label else ""))
    if args.save_slice:
        save_slice(
            hits,
            args.save_slice,
            description=f"CLIP search: {args.query}",
            objects=bool(field) and not args.save_images,
            overwrite=args.overwrite,
        )
        print(f"saved {len(hits)} hits as slice {args.save_slice!r} of {args.dataset!r}")
    return 0
