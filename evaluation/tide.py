"""TIDE error decomposition (Bolya et al., ECCV 2020), exactly as ``tidecv`` 1.0.1 computes it.

TIDE splits the AP50 a detector loses into six main error types and two special ones. A
prediction that is not a true positive gets the first type whose test it passes (IoUs with
the non-crowd ground truth of its image; foreground threshold ``t_f = 0.5``, background
threshold ``t_b = 0.1``):

* ``Loc``: ``t_b <= `` its best IoU with an object of its class ``<= t_f``;
* ``Cls``: IoU ``>= t_f`` with an object of another class;
* ``Dupe``: IoU ``>= t_f`` with an object of its class already taken by a higher-scoring
  prediction;
* ``Bkg``: no object overlaps it by more than ``t_b`` (every unmatched prediction of an image
  without ground truth is ``Bkg``);
* ``Both``: anything else (wrong class and badly placed);

and an object no prediction found, nor targeted with a ``Cls``/``Loc`` error, is a ``Miss``.
The dAP of a type is the AP50 after an oracle fixes every error of that type, minus the AP50
(in AP points, x100; negative gains are clipped to 0, as ``tidecv`` does). The oracles: ``Cls``
and ``Loc`` turn, for each still-unmatched object, its highest-scoring ``Cls``/``Loc``
prediction into a true positive (of the object's class for ``Cls``) and drop the others;
``Both``, ``Dupe``, ``Bkg`` drop their predictions; ``Miss`` removes the missed objects from the
ground truth. ``FalsePos`` ranks every true positive above every false positive;
``FalseNeg`` removes every unmatched object. Per class, the same numbers are computed on that
class's AP inside the same run (a ``Cls`` fix moves a prediction to its object's class).

What the engine copies from ``tidecv`` quirk for quirk, because ``tidecv`` is the reference:

* matching is per image, predictions in descending score order (ties: input order), at most
  ``max_dets = 100`` predictions per *image* across classes (the rest are dropped: not
  counted, not errors); each takes the unmatched object of its class with the highest IoU
  ``>= 0.5``, ties going to the *earlier* object; crowd regions take no part in it;
* afterwards an unmatched prediction whose crowd IoU (intersection over the prediction's area)
  with a crowd region of its class is *strictly* above 0.5 is ignored: it leaves the AP, but
  it still gets an error type (counted, and a ``Cls``/``Loc`` fix can make it a true positive);
* a re-evaluation lists the error-derived points first and the true positives after them, so
  among equal scores false positives rank above true positives there, while the base AP keeps
  the matching order (image, then score): equal scores can make a fix "gain" a little, or lose
  (hence the clipping);
* TIDE's AP is COCO's 101-point interpolated AP of each class, averaged over the classes that
  have ground truth *or* counted predictions (a class with predictions and no ground truth
  counts as 0); a fix that leaves a class with neither drops that class from the average
  (for instance ``Miss`` on a class whose objects were all missed and that has no
  predictions). When no class is left the mean is 0 here (``tidecv`` divides by zero).

For the README: TIDE's AP is pycocotools' AP50 (maxDets 100) when every class that has
predictions also has (non-crowd) ground truth, no image has more than 100 predictions, no
IoU lands exactly on 0.5 against a crowd region nor ties between two objects, and no recall
lands exactly on one of the ten thresholds where TIDE's ``x / 100`` and pycocotools'
``np.linspace(0, 1, 101)`` differ in the last bit (0.35, 0.41, 0.47, 0.57, 0.69, 0.70, 0.82,
0.83, 0.94, 0.95: e.g. 7 of 10 objects found, where TIDE counts one more threshold). Otherwise
TIDE differs: it averages a class with predictions but no ground truth as AP 0 (pycocotools
leaves it out), caps predictions per image rather than per image and class, needs a crowd
IoU strictly above 0.5, and gives IoU ties to the earlier object.

Images are evaluated in ``DetectionSet`` order (ascending id), as ``tidecv`` evaluates a COCO
file whose images are listed by id; objects in row order.

Slices: ``image_mask`` gives exactly what ``tidecv`` reports on those images alone (the
matching is per image, so one :class:`TideTable` serves every image slice). ``gt_mask`` and
``pred_mask`` *restrict*: the objects outside them are removed and TIDE is run on what is
left (equal to ``tidecv`` on the restricted set); unlike :meth:`MatchTable.selection`, the
kept objects are matched again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet, InputError

__all__ = [
    "BACKGROUND_THRESHOLD",
    "FOREGROUND_THRESHOLD",
    "MAIN_ERRORS",
    "SPECIAL_ERRORS",
    "TIDE_MAX_DETS",
    "TideResult",
    "TideTable",
    "restrict_objects",
    "tide_errors",
]

FOREGROUND_THRESHOLD = 0.5
BACKGROUND_THRESHOLD = 0.1
TIDE_MAX_DETS = 100
MAIN_ERRORS = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
SPECIAL_ERRORS = ("FalsePos", "FalseNeg")

# Error codes of predictions (index into MAIN_ERRORS); TP / not evaluated: NONE.
NONE, CLS, LOC, BOTH, DUPE, BKG, MISS = -1, 0, 1, 2, 3, 4, 5
_PRED_TYPES = np.array(list(MAIN_ERRORS[:5]) + [""])  # code -1 -> ""
# tidecv's recall thresholds: [x / 100 for x in range(101)].
_RECALLS = np.array([x / 100 for x in range(101)])


@dataclass(frozen=True)
class TideResult:
    """TIDE's decomposition of one slice.

    Attributes:
        ap: TIDE's AP50 (x100) of the slice.
        main: dAP (AP points) per main error type, keys :data:`MAIN_ERRORS`.
        special: dAP per special error type, keys :data:`SPECIAL_ERRORS`.
        classes: ``{class name: {"main": {...}, "special": {...}}}``, the dAP of that class's
            AP (within the same run).
        class_ap: ``{class name: TIDE's AP50 of the class}`` (x100).
        counts: number of errors of each main type (as ``tidecv``'s ``count_errors``; ignored
            predictions inside crowd regions are classified and counted too).
        pred_error: ``(P,)`` error type of each prediction (``""``: a true positive, or not
            evaluated: outside the slice or beyond the 100 best of its image).
        gt_error: ``(G,)`` ``"Miss"`` or ``""``.
        pred_ignored: ``(P,)`` bool predictions that a crowd region ignores (they have an error
            type but take no part in the AP).
        pred_gt: ``(P,)`` the ground-truth row a prediction is about: its match for a true
            positive, the object of a ``Cls``/``Loc`` error, the taken object of a ``Dupe``;
            else -1.
    """

    ap: float
    main: dict[str, float]
    special: dict[str, float]
    classes: dict[str, dict[str, dict[str, float]]]
    class_ap: dict[str, float]
    counts: dict[str, int]
    pred_error: np.ndarray
    gt_error: np.ndarray
    pred_ignored: np.ndarray
    pred_gt: np.ndarray

    def to_dict(self) -> dict:
        """``{"main": {...}, "special": {...}, "classes": {name: {Cls..Miss, FalsePos,
        FalseNeg}}}`` (the per-class dict holds the eight keys flat)."""
        return {
            "main": dict(self.main),
            "special": dict(self.special),
            "classes": {
                name: {**parts["main"], **parts["special"]} for name, parts in self.classes.items()
            },
        }


@dataclass(frozen=True)
class TideTable:
    """TIDE's matching and error types of a set, computed once; any image slice is then a
    few array operations (:meth:`errors`).

    Attributes:
        data: the evaluated set.
        max_dets: predictions kept per image.
        pred_kept: ``(P,)`` bool among the ``max_dets`` best of its image.
        pred_order: ``(P,)`` position in tidecv's processing order (image, then score, then
            row); used to break score ties.
        pred_tp: ``(P,)`` bool matched.
        pred_ignored: ``(P,)`` bool ignored by a crowd region.
        pred_code: ``(P,)`` int8 error code (-1: none).
        pred_gt: ``(P,)`` see :class:`TideResult`.
        pred_fixable: ``(P,)`` bool a ``Cls``/``Loc`` error whose fix makes it a true positive.
        gt_used: ``(G,)`` bool matched.
        gt_miss: ``(G,)`` bool ``Miss`` errors.
        base_rows: the predictions in the AP (kept, not ignored), sorted as the base AP ranks
            them: by class, descending score, then ``pred_order``.
        cand_rows: ``(C,)`` every point a re-evaluation can hold, sorted as tidecv ranks them
            there (class, descending score, error-derived points before true positives, then
            ``pred_order``): each counted prediction as it is, plus each fixable error as the
            true positive its fix makes.
        cand_class: ``(C,)`` class of each of those points.
        cand_fixed: ``(C,)`` bool the point is a fixed error.
    """

    data: DetectionSet
    max_dets: int
    pred_kept: np.ndarray
    pred_order: np.ndarray
    pred_tp: np.ndarray
    pred_ignored: np.ndarray
    pred_code: np.ndarray
    pred_gt: np.ndarray
    pred_fixable: np.ndarray
    gt_used: np.ndarray
    gt_miss: np.ndarray
    base_rows: np.ndarray
    cand_rows: np.ndarray
    cand_class: np.ndarray
    cand_fixed: np.ndarray

    # ------------------------------------------------------------------ build

    # long: tidecv's matching as one vectorised pass per step; split, each step would take a dozen arrays
    @classmethod
    def build(cls, data: DetectionSet, max_dets: int = TIDE_MAX_DETS) -> TideTable:
        """Runs TIDE's matching and error classification on ``data``."""
        if max_dets < 1:
            raise InputError(f"max_dets must be >= 1, got {max_dets}")
        num_pred, num_gt = len(data.pred_ids), len(data.gt_ids)
        num_classes = data.num_classes
        pred_image, pred_class = data.pred_image, data.pred_class
        gt_image, gt_class, crowd = data.gt_image, data.gt_class, data.gt_crowd

        # Per image: descending score, ties in row order (Python's stable sort); top max_dets.
        rows = np.arange(num_pred)
        srank, num_ranks = _descending_rank(data.pred_scores)
        # one stable sort of an int64 key (a lexsort of several keys is several sorts)
        order = np.argsort(pred_image * num_ranks + srank, kind="stable")
        pred_order = np.empty(num_pred, np.int64)
        pred_order[order] = rows
        starts = np.searchsorted(pred_image[order], np.arange(data.num_images))
        position = pred_order - starts[pred_image]
        kept = position < max_dets

        # Every (kept prediction, non-crowd object) pair of an image with IoU >= t_b.
        real = np.flatnonzero(~crowd)
        kept_rows = np.flatnonzero(kept)
        boxes = _Boxes(data.pred_boxes), _Boxes(data.gt_boxes)
        pp, pg, pv = _pairs(
            boxes,
            kept_rows,
            pred_image[kept_rows],
            real,
            gt_image[real],
            data.num_images,
            BACKGROUND_THRESHOLD,
            crowd=False,
        )  # sorted by (pred row, gt row)
        same = pred_class[pp] == gt_class[pg]

        # Greedy matching, one round per rank inside (image, class).
        match = np.full(num_pred, -1, np.int64)
        gt_used = np.zeros(num_gt, bool)
        m = same & (pv >= FOREGROUND_THRESHOLD)
        mp, mg, mv = pp[m], pg[m], pv[m]
        if len(mp):
            rank = _rank_in_group(pred_image * num_classes + pred_class, order)
            r = rank[mp]
            # the pairs are sorted by (pred row, gt row): a stable sort by round keeps that
            # (a radix sort when the rounds fit 16 bits)
            by_round = np.argsort(r.astype(np.int16) if r.max() < 2**15 else r, kind="stable")
            mp, mg, mv, r = mp[by_round], mg[by_round], mv[by_round], r[by_round]
            bounds = np.flatnonzero(np.r_[True, r[1:] != r[:-1], True])
            for start, end in zip(bounds[:-1], bounds[1:]):
                p, g, v = mp[start:end], mg[start:end], mv[start:end]
                free = ~gt_used[g]
                p, g, v = p[free], g[free], v[free]
                if not len(p):
                    continue
                _, first = _segment_first_max(p, v)
                match[p[first]] = g[first]
                gt_used[g[first]] = True
        tp = match >= 0

        # Crowd regions of the class ignore unmatched predictions with crowd IoU > t_f.
        ignored = np.zeros(num_pred, bool)
        crowd_rows = np.flatnonzero(crowd)
        loose = np.flatnonzero(kept & ~tp)
        if len(crowd_rows) and len(loose):
            cp, _, cv = _pairs(
                boxes,
                loose,
                pred_image[loose] * num_classes + pred_class[loose],
                crowd_rows,
                gt_image[crowd_rows] * num_classes + gt_class[crowd_rows],
                data.num_images * num_classes,
                FOREGROUND_THRESHOLD,
                crowd=True,
            )
            ignored[cp[cv > FOREGROUND_THRESHOLD]] = True

        # Error types of every kept prediction that is not a true positive.
        code = np.full(num_pred, NONE, np.int8)
        target = np.where(tp, match, -1)
        wrong = kept & ~tp
        code[wrong] = BKG  # images without (non-crowd) ground truth, and the Bkg test
        e = wrong[pp]  # pairs of the predictions to classify
        ep, eg, ev, esame = pp[e], pg[e], pv[e], same[e]
        best_any = _max_per_pred(ep, ev, num_pred)
        loc_iou, loc_gt = _first_max_per_pred(ep[esame], eg[esame], ev[esame], num_pred)
        cls_iou, cls_gt = _first_max_per_pred(ep[~esame], eg[~esame], ev[~esame], num_pred)
        used = esame & gt_used[eg]
        dupe_iou, dupe_gt = _first_max_per_pred(ep[used], eg[used], ev[used], num_pred)
        has_gt = np.bincount(gt_image[real], minlength=data.num_images) > 0
        todo = wrong & has_gt[pred_image]
        is_loc = todo & (loc_iou >= BACKGROUND_THRESHOLD) & (loc_iou <= FOREGROUND_THRESHOLD)
        todo &= ~is_loc
        is_cls = todo & (cls_iou >= FOREGROUND_THRESHOLD)
        todo &= ~is_cls
        is_dupe = todo & (dupe_iou >= FOREGROUND_THRESHOLD)
        todo &= ~is_dupe
        is_bkg = todo & (best_any <= BACKGROUND_THRESHOLD)
        is_both = todo & ~is_bkg
        code[is_loc], code[is_cls], code[is_dupe], code[is_both] = LOC, CLS, DUPE, BOTH
        target[is_loc] = loc_gt[is_loc]
        target[is_cls] = cls_gt[is_cls]
        target[is_dupe] = dupe_gt[is_dupe]

        # BestGTMatch: per still-unmatched object, its first (highest-scoring) Cls/Loc error
        # is the one a fix turns into a true positive; the object is then not a Miss.
        fixing = np.flatnonzero(is_loc | is_cls)
        fixing = fixing[~gt_used[target[fixing]]]
        best = np.full(num_gt, np.iinfo(np.int64).max)
        np.minimum.at(best, target[fixing], pred_order[fixing])
        fixable = np.zeros(num_pred, bool)
        fixable[fixing] = best[target[fixing]] == pred_order[fixing]
        usable = best < np.iinfo(np.int64).max
        gt_miss = ~crowd & ~gt_used & ~usable

        # The rankings of the base AP and of the re-evaluations (filtered for slices).
        base_rows = np.flatnonzero(kept & ~ignored)
        # (class, descending score, pred_order) as one int64 key; pred_order is unique
        key = (pred_class[base_rows] * num_ranks + srank[base_rows]) * num_pred
        base_rows = base_rows[np.argsort(key + pred_order[base_rows])]  # unique keys
        fix_rows = np.flatnonzero(fixable)
        fix_class = np.where(
            code[fix_rows] == CLS, gt_class[target[fix_rows]], pred_class[fix_rows]
        )
        cand_rows = np.concatenate([base_rows, fix_rows])
        cand_class = np.concatenate([pred_class[base_rows], fix_class])
        cand_fixed = np.r_[np.zeros(len(base_rows), bool), np.ones(len(fix_rows), bool)]
        # (class, descending score, true positives after the error-derived points,
        # pred_order) as one int64 key; equal keys keep their order (stable)
        late = tp[cand_rows] & ~cand_fixed
        key = ((cand_class * num_ranks + srank[cand_rows]) * 2 + late) * num_pred
        cand_order = np.argsort(key + pred_order[cand_rows], kind="stable")

        return cls(
            data=data,
            max_dets=max_dets,
            pred_kept=kept,
            pred_order=pred_order,
            pred_tp=tp,
            pred_ignored=ignored,
            pred_code=code,
            pred_gt=target,
            pred_fixable=fixable,
            gt_used=gt_used,
            gt_miss=gt_miss,
            base_rows=base_rows,
            cand_rows=cand_rows[cand_order],
            cand_class=cand_class[cand_order],
            cand_fixed=cand_fixed[cand_order],
        )

    # ------------------------------------------------------------------ evaluate

    # long: the six oracles and two special fixes share one set of arrays; each is a few lines
    def errors(
        self,
        image_mask: np.ndarray | None = None,
        classes: Iterable[str | int] | None = None,
    ) -> TideResult:
        """TIDE on the images of ``image_mask`` (``(I,)`` bool; default all): exactly what
        ``tidecv`` reports on those images alone.

        Args:
            image_mask: the images of the slice.
            classes: the classes (names or indices) to break down; default: every class TIDE
                averages on the slice (with ground truth or counted predictions). A class that
                TIDE does not average gets AP 0 and zeros.
        """
        data = self.data
        num_classes = data.num_classes
        if image_mask is None:
            pred_in = np.ones(len(data.pred_ids), bool)
            gt_in = np.ones(len(data.gt_ids), bool)
        else:
            image_mask = np.asarray(image_mask, bool)
            if image_mask.shape != (data.num_images,):
                raise InputError(
                    f"image_mask has shape {image_mask.shape}, expected ({data.num_images},)"
                )
            pred_in, gt_in = image_mask[data.pred_image], image_mask[data.gt_image]

        evaluated = pred_in & self.pred_kept
        code = np.where(evaluated, self.pred_code, NONE)
        tp = evaluated & self.pred_tp
        ignored = evaluated & self.pred_ignored
        real = gt_in & ~data.gt_crowd
        miss = gt_in & self.gt_miss
        num_gt = np.bincount(data.gt_class[real], minlength=num_classes)
        num_miss = np.bincount(data.gt_class[miss], minlength=num_classes)
        num_tp = np.bincount(data.pred_class[tp], minlength=num_classes)

        # Base AP: points in (image, score) order.
        base_rows = self.base_rows
        cand_rows, cand_class, cand_fixed = self.cand_rows, self.cand_class, self.cand_fixed
        if image_mask is not None:
            base_rows = base_rows[pred_in[base_rows]]
            sel = pred_in[cand_rows]
            cand_rows, cand_class, cand_fixed = cand_rows[sel], cand_class[sel], cand_fixed[sel]
        base_ap, base_points = _class_ap(
            data.pred_class[base_rows], tp[base_rows], num_gt, num_classes
        )
        in_run = (num_gt > 0) | (base_points > 0)  # the classes of tidecv's ap_data
        ap = _mean(base_ap, in_run)

        # Re-evaluations: error-derived points first, the true positives after them.
        cand_tp = cand_fixed | tp[cand_rows]
        cand_code = code[cand_rows]

        main_class: dict[str, np.ndarray] = {}
        main: dict[str, float] = {}
        for t, name in enumerate(MAIN_ERRORS):
            if t == MISS:
                keep = ~cand_fixed
                gt_v = num_gt - num_miss
            else:
                keep = np.where(cand_fixed, cand_code == t, cand_tp | (cand_code != t))
                gt_v = num_gt
            ap_v, points_v = _class_ap(cand_class[keep], cand_tp[keep], gt_v, num_classes)
            mean_v = _mean(ap_v, in_run & ((gt_v > 0) | (points_v > 0)))
            main[name] = max(mean_v - ap, 0.0)
            main_class[name] = np.maximum(np.where(in_run, ap_v - base_ap, 0.0), 0.0)

        # FalsePos: every true positive scored 1, every false positive 0.
        recall_n = np.searchsorted(_RECALLS, num_tp / np.where(num_gt > 0, num_gt, 1), side="right")
        fp_ap = np.where((num_tp > 0) & (num_gt > 0), recall_n / len(_RECALLS) * 100, 0.0)
        # FalseNeg: the unmatched objects leave the ground truth.
        keep = ~cand_fixed
        fn_ap, fn_points = _class_ap(cand_class[keep], cand_tp[keep], num_tp, num_classes)
        special = {
            "FalsePos": _mean(fp_ap, in_run) - ap,
            "FalseNeg": _mean(fn_ap, in_run & ((num_tp > 0) | (fn_points > 0))) - ap,
        }
        special_class = {
            "FalsePos": np.where(in_run, fp_ap - base_ap, 0.0),
            "FalseNeg": np.where(in_run, fn_ap - base_ap, 0.0),
        }

        if classes is None:
            wanted = np.flatnonzero(in_run)
        else:
            wanted = np.array([_class_index(data, c) for c in classes], dtype=np.int64)
        per_class = {}
        class_ap = {}
        for k in wanted:
            name = data.class_names[k]
            per_class[name] = {
                "main": {n: float(main_class[n][k]) for n in MAIN_ERRORS},
                "special": {n: float(special_class[n][k]) for n in SPECIAL_ERRORS},
            }
            class_ap[name] = float(base_ap[k]) if in_run[k] else 0.0

        counts = {name: int(np.count_nonzero(code == t)) for t, name in enumerate(MAIN_ERRORS[:5])}
        counts["Miss"] = int(np.count_nonzero(miss))
        return TideResult(
            ap=float(ap),
            main={k: float(v) for k, v in main.items()},
            special={k: float(v) for k, v in special.items()},
            classes=per_class,
            class_ap=class_ap,
            counts=counts,
            pred_error=_PRED_TYPES[code],
            gt_error=np.where(miss, "Miss", ""),
            pred_ignored=ignored,
            pred_gt=np.where(evaluated, self.pred_gt, -1),
        )


def tide_errors(
    data: DetectionSet,
    image_mask: np.ndarray | None = None,
    gt_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
    classes: Iterable[str | int] | None = None,
) -> TideResult:
    """TIDE's error decomposition of ``data`` or of a slice of it.

    Args:
        data: ground truth and predictions.
        image_mask: ``(I,)`` bool images of the slice: the result equals ``tidecv`` run on
            those images alone.
        gt_mask: ``(G,)`` bool, ``pred_mask``: ``(P,)`` bool objects to keep: the others are
            removed before TIDE runs (the kept ones are matched again), so the result equals
            ``tidecv`` on the restricted set. Per-object arrays of the result keep the full
            ``(G,)``/``(P,)`` shape; removed objects read ``""`` / -1.
        classes: classes (names or indices) to break down (see :meth:`TideTable.errors`).
    """
    if gt_mask is None and pred_mask is None:
        return TideTable.build(data).errors(image_mask, classes)
    num_gt, num_pred = len(data.gt_ids), len(data.pred_ids)
    gt_keep = np.ones(num_gt, bool) if gt_mask is None else np.asarray(gt_mask, bool)
    pred_keep = np.ones(num_pred, bool) if pred_mask is None else np.asarray(pred_mask, bool)
    if gt_keep.shape != (num_gt,) or pred_keep.shape != (num_pred,):
        raise InputError(
            f"gt_mask/pred_mask have shapes {gt_keep.shape}/{pred_keep.shape}, "
            f"expected ({num_gt},)/({num_pred},)"
        )
    sub = restrict_objects(data, gt_keep, pred_keep)
    result = TideTable.build(sub).errors(image_mask, classes)
    gt_rows, pred_rows = np.flatnonzero(gt_keep), np.flatnonzero(pred_keep)
    pred_error = np.full(num_pred, "", dtype=result.pred_error.dtype)
    pred_error[pred_rows] = result.pred_error
    gt_error = np.full(num_gt, "", dtype=result.gt_error.dtype)
    gt_error[gt_rows] = result.gt_error
    pred_ignored = np.zeros(num_pred, bool)
    pred_ignored[pred_rows] = result.pred_ignored
    pred_gt = np.full(num_pred, -1, np.int64)
    sub_gt = result.pred_gt
    pred_gt[pred_rows] = np.where(sub_gt >= 0, gt_rows[np.maximum(sub_gt, 0)], -1)
    return dataclasses.replace(
        result, pred_error=pred_error, gt_error=gt_error, pred_ignored=pred_ignored, pred_gt=pred_gt
    )


def restrict_objects(
    data: DetectionSet, gt_keep: np.ndarray, pred_keep: np.ndarray
) -> DetectionSet:
    """``data`` with only the ground-truth rows ``gt_keep`` and prediction rows ``pred_keep``
    (images and classes unchanged, row order kept)."""
    gt_fields = ("gt_image", "gt_class", "gt_boxes", "gt_areas", "gt_crowd", "gt_ids")
    pred_fields = ("pred_image", "pred_class", "pred_boxes", "pred_scores", "pred_ids")
    return dataclasses.replace(
        data,
        **{f: getattr(data, f)[gt_keep] for f in gt_fields},
        **{f: getattr(data, f)[pred_keep] for f in pred_fields},
    )


# ---------------------------------------------------------------------- helpers


def _class_index(data: DetectionSet, c: str | int) -> int:
    if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
        if not 0 <= int(c) < data.num_classes:
            raise InputError(f"class index {c} is out of range")
        return int(c)
    try:
        return data.class_names.index(str(c))
    except ValueError:
        raise InputError(f"unknown class {c!r}") from None


def _rank_in_group(group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each row inside its group, the rows taken in ``order`` (a permutation)."""
    n = len(group)
    by = order[np.argsort(group[order], kind="stable")]
    g = group[by]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, np.int64)
    rank_sorted = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, np.int64)
    rank[by] = rank_sorted
    return rank


class _Boxes:
    """Box columns for pycocotools' ``bbIou`` arithmetic: ``x``, ``y``, ``x + w``, ``y + h``
    and the area ``w * h``."""

    def __init__(self, boxes: np.ndarray):
        self.x, self.y = boxes[:, 0].copy(), boxes[:, 1].copy()
        self.x2, self.y2 = boxes[:, 2] + boxes[:, 0], boxes[:, 3] + boxes[:, 1]
        self.area = boxes[:, 2] * boxes[:, 3]


def _descending_rank(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank of each score, 0 for the highest (equal scores, equal ranks), and the
    number of ranks: sorting by it is sorting by descending score."""
    if not len(scores):
        return np.zeros(0, np.int64), 1
    order = np.argsort(-scores)  # ties get one rank: their order does not matter
    ordered = scores[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    rank = np.empty(len(scores), np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank, int(rank.max()) + 1


def _pairs(
    boxes: tuple[_Boxes, _Boxes],
    pred_rows: np.ndarray,
    pred_group: np.ndarray,
    gt_rows: np.ndarray,
    gt_group: np.ndarray,
    num_groups: int,
    min_iou: float,
    crowd: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (prediction row, gt row, IoU) of the same group with IoU >= ``min_iou`` > 0.

    IoU as pycocotools' ``bbIou`` computes it (bit for bit); ``crowd``: the union is the
    prediction's area. ``pred_rows`` ascending gives pairs sorted by (prediction, gt row).
    """
    pb, gb = boxes
    gt_sorted = gt_rows[np.argsort(gt_group, kind="stable")]
    per_group = np.bincount(gt_group, minlength=num_groups)
    count = per_group[pred_group]
    total = int(count.sum())
    pp = np.repeat(pred_rows, count)
    shift = (np.cumsum(per_group) - per_group)[pred_group] - (np.cumsum(count) - count)
    pg = gt_sorted[np.repeat(shift, count) + np.arange(total)]
    # Overlap in x first: most pairs stop there.
    w = np.minimum(pb.x2[pp], gb.x2[pg]) - np.maximum(pb.x[pp], gb.x[pg])
    keep = np.flatnonzero(w > 0)
    pp, pg, w = pp[keep], pg[keep], w[keep]
    h = np.minimum(pb.y2[pp], gb.y2[pg]) - np.maximum(pb.y[pp], gb.y[pg])
    keep = np.flatnonzero(h > 0)
    pp, pg, inter = pp[keep], pg[keep], w[keep] * h[keep]
    area = pb.area[pp]
    union = area if crowd else area + gb.area[pg] - inter
    iou = inter / union
    keep = np.flatnonzero(iou >= min_iou)
    return pp[keep], pg[keep], iou[keep]


def _segment_first_max(p: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of equal ``p`` (sorted): each run's max of ``v`` and the index of its first
    occurrence (``np.argmax`` semantics)."""
    seg = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    best = np.maximum.reduceat(v, seg)
    seg_of = np.repeat(np.arange(len(seg)), np.diff(np.r_[seg, len(p)]))
    index = np.where(v == best[seg_of], np.arange(len(p)), len(p))
    return best, np.minimum.reduceat(index, seg)


def _first_max_per_pred(
    p: np.ndarray, g: np.ndarray, v: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(n,)`` highest IoU of each prediction over its pairs (0 when none) and the first
    ground-truth row reaching it (-1 when none); pairs sorted by (prediction, gt row)."""
    best_iou = np.zeros(n)
    best_gt = np.full(n, -1, np.int64)
    if len(p):
        best, first = _segment_first_max(p, v)
        best_iou[p[first]] = best
        best_gt[p[first]] = g[first]
    return best_iou, best_gt


def _max_per_pred(p: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    np.maximum.at(out, p, v)
    return out


def _class_ap(
    cls: np.ndarray, tp: np.ndarray, num_gt: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """tidecv's ``APDataObject.get_ap`` of every class at once.

    Args:
        cls: ``(N,)`` class of each point, sorted (each class's points in ranking order).
        tp: ``(N,)`` bool true positive.
        num_gt: ``(K,)`` ground-truth positives per class.

    Returns:
        ``(K,)`` AP x100 (0 for classes without ground truth) and ``(K,)`` points per class.
    """
    points = np.bincount(cls, minlength=num_classes)
    ap = np.zeros(num_classes)
    if len(cls) == 0:
        return ap, points
    first = np.cumsum(points) - points  # each class's first point
    cum = np.cumsum(tp)
    before = np.r_[0, cum][first]  # true positives ranked before each class
    num_true = cum - before[cls]
    precision = num_true / (np.arange(1, len(cls) + 1) - first[cls])
    # y[j] = precision at the first point with recall >= x_j after the right-to-left max, i.e.
    # the best precision among the points with recall >= x_j: group the points by how many
    # thresholds their recall reaches (recall only grows inside a class), then take maxima
    # over thresholds from the right. Recall only changes at true positives.
    hits = np.flatnonzero(tp)
    recall = num_true[hits] / np.maximum(num_gt, 1)[cls[hits]]
    reached_hit = np.searchsorted(_RECALLS, recall, side="right")  # 1..101
    reached = np.where(num_true > 0, np.r_[1, reached_hit][cum], 1)  # recall 0 reaches x_0
    key = cls * (len(_RECALLS) + 1) + reached
    kstart = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    best = np.zeros((num_classes, len(_RECALLS) + 1))
    best.flat[key[kstart]] = np.maximum.reduceat(precision, kstart)
    y = np.maximum.accumulate(best[:, :0:-1], axis=1)[:, ::-1]  # y[:, j] = max best[:, j+1:]
    ap = np.cumsum(y, axis=1)[:, -1] / len(_RECALLS) * 100  # tidecv: sum(y) / len(y) * 100
    ap[num_gt <= 0] = 0.0
    return ap, points


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the masked class values (0 when none)."""
    return float(values[mask].sum() / mask.sum()) if mask.any() else 0.0
