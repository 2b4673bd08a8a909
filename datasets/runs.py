"""The engine as a FiftyOne detection evaluation run.

:func:`evaluate_detections` reads boxes in bulk, runs the engine once, writes every
per-object field in bulk and registers the run FiftyOne's way (config, method, results), so
``dataset.list_evaluations()``, ``load_evaluation_results``, ``load_evaluation_view``,
``to_evaluation_patches`` and the App's Model Evaluation panel work on it. The run's results
carry the whole match table, so slices and panels never recompute an IoU.

Fields written for eval key ``KEY`` (FiftyOne's convention, plus the finer outcome):

- on each object of both fields: ``KEY`` (``tp``/``fp``/``fn``; mispredictions count as
  ``fn`` for the ground truth and ``fp`` for the prediction, as FiftyOne's classwise
  matching does), ``KEY_id`` (the matched object's id, ``""`` when none), ``KEY_iou``,
  ``KEY_outcome`` (``tp``/``fn``/``mispredicted``/``fp``/``duplicate``/``ignored``/
  ``below_threshold``), ``KEY_confused_with`` (the other class of a misprediction) and
  ``KEY_tide`` (the object's TIDE error type, ``Cls``/``Loc``/``Both``/``Dupe``/``Bkg`` for a
  prediction, ``Miss`` for ground truth, None when it is no error; see
  :mod:`detection_debugger.evaluation.tide`);
- on each sample: ``KEY_tp``, ``KEY_fp``, ``KEY_fn``.

The results also keep TIDE's summary of the whole run (``DebuggerResults.tide``) and the score
thresholds chosen in the panel are stored with the run (:func:`save_thresholds`).
"""

from __future__ import annotations

import base64
import io

import fiftyone.core.fields as fof
import fiftyone.core.odm as fodm
import fiftyone.utils.eval.coco as fouc
import fiftyone.utils.eval.detection as foud
import numpy as np

from detection_debugger.datasets.arrays import detection_set_from_view
from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.id_lookup import IdLookup
from detection_debugger.datasets.object_writes import split_per_sample, write_object_attributes
from detection_debugger.datasets.run_index import (
    delete_run_index,
    rename_run_index,
    save_run_index,
)
from detection_debugger.datasets.state import (
    INFO_KEY,
    dataset_lock,
    require_complete,
    writes_dataset,
)
from detection_debugger.evaluation import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    EvaluationResult,
    MatchTable,
    Outcome,
    TideResult,
    TideTable,
    accumulate,
)
from detection_debugger.evaluation.image_slices import ImageSliceIndex
from detection_debugger.evaluation.table_storage import pack_arrays, unpack_arrays
from detection_debugger.formats.progress import ProgressCounter

__all__ = [
    "METHOD",
    "DebuggerEvaluation",
    "DebuggerEvaluationConfig",
    "DebuggerResults",
    "check_run",
    "debugger_runs",
    "evaluate_detections",
    "load_run",
    "register_backend",
    "save_thresholds",
    "saved_thresholds",
]

METHOD = "detection-debugger"
OBJECT_SUFFIXES = ("_outcome", "_confused_with", "_tide")


class DebuggerEvaluationConfig(foud.DetectionEvaluationConfig):
    """Parameters of a detection-debugger evaluation run.

    Args:
        pred_field: the ``Detections`` field of predictions.
        gt_field: the ``Detections`` field of ground truth.
        iou (0.5): IoU threshold of the per-object outcomes and the confusion matrix.
        score_threshold (0.0): predictions below it are left out of the outcomes.
        classes (None): class names in order (default: labels seen in both fields).
    """

    def __init__(self, pred_field, gt_field, iou=0.5, score_threshold=0.0, classes=None, **kwargs):
        kwargs.pop("classwise", None)
        super().__init__(pred_field, gt_field, iou=iou, classwise=True, **kwargs)
        self.score_threshold = score_threshold
        self.classes = classes
        self.compute_mAP = True
        self.iou_threshs = [float(t) for t in IOU_THRESHOLDS]

    @property
    def method(self):
        return METHOD


class DebuggerEvaluation(foud.DetectionEvaluation):
    """The run's method: fields, rename and cleanup (evaluation itself is done in bulk)."""

    def register_samples(self, samples, eval_key, dynamic=True):
        super().register_samples(samples, eval_key, dynamic=dynamic)
        if eval_key is None:
            return
        dataset = dataset_of(samples)
        for field in (self.config.gt_field, self.config.pred_field):
            for suffix in OBJECT_SUFFIXES:
                dataset.add_sample_field(f"{field}.detections.{eval_key}{suffix}", fof.StringField)

    def evaluate(self, doc, eval_key=None):
        """Per sample there is nothing to do: FiftyOne's ``evaluate_detections`` calls this
        for each sample, then :meth:`generate_results`, where the engine evaluates the whole
        collection at once (one read of every box, one bulk write of every field). The
        per-sample counts FiftyOne writes from these empty match lists are overwritten there."""
        return []

    def _extra_fields(self, eval_key):
        return [
            f"{field}.detections.{eval_key}{suffix}"
            for field in (self.config.pred_field, self.config.gt_field)
            for suffix in OBJECT_SUFFIXES
        ]

    def get_fields(self, samples, eval_key, include_custom_metrics=True):
        fields = super().get_fields(samples, eval_key, include_custom_metrics)
        return fields + self._extra_fields(eval_key)

    def cleanup(self, samples, eval_key):
        super().cleanup(samples, eval_key)
        dataset = dataset_of(samples)
        delete_run_index(dataset, eval_key)
        for path in self._extra_fields(eval_key):
            if dataset.has_field(path):
                dataset.delete_sample_field(path, error_level=1)
        if saved_thresholds(dataset, eval_key) is not None:
            _set_thresholds_doc(dataset, eval_key, None)

    def rename(self, samples, eval_key, new_eval_key):
        super().rename(samples, eval_key, new_eval_key)
        dataset = dataset_of(samples)
        rename_run_index(dataset, eval_key, new_eval_key)
        saved = saved_thresholds(dataset, eval_key)
        if saved is not None:
            _set_thresholds_doc(dataset, new_eval_key, saved)
            _set_thresholds_doc(dataset, eval_key, None)

    def generate_results(self, samples, matches, eval_key=None, classes=None, **kwargs):
        """The engine on the whole collection: what ``dataset.evaluate_detections(...,
        method="detection-debugger")`` returns (FiftyOne then saves the run)."""
        config = self.config
        if classes is not None:
            config.classes = list(classes)
        require_complete(dataset_of(samples), (config.gt_field, config.pred_field))
        if eval_key is None:
            return _evaluate_in_bulk(samples, self, None)
        with dataset_lock(dataset_of(samples), "evaluate"):
            return _evaluate_in_bulk(samples, self, eval_key)


class DebuggerResults(fouc.COCODetectionResults):
    """FiftyOne COCO detection results plus this engine's summary and match table.

    Args:
        summary: :meth:`EvaluationResult.to_dict` of the whole run.
        tide: TIDE's summary of the whole run (:func:`tide_summary`).
        match_table: the :class:`MatchTable` arrays and the label ids of its rows,
            packed (:mod:`~detection_debugger.evaluation.table_storage`) then base64.
        sample_ids: ids of the evaluated samples, in the table's image order.
    """

    def __init__(
        self,
        samples,
        config,
        eval_key,
        matches,
        precision,
        recall,
        iou_threshs,
        classes,
        recall_sweep=None,
        thresholds=None,
        missing=None,
        custom_metrics=None,
        backend=None,
        summary=None,
        match_table=None,
        sample_ids=None,
        tide=None,
    ):
        super().__init__(
            samples,
            config,
            eval_key,
            matches or [],
            precision,
            recall,
            iou_threshs,
            classes,
            recall_sweep=recall_sweep,
            thresholds=thresholds,
            missing=missing,
            custom_metrics=custom_metrics,
            backend=backend,
        )
        self.summary = summary
        self.match_table = match_table
        self.sample_ids = list(sample_ids or [])
        self.tide = tide
        self._table = None
        self._tide_table = None
        self._label_ids: dict = {}
        self._id_lookups: dict = {}
        self._sample_index = None
        if matches is None:  # built from the match table when first asked for
            for name in MATCH_COLUMNS:
                self.__dict__.pop(name, None)

    def __getattr__(self, name):
        """FiftyOne's match columns (``ytrue``, ``ypred``...), built on first use."""
        if name not in MATCH_COLUMNS or "match_table" not in self.__dict__:
            raise AttributeError(name)
        table = self.table()
        columns = match_columns(
            table,
            self.label_ids("gt").astype(str),
            self.label_ids("pred").astype(str),
            list(self.classes),
            self.missing,
        )
        for key, column in columns.items():
            self.__dict__[key] = np.asarray(column.tolist())  # as FiftyOne builds them
        return self.__dict__[name]

    def attributes(self):
        # The match columns are not stored: at 100k images they would be millions of JSON
        # values written with the run and parsed by every load (the table holds them).
        stored = [a for a in super().attributes() if a not in MATCH_COLUMNS]
        return stored + ["summary", "match_table", "sample_ids", "tide"]

    @classmethod
    def _from_dict(cls, d, samples, config, eval_key, **kwargs):
        extra = {
            "summary": d.get("summary"),
            "match_table": d.get("match_table"),
            "sample_ids": d.get("sample_ids"),
            "tide": d.get("tide"),
        }
        if "ytrue" in d:  # stored by an earlier version, with the columns
            return super()._from_dict(d, samples, config, eval_key, **extra, **kwargs)
        return cls(
            samples,
            config,
            eval_key,
            None,
            d["precision"],
            d["recall"],
            d["iou_threshs"],
            d.get("classes"),
            recall_sweep=d.get("recall_sweep"),
            thresholds=d.get("thresholds"),
            missing=d.get("missing"),
            custom_metrics=d.get("custom_metrics"),
            **extra,
            **kwargs,
        )

    @property
    def result(self) -> EvaluationResult:
        """The engine's result for the whole run (stats, per class, confusion matrix)."""
        return EvaluationResult.from_dict(self.summary)

    def _arrays(self) -> dict[str, np.ndarray]:
        raw = base64.b64decode(self.match_table)
        if raw.startswith(b"PK"):  # stored by an earlier version: np.savez_compressed
            with np.load(io.BytesIO(raw)) as arrays:
                return dict(arrays)
        return unpack_arrays(raw)

    def table(self) -> MatchTable:
        """The stored match table (decoded once)."""
        if self._table is None:
            arrays = self._arrays()
            self._table = MatchTable.from_arrays(arrays)
            self._label_ids = {side: arrays[f"ids.{side}"] for side in ("gt", "pred")}
        return self._table

    def tide_table(self) -> TideTable:
        """TIDE's matching of the run's boxes (built once; any image slice is then cheap)."""
        if self._tide_table is None:
            self._tide_table = TideTable.build(self.table().data)
        return self._tide_table

    def sample_rows(self, sample_ids) -> tuple[np.ndarray, int]:
        """``(I,)`` bool mask of the given samples in the table, and how many are not in it."""
        if self._sample_index is None:
            self._sample_index = {sid: i for i, sid in enumerate(self.sample_ids)}
        index = self._sample_index
        rows = [index[sid] for sid in sample_ids if sid in index]
        mask = np.zeros(len(self.sample_ids), dtype=bool)
        mask[rows] = True
        return mask, len(sample_ids) - len(rows)

    def label_ids(self, side: str) -> np.ndarray:
        """Label ids (``S24`` bytes) of the table's ``"gt"`` or ``"pred"`` rows."""
        self.table()
        return self._label_ids[side]

    def label_positions(self, side: str, label_ids) -> np.ndarray:
        """Row of each label id in the table's ``"gt"`` or ``"pred"`` objects, -1 for the ones
        the run did not evaluate."""
        if self._id_lookups.get(side) is None:
            self._id_lookups[side] = IdLookup(self.label_ids(side))
        return self._id_lookups[side].positions(label_ids)

    def label_rows(self, side: str, label_ids) -> tuple[np.ndarray, int]:
        """``(G,)`` or ``(P,)`` bool mask of the given label ids (``side`` is ``"gt"`` or
        ``"pred"``), and how many of them the run did not evaluate."""
        positions = self.label_positions(side, label_ids)
        data = self.table().data
        mask = np.zeros(len(data.gt_ids if side == "gt" else data.pred_ids), dtype=bool)
        mask[positions[positions >= 0]] = True
        return mask, int((positions < 0).sum())

    def evaluate_samples(self, sample_ids) -> EvaluationResult:
        """Exact re-evaluation of a subset of the evaluated samples, from the match table.

        Raises:
            ValueError: some of ``sample_ids`` were not part of the run.
        """
        mask, outside = self.sample_rows(list(sample_ids))
        if outside:
            raise ValueError(f"{outside} samples are not in evaluation {self.key!r}")
        return self.table().evaluate(mask)


def _encode_table(table: MatchTable, ids: dict) -> str:
    """The table's arrays and the label ids of its rows (``ids.gt``, ``ids.pred``), packed
    (:func:`~detection_debugger.evaluation.table_storage.pack_arrays`) then base64."""
    arrays = table.to_arrays()
    for side in ("gt", "pred"):
        arrays[f"ids.{side}"] = np.array(ids[side], dtype="S24")
    return base64.b64encode(pack_arrays(arrays)).decode("ascii")


# long: FiftyOne's per-object field conventions, field by field, over shared arrays
def _object_fields(table: MatchTable, ids: dict, classes: list[str]) -> dict[str, dict]:
    """Per-object values of both fields: ``{"gt"|"pred": {suffix: flat array}}``."""
    data, out = table.data, table.outcomes
    gt_ids, pred_ids = np.array(ids["gt"], dtype=object), np.array(ids["pred"], dtype=object)
    names = np.array(classes + [None], dtype=object)
    # FiftyOne's convention: crowd regions absorb predictions as "tp" matches.
    crowd_match = out.pred_outcome == Outcome.IGNORED
    pred_partner = np.where(out.pred_match >= 0, out.pred_match, -1)
    pred_eval = np.where(
        np.isin(out.pred_outcome, (Outcome.TP, Outcome.IGNORED)),
        "tp",
        np.where(out.pred_outcome == Outcome.BELOW_THRESHOLD, None, "fp"),
    ).astype(object)
    show_pred_match = np.isin(out.pred_outcome, (Outcome.TP, Outcome.IGNORED))
    pred_id = np.where(
        show_pred_match, gt_ids[np.maximum(pred_partner, 0)] if len(gt_ids) else "", ""
    )
    pred_iou = np.where(show_pred_match, out.pred_iou, np.nan)
    pred_confused = np.where(
        out.pred_outcome == Outcome.MISPREDICTED,
        names[np.where(pred_partner >= 0, data.gt_class[np.maximum(pred_partner, 0)], -1)]
        if len(gt_ids)
        else None,
        None,
    )

    # Crowd regions: "tp" with the first (highest-scored) prediction they absorbed.
    gt_eval = np.where(out.gt_outcome == Outcome.TP, "tp", "fn").astype(object)
    gt_id = np.where(
        out.gt_outcome == Outcome.TP,
        pred_ids[np.maximum(out.gt_match, 0)] if len(pred_ids) else "",
        "",
    )
    gt_iou = np.where(out.gt_outcome == Outcome.TP, out.gt_iou, np.nan)
    absorbed = np.flatnonzero(crowd_match)
    if len(absorbed):
        order = absorbed[np.lexsort((absorbed, -data.pred_scores[absorbed]))]
        crowd_rows, first = np.unique(out.pred_match[order], return_index=True)
        gt_eval[crowd_rows] = "tp"
        gt_id[crowd_rows] = pred_ids[order[first]]
        gt_iou[crowd_rows] = out.pred_iou[order[first]]
    gt_partner = out.gt_match
    gt_confused = np.where(
        out.gt_outcome == Outcome.MISPREDICTED,
        names[np.where(gt_partner >= 0, data.pred_class[np.maximum(gt_partner, 0)], -1)]
        if len(pred_ids)
        else None,
        None,
    )

    def outcome_names(codes):
        return np.array([str(o) for o in Outcome], dtype=object)[codes]

    def iou_values(values):
        return np.array([None if np.isnan(v) else float(v) for v in values], dtype=object)

    return {
        "pred": {
            "": pred_eval,
            "_id": pred_id.astype(object),
            "_iou": iou_values(pred_iou),
            "_outcome": outcome_names(out.pred_outcome),
            "_confused_with": pred_confused,
        },
        "gt": {
            "": gt_eval,
            "_id": gt_id.astype(object),
            "_iou": iou_values(gt_iou),
            "_outcome": outcome_names(out.gt_outcome),
            "_confused_with": gt_confused,
        },
    }


MATCH_COLUMNS = ("ytrue", "ypred", "ious", "confs", "ytrue_ids", "ypred_ids")


def match_columns(table: MatchTable, gt_ids, pred_ids, classes: list[str], missing: str) -> dict:
    """FiftyOne's flat match list as its results hold it (``ytrue``, ``ypred``, ``ious``,
    ``confs``, ``ytrue_ids``, ``ypred_ids``; unmatched sides ``missing`` or None), built with
    numpy from the match table.

    True positives and mispredictions are pairs (so FiftyOne's confusion matrix shows the
    mispredictions), undetected objects have no prediction, ghosts (false positives and
    duplicates) no ground truth; ground truth first, in table order, then the ghosts.
    """
    data, out = table.data, table.outcomes
    names = np.array(list(classes) + [missing], dtype=object)
    gt_rows = np.flatnonzero(~data.gt_crowd)
    partner = out.gt_match[gt_rows]
    paired = partner >= 0
    safe = np.where(paired, partner, 0)
    ghosts = np.flatnonzero(np.isin(out.pred_outcome, (Outcome.FP, Outcome.DUPLICATE)))
    gt_ids = np.asarray(gt_ids, dtype=object)
    pred_ids = np.asarray(pred_ids, dtype=object)
    none = np.full(len(ghosts), None, dtype=object)

    def pair_values(values: np.ndarray) -> np.ndarray:
        column = np.full(len(gt_rows), None, dtype=object)
        column[paired] = values[paired]
        return column

    pred_class = data.pred_class[safe] if len(data.pred_class) else np.zeros(len(safe), int)
    ypred = np.where(paired, pred_class, len(classes))
    scores = data.pred_scores[safe] if len(data.pred_scores) else np.zeros(len(safe))
    matched_pred_ids = pred_ids[safe] if len(pred_ids) else np.full(len(safe), None, object)
    return {
        "ytrue": np.concatenate([names[data.gt_class[gt_rows]], names[[-1] * len(ghosts)]]),
        "ypred": np.concatenate([names[ypred], names[data.pred_class[ghosts]]]),
        "ious": np.concatenate([pair_values(out.gt_iou[gt_rows].astype(object)), none]),
        "confs": np.concatenate(
            [pair_values(scores.astype(object)), data.pred_scores[ghosts].astype(object)]
        ),
        "ytrue_ids": np.concatenate([gt_ids[gt_rows], none]),
        "ypred_ids": np.concatenate([pair_values(matched_pred_ids), pred_ids[ghosts]]),
    }


def tide_summary(tide: TideResult) -> dict:
    """What the results keep of TIDE: :meth:`TideResult.to_dict` plus ``ap`` (TIDE's AP50,
    x100) and ``counts`` (errors per main type)."""
    return {**tide.to_dict(), "ap": tide.ap, "counts": dict(tide.counts)}


def _tide_values(errors: np.ndarray) -> np.ndarray:
    """Per-object TIDE types as stored: the type, None for no error."""
    out = np.asarray(errors).astype(object)
    out[out == ""] = None
    return out


def _write_object_fields(
    samples, table, ids, fields, classes, eval_key: str, tide, counter=None
) -> None:
    """Writes every per-object field of both label fields (``fields``: ``(gt_field,
    pred_field)``; ``tide``: the run's :class:`TideResult`) and the per-sample counts; each
    batch of samples written is told to ``counter`` (a :class:`ProgressCounter`)."""
    gt_field, pred_field = fields
    data = table.data
    values = _object_fields(table, ids, classes)
    values["pred"]["_tide"] = _tide_values(tide.pred_error)
    values["gt"]["_tide"] = _tide_values(tide.gt_error)
    counts = {
        "_tp": (data.pred_image, values["pred"][""] == "tp"),
        "_fp": (data.pred_image, values["pred"][""] == "fp"),
        "_fn": (data.gt_image, values["gt"][""] == "fn"),
    }
    per_sample_counts = {
        f"{eval_key}{suffix}": np.bincount(image[flags], minlength=data.num_images).tolist()
        for suffix, (image, flags) in counts.items()
    }
    fields = {"gt": (gt_field, data.gt_image), "pred": (pred_field, data.pred_image)}
    for side, (field, image) in fields.items():
        per_sample = {
            f"{eval_key}{suffix}": split_per_sample(flat, image, data.num_images)
            for suffix, flat in values[side].items()
        }
        label = f"writing {field}.detections.{eval_key}*"
        on_batch = None if counter is None else (lambda n, label=label: counter.add(n, label))
        write_object_attributes(
            samples,
            field,
            ids["samples"],
            per_sample,
            on_batch,
            sample_values=per_sample_counts if side == "pred" else None,
        )


def _evaluate_in_bulk(samples, method: DebuggerEvaluation, eval_key: str | None, counter=None):
    """Reads every box of ``samples`` in one query, runs the engine, writes every field in
    bulk (with an ``eval_key``) and returns the run's results (not saved). ``counter``: a
    :class:`ProgressCounter` of 4 units per sample (reading, matching, writing each field)."""
    config = method.config
    gt_field, pred_field = config.gt_field, config.pred_field
    counter = counter or ProgressCounter(None, 0)
    counter.start("reading boxes")
    on_batch = None if counter.total == 0 else (lambda n: counter.add(n, "reading boxes"))
    data, ids = detection_set_from_view(samples, gt_field, pred_field, config.classes, on_batch)
    counter.start("matching")
    classes = list(data.class_names)
    table = MatchTable.build(data, config.iou, config.score_threshold)
    summary = table.evaluate()
    tide = TideTable.build(data).errors()
    counter.add(data.num_images, "writing per-object fields" if eval_key else "matched")

    if eval_key is not None:
        fields = (gt_field, pred_field)
        _write_object_fields(samples, table, ids, fields, classes, eval_key, tide, counter)
        index = ImageSliceIndex.build(table)
        save_run_index(dataset_of(samples), eval_key, index, ids["samples"])
    precision, recall = accumulate(table.coco)
    return DebuggerResults(
        samples,
        config,
        eval_key,
        None,  # FiftyOne's match columns: built from the table when asked for
        precision=precision[:, :, :, 0, -1].transpose(0, 2, 1),  # (T, K, R)
        recall=RECALL_THRESHOLDS,
        iou_threshs=IOU_THRESHOLDS,
        classes=classes,
        recall_sweep=recall[:, :, 0, -1],  # (T, K)
        backend=method,
        summary=summary.to_dict(),
        match_table=_encode_table(table, ids),
        sample_ids=ids["samples"],
        tide=tide_summary(tide),
    )


@writes_dataset("evaluate", ("gt_field", "pred_field"), unless_none="eval_key")
def evaluate_detections(
    samples,
    pred_field: str,
    gt_field: str = "ground_truth",
    eval_key: str | None = None,
    iou: float = 0.5,
    score_threshold: float = 0.0,
    classes: list[str] | None = None,
    progress=None,
) -> DebuggerResults:
    """Evaluates ``pred_field`` against ``gt_field`` on ``samples`` with the engine.

    With an ``eval_key``, writes the per-object and per-sample fields and saves the run (an
    existing run with that key is replaced). Returns FiftyOne-compatible results.

    ``progress``: a :data:`~detection_debugger.formats.progress.Progress` callback, told
    after reading the boxes, after matching and after each batch of per-object values
    written (4 units per sample; the last call, ``done == total``, once the run is saved).
    """
    config = DebuggerEvaluationConfig(
        pred_field, gt_field, iou=iou, score_threshold=score_threshold, classes=classes
    )
    method = config.build()
    method.ensure_requirements()
    dataset = dataset_of(samples)
    if eval_key is not None and dataset.has_evaluation(eval_key):
        dataset.delete_evaluation(eval_key)
    if eval_key is not None:
        method.register_run(samples, eval_key)
        method.register_samples(samples, eval_key)

    counter = ProgressCounter(progress, 4 * len(samples) if progress else 0)
    results = _evaluate_in_bulk(samples, method, eval_key, counter)
    if eval_key is not None:
        counter.start("saving the run")
        method.save_run_results(samples, eval_key, results)
        method.add_fields_to_sidebar_group(samples, eval_key, omit_fields=(pred_field, gt_field))
    counter.finish("done")
    return results


def debugger_runs(dataset) -> list[str]:
    """Keys of the dataset's evaluation runs made by this plugin."""
    return [
        key
        for key in dataset.list_evaluations()
        if getattr(dataset.get_evaluation_info(key).config, "method", None) == METHOD
    ]


def _not_ours(eval_key: str) -> str:
    return (
        f"evaluation {eval_key!r} was not made by detection-debugger: run "
        "evaluate_detections of this plugin to re-evaluate slices exactly"
    )


def check_run(dataset, eval_key: str) -> None:
    """Checks that ``eval_key`` is a run of this plugin (from its info: no results loaded).

    Raises:
        ValueError: no such run, or a run made by another method.
    """
    if not dataset.has_evaluation(eval_key):
        keys = ", ".join(debugger_runs(dataset)) or "none"
        raise ValueError(f"dataset {dataset.name!r} has no evaluation {eval_key!r} (runs: {keys})")
    method = getattr(dataset.get_evaluation_info(eval_key).config, "method", None)
    if method != METHOD:
        raise ValueError(_not_ours(eval_key))


def load_run(dataset, eval_key: str) -> DebuggerResults:
    """The results of a run of this plugin (cached by FiftyOne with its decoded table).

    Raises:
        ValueError: no such run, or a run made by another method.
    """
    check_run(dataset, eval_key)
    results = dataset.load_evaluation_results(eval_key, cache=True)
    if not isinstance(results, DebuggerResults):
        raise ValueError(_not_ours(eval_key))
    return results


def _set_thresholds_doc(dataset, eval_key: str, value) -> None:
    """Sets (None: removes) the stored thresholds of ``eval_key``: one atomic update of the
    dataset's document, as :mod:`detection_debugger.datasets.state` does."""
    path = f"info.{INFO_KEY}.thresholds.{eval_key}"
    update = {"$unset": {path: ""}} if value is None else {"$set": {path: value}}
    fodm.get_db_conn().datasets.update_one({"name": dataset.name}, update)
    dataset.reload()


def save_thresholds(dataset, eval_key: str, threshold=None, class_thresholds=None) -> None:
    """Stores score thresholds with the run ``eval_key`` (``threshold``: one for every
    class, None for the run's own; ``class_thresholds``: ``{class: score}`` overrides), in
    ``dataset.info["detection_debugger"]["thresholds"][eval_key]``.

    Raises:
        ValueError: no such run.
    """
    load_run(dataset, eval_key)
    classes = [[str(k), float(v)] for k, v in (class_thresholds or {}).items()]
    value = {"threshold": None if threshold is None else float(threshold), "classes": classes}
    _set_thresholds_doc(dataset, eval_key, value)


def saved_thresholds(dataset, eval_key: str) -> dict | None:
    """``{"threshold": float | None, "classes": {class: score}}`` stored with the run, or
    None (read from the database, not from the cached info)."""
    path = f"info.{INFO_KEY}.thresholds.{eval_key}"
    doc = fodm.get_db_conn().datasets.find_one({"name": dataset.name}, {path: 1}) or {}
    value = ((doc.get("info") or {}).get(INFO_KEY) or {}).get("thresholds", {}).get(eval_key)
    if value is None:
        return None
    return {"threshold": value.get("threshold"), "classes": dict(value.get("classes") or [])}


def register_backend() -> None:
    """Makes ``method="detection-debugger"`` a FiftyOne detection evaluation method, so
    ``dataset.evaluate_detections(pred, gt, eval_key=..., method="detection-debugger")``
    runs this engine (FiftyOne's documented way to add a method). Done when this module is
    imported and when the plugin registers."""
    import fiftyone as fo

    fo.evaluation_config.detection_backends[METHOD] = {
        "config_cls": f"{DebuggerEvaluationConfig.__module__}.DebuggerEvaluationConfig"
    }


register_backend()
