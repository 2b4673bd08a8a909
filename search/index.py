"""CLIP search over images and objects: FiftyOne Brain similarity indexes built from our
cached embeddings, top-k queries restricted to a view, and hits saved as slices.

An index is a ``compute_similarity`` run (default in-process ``sklearn`` backend, cosine)
registered under a brain key (:func:`index_key`: ``clip_images``, ``clip_<field>``), so
the App's own "sort by similarity" and "search by text" work on it. With pretrained or
checkpoint weights the run records the zoo model ``open-clip-torch`` and its
``clip_model``/``pretrained`` arguments, which is how the App embeds a text query with
the same weights. Random-weight models (tests) support prompts only through
:func:`search` with the model passed in.

Ranking is the index backend's, so Python, CLI and App agree: FiftyOne's sklearn backend
ranks by cosine similarity after centring the indexed embeddings on their mean (of the
searched items for a text/vector query, of the whole index for a query by ids, where the
query rows are centred too); other backends (Qdrant, Milvus...) use plain cosine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from detection_debugger.datasets.fiftyone_private import is_patches_view, root_dataset_of
from detection_debugger.search.clip_spec import DEFAULT_MARGIN, ZOO_MODEL, hf_offline
from detection_debugger.search.embeddings import embed_images, embed_patches

__all__ = ["build_index", "ensure_index", "index_key", "save_slice", "search"]

logger = logging.getLogger(__name__)


def index_key(patches_field: str | None = None) -> str:
    """The default brain key of the index over images (None) or objects of a field."""
    return f"clip_{patches_field}" if patches_field else "clip_images"


def build_index(
    samples,
    model,
    patches_field: str | None = None,
    brain_key: str | None = None,
    margin: float = DEFAULT_MARGIN,
    cache_dir=None,
    progress=None,
):
    """Embeds the images (or the objects of ``patches_field``) of ``samples`` (cached: only
    new or changed items are computed) and puts them into the similarity index
    ``brain_key`` of the dataset.

    An existing index built with the same weights keeps its other items (those outside
    ``samples``) minus the ones deleted from the dataset; an index built with other weights
    (or random ones) is replaced.

    Returns:
        ``(SimilarityIndex, EmbeddingTable)``
    """
    if patches_field:
        table = embed_patches(samples, model, patches_field, margin, cache_dir, progress)
    else:
        table = embed_images(samples, model, cache_dir, progress)
    key = brain_key or index_key(patches_field)
    dataset = root_dataset_of(samples)
    index = _compatible_index(dataset, key, model, patches_field)
    if index is None:
        index = _new_index(dataset, key, model, patches_field)
    else:
        _drop_deleted(dataset, index, patches_field)
    if len(table.vectors):
        index.add_to_index(table.vectors, table.sample_ids, label_ids=table.label_ids)
    index.save()
    return index, table


def ensure_index(samples, model, patches_field: str | None = None, brain_key=None, **kwargs):
    """The index ``brain_key``, (re)built only when it is missing, was built with other
    weights, or lacks items of ``samples`` (then :func:`build_index` on ``samples``)."""
    key = brain_key or index_key(patches_field)
    index = _compatible_index(root_dataset_of(samples), key, model, patches_field)
    if index is not None:
        if patches_field:
            path = (
                f"{patches_field}.id"
                if is_patches_view(samples)
                else f"{patches_field}.detections.id"
            )
            wanted, have = samples.values(path, unwind=True), index.label_ids
        else:
            wanted = samples.values("sample_id" if is_patches_view(samples) else "id")
            have = index.sample_ids
        if set(wanted) <= set(have.tolist() if have is not None else ()):
            return index
    return build_index(samples, model, patches_field, key, **kwargs)[0]


def _compatible_index(dataset, key: str, model, patches_field: str | None):
    """The index ``key`` if it holds vectors of ``model``'s weights over the same items."""
    if not dataset.has_brain_run(key):
        return None
    config = dataset.get_brain_info(key).config
    kwargs = model.spec.zoo_kwargs()
    same = (
        kwargs is not None  # random weights: never reuse
        and getattr(config, "model", None) == ZOO_MODEL
        and (getattr(config, "model_kwargs", None) or {}) == kwargs
        and getattr(config, "patches_field", None) == (patches_field or None)
    )
    return dataset.load_brain_results(key) if same else None


def _new_index(dataset, key: str, model, patches_field: str | None):
    import fiftyone.brain as fob

    if dataset.has_brain_run(key):
        dataset.delete_brain_run(key)
    kwargs = model.spec.zoo_kwargs()
    with hf_offline():  # the zoo model is loaded once to check prompt support
        return fob.compute_similarity(
            dataset,
            patches_field=patches_field or None,
            embeddings=False,
            brain_key=key,
            model=ZOO_MODEL if kwargs else model,
            model_kwargs=kwargs,
            backend="sklearn",
            progress=False,
        )


def _drop_deleted(dataset, index, patches_field: str | None) -> None:
    if patches_field:
        alive = set(dataset.values(f"{patches_field}.detections.id", unwind=True))
        gone = [i for i in index.label_ids if i not in alive]
        if gone:
            index.remove_from_index(label_ids=gone)
    else:
        alive = set(dataset.values("id"))
        gone = [i for i in index.sample_ids if i not in alive]
        if gone:
            index.remove_from_index(sample_ids=gone)


def search(
    samples,
    query: str | Sequence[str] | np.ndarray,
    k: int = 50,
    patches_field: str | None = None,
    brain_key: str | None = None,
    model=None,
    objects: bool = True,
):
    """The ``k`` items of ``samples`` most similar to ``query``, best first.

    Args:
        samples: where to search: a dataset or any view of it (e.g. the undetected
            crosswalks of an evaluation, a saved slice); only items shown in it are ranked
        query: a text (embedded as ``"A photo of <text>"``), a list of sample ids (images)
            or label ids (objects) whose mean embedding is the query, or a vector ``[D]``
        k: number of hits
        patches_field: search objects of this field (index ``clip_<field>``) instead of images
        brain_key: the index (default :func:`index_key`)
        model: the model that built the index; needed for a text query on an index without a
            stored zoo model (random weights), otherwise the index loads its own
        objects: with ``patches_field``: a patches view of the hit objects (True) or their
            images with only the hit objects of ``patches_field`` shown (False)

    Returns:
        an ordered view (``Select(ids, ordered=True)``: independent of the index once made)
    """
    dataset = root_dataset_of(samples)
    key = brain_key or index_key(patches_field)
    if not dataset.has_brain_run(key):
        what = f"objects of {patches_field!r}" if patches_field else "images"
        raise ValueError(f"no similarity index {key!r} over the {what}: compute embeddings first")
    index = dataset.load_brain_results(key)
    field = index.config.patches_field
    if (patches_field or None) != field:
        raise ValueError(f"index {key!r} is over {field or 'images'}, not {patches_field}")
    view = samples
    if field and objects and not is_patches_view(samples):
        view = samples.to_patches(field)
    if isinstance(query, str):
        if model is None:
            with hf_offline():
                query = _embed_text(index, query)
        else:
            query = model.embed_prompts([query])
    elif not isinstance(query, np.ndarray):
        query = list(query)
        if not query:
            raise ValueError("no example ids given")
    if view is dataset:  # the whole index: no restriction to compute
        return index.sort_by_similarity(query, k=k)
    index.use_view(view)
    try:
        return index.sort_by_similarity(query, k=k)
    finally:
        index.clear_view()


def _embed_text(index, text: str) -> np.ndarray:
    if not index.supports_prompts:
        raise ValueError(
            f"index {index.key!r} was built by a model that cannot be reloaded (random weights):"
            " pass model= to search by text"
        )
    model = index.get_model()
    with model:
        return model.embed_prompts([text])


def save_slice(
    hits, name: str, description: str | None = None, objects: bool = True, overwrite=False
):
    """Saves search hits as the slice ``name`` (through :func:`detection_debugger.datasets.slices.
    save_slice`) and returns it.

    ``objects=True`` saves ``hits`` as they are (a patches view of the hit objects, or
    images with only the hit objects shown: an object slice); ``objects=False`` saves the
    images of the hits, in rank order, with all their labels (an image slice).

    Raises:
        ValueError: the slice exists and ``overwrite`` is False
    """
    from detection_debugger.datasets.slices import save_slice as save

    dataset = root_dataset_of(hits)
    view = hits
    if not objects:
        ids = hits.values("sample_id" if is_patches_view(hits) else "id")
        view = dataset.select(list(dict.fromkeys(ids)), ordered=True)
    save(dataset, name, view, description=description, overwrite=overwrite)
    return dataset.load_saved_view(name)
