"""The evaluation engine: pure numpy, no FiftyOne.

Matching, COCO metrics (identical to pycocotools), the 4-way confusion matrix, per-object
outcomes and exact re-evaluation of slices (images or objects) from a cached match table, and
comparisons of two results.
"""

from detection_debugger.evaluation.coco_metrics import (
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
from detection_debugger.evaluation.comparison import (
    CHANGES,
    OutcomeChanges,
    ResultComparison,
    compare_results,
    outcome_changes,
)
from detection_debugger.evaluation.confusion import (
    BACKGROUND,
    ConfusionMatrix,
    ObjectOutcomes,
    Outcome,
    confusion_matrix,
    match_outcomes,
)
from detection_debugger.evaluation.detections import DetectionSet, InputError
from detection_debugger.evaluation.match_table import MatchTable, evaluate
from detection_debugger.evaluation.operating_points import (
    ClassOperatingPoints,
    operating_points,
    outcomes_at,
    rescore,
)
from detection_debugger.evaluation.results import ClassMetrics, EvaluationResult
from detection_debugger.evaluation.tide import (
    MAIN_ERRORS,
    SPECIAL_ERRORS,
    TideResult,
    TideTable,
    tide_errors,
)
from detection_debugger.evaluation.voc_ap import (
    VOC_RECALL_LEVELS,
    VocClassResult,
    VocResult,
    voc_ap,
)

__all__ = [
    "AREA_RANGES",
    "BACKGROUND",
    "CHANGES",
    "IOU_THRESHOLDS",
    "MAIN_ERRORS",
    "MAX_DETS",
    "RECALL_THRESHOLDS",
    "SPECIAL_ERRORS",
    "STAT_NAMES",
    "VOC_RECALL_LEVELS",
    "ClassMetrics",
    "ClassOperatingPoints",
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
    "TideResult",
    "TideTable",
    "VocClassResult",
    "VocResult",
    "accumulate",
    "compare_results",
    "confusion_matrix",
    "evaluate",
    "match_coco",
    "match_outcomes",
    "operating_points",
    "outcome_changes",
    "outcomes_at",
    "per_class_metrics",
    "rescore",
    "select_objects",
    "summarize",
    "tide_errors",
    "voc_ap",
]
