"""The evaluation engine: pure numpy, no FiftyOne.

Matching, COCO metrics (identical to pycocotools), the 4-way confusion matrix, per-object
outcomes and exact re-evaluation of slices (images or objects) from a cached match table, and
comparisons of two results.
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
    select_objects,
    summarize,
)
from .comparison import (
    CHANGES,
    OutcomeChanges,
    ResultComparison,
    compare_results,
    outcome_changes,
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
    "CHANGES",
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
    "OutcomeChanges",
    "ResultComparison",
    "accumulate",
    "compare_results",
    "confusion_matrix",
    "evaluate",
    "match_coco",
    "match_outcomes",
    "outcome_changes",
    "per_class_metrics",
    "select_objects",
    "summarize",
]
