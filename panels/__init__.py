"""The plugin's panels; every one is listed in ``fiftyone.yml``."""

from .detection_debugger import DetectionDebuggerPanel

PANELS = (DetectionDebuggerPanel,)

__all__ = ["PANELS", "DetectionDebuggerPanel"]
