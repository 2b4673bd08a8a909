"""The plugin's operators; every one is listed in ``fiftyone.yml``."""

from detection_debugger.operators.discover_slices import DiscoverSlices
from detection_debugger.operators.evaluate_detections import EvaluateDetections
from detection_debugger.operators.export_dataset import ExportDataset
from detection_debugger.operators.import_labels import ImportGroundTruth, ImportPredictions
from detection_debugger.operators.label_issues import (
    AcceptLabelIssues,
    FindLabelIssues,
    RejectLabelIssues,
)
from detection_debugger.operators.save_slice import SaveSlice
from detection_debugger.operators.search import ComputeEmbeddings, Search

OPERATORS = (
    ImportGroundTruth,
    ImportPredictions,
    EvaluateDetections,
    ExportDataset,
    SaveSlice,
    DiscoverSlices,
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
    "DiscoverSlices",
    "EvaluateDetections",
    "ExportDataset",
    "FindLabelIssues",
    "ImportGroundTruth",
    "ImportPredictions",
    "RejectLabelIssues",
    "SaveSlice",
    "Search",
]
