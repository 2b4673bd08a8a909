"""The evaluation engine: pure numpy, no FiftyOne.

Matching, COCO metrics (identical to pycocotools), the 4-way confusion matrix, per-object
outcomes and exact re-evaluation of image slices from a cached match table.
"""

from .coco_metrics import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
    STAT_NAMES,
    CocoMatches,
    accumulate,
    match_coco,
    per_class_metrics,
    summarize,
)
from .confusion import (
    BACKGROUND,
    ConfusionMatrix,
    ObjectOutcomes,
    Outcome,
    confusion_matrix,
    match_outcomes,
)
from .detections import DetectionSet, InputError
from .match_table import MatchTable, evaluate
from .results import ClassMetrics, EvaluationResult

__all__ = [
    "AREA_RANGES",
    "BACKGROUND",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "RECALL_THRESHOLDS",
    "STAT_NAMES",
    "ClassMetrics",
    "CocoMatches",
    "ConfusionMatrix",
    "DetectionSet",
    "EvaluationResult",
    "InputError",
    "MatchTable",
    "ObjectOutcomes",
    "Outcome",
    "accumulate",
    "confusion_matrix",
    "evaluate",
    "match_coco",
    "match_outcomes",
    "per_class_metrics",
    "summarize",
]
