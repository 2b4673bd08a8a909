"""The plugin's operators; every one is listed in ``fiftyone.yml``."""

from .evaluate_detections import EvaluateDetections
from .export_dataset import ExportDataset
from .import_labels import ImportGroundTruth, ImportPredictions
from .save_slice import SaveSlice

OPERATORS = (ImportGroundTruth, ImportPredictions, EvaluateDetections, ExportDataset, SaveSlice)

__all__ = [
    "OPERATORS",
    "EvaluateDetections",
    "ExportDataset",
    "ImportGroundTruth",
    "ImportPredictions",
    "SaveSlice",
]
