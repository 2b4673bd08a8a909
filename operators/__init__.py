"""The plugin's operators; every one is listed in ``fiftyone.yml``."""

from .export_dataset import ExportDataset
from .import_labels import ImportGroundTruth, ImportPredictions

OPERATORS = (ImportGroundTruth, ImportPredictions, ExportDataset)

__all__ = ["OPERATORS", "ExportDataset", "ImportGroundTruth", "ImportPredictions"]
