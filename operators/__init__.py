"""The plugin's operators; every one is listed in ``fiftyone.yml``."""

from .evaluate_detections import EvaluateDetections
from .export_dataset import ExportDataset
from .import_labels import ImportGroundTruth, ImportPredictions
from .label_issues import AcceptLabelIssues, FindLabelIssues, RejectLabelIssues
from .save_slice import SaveSlice
from .search import ComputeEmbeddings, Search

OPERATORS = (
    ImportGroundTruth,
    ImportPredictions,
    EvaluateDetections,
    ExportDataset,
    SaveSlice,
    FindLabelIssues,
    AcceptLabelIssues,
    RejectLabelIssues,
    ComputeEmbeddings,
    Search,
)

__all__ = [
    "OPERATORS",
    "AcceptLabelIssues",
    "ComputeEmbeddings",
    "EvaluateDetections",
    "ExportDataset",
    "FindLabelIssues",
    "ImportGroundTruth",
    "ImportPredictions",
    "RejectLabelIssues",
    "SaveSlice",
    "Search",
]
