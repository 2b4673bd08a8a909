"""detection-debugger: find why an object detector fails, by looking at the data.

This folder is both the FiftyOne plugin ``@datacentric/detection-debugger`` and the Python
package ``detection_debugger``. Layers, each a folder (``tests/test_architecture.py`` keeps
the rules): ``evaluation`` (pure numpy engine) and ``formats`` (pure file formats) at the
bottom; ``datasets`` (everything that touches FiftyOne datasets) on them; ``search`` (CLIP)
on ``datasets``; the front ends ``operators``, ``panels`` and ``cli`` on top, and ``demo``.

One import rule: every import of this project's code is absolute (``detection_debugger.<layer>
.<module>``). When FiftyOne loads this folder as a plugin under its own package name and the
package is not installed, the folder registers itself as ``detection_debugger`` first, so the
App, the CLI and Python always share one copy of every module (and of the classes stored with
evaluation runs).

The public Python API, one entry point per concept, is importable from here (lazily: importing
the package imports neither FiftyOne nor torch)::

    from detection_debugger import evaluate_detections, evaluate_slice, compare_runs
"""

import importlib
import importlib.util
import sys

if __name__ != "detection_debugger" and importlib.util.find_spec("detection_debugger") is None:
    sys.modules["detection_debugger"] = sys.modules[__name__]

_API = {
    # engine (pure numpy)
    "DetectionSet": "detection_debugger.evaluation",
    "MatchTable": "detection_debugger.evaluation",
    "evaluate": "detection_debugger.evaluation",
    "tide_errors": "detection_debugger.evaluation",
    "operating_points": "detection_debugger.evaluation",
    "voc_ap": "detection_debugger.evaluation",
    # files in and out of FiftyOne
    "LabelSource": "detection_debugger.formats.label_sources",
    "plan_import": "detection_debugger.datasets.importing",
    "apply_import": "detection_debugger.datasets.importing",
    "export_labels": "detection_debugger.datasets.exporting",
    # evaluation runs, slices, comparisons
    "evaluate_detections": "detection_debugger.datasets.runs",
    "save_slice": "detection_debugger.datasets.slices",
    "list_slices": "detection_debugger.datasets.slices",
    "load_slice": "detection_debugger.datasets.slices",
    "evaluate_slice": "detection_debugger.datasets.slices",
    "compare_runs": "detection_debugger.datasets.comparison",
    # label quality
    "find_label_issues": "detection_debugger.datasets.label_issues",
    "accept_issues": "detection_debugger.datasets.review",
    "reject_issues": "detection_debugger.datasets.review",
}

__all__ = ["register", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'detection_debugger' has no attribute {name!r}")


def register(p):
    """Registers every operator and panel of the plugin (all listed in ``fiftyone.yml``)."""
    from detection_debugger.datasets.runs import register_backend
    from detection_debugger.operators import OPERATORS
    from detection_debugger.panels import PANELS

    register_backend()  # dataset.evaluate_detections(..., method="detection-debugger")

    for component in (*OPERATORS, *PANELS):
        p.register(component)
