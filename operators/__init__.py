"""The plugin's operators; every one is listed in ``fiftyone.yml``."""

from .evaluate_detections import EvaluateDetections
from .export_dataset import ExportDataset
from .import_labels import ImportGroundTruth, ImportPredictions

OPERATORS = (ImportGroundTruth, ImportPredictions, EvaluateDetections, ExportDataset)

__all__ = [
    "OPERATORS",
    "EvaluateDetections",
    "ExportDataset",
    "ImportGroundTruth",
    "ImportPredictions",
]
