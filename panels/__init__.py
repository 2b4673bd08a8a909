"""The plugin's panels; every one is listed in ``fiftyone.yml``."""

from detection_debugger.panels.debugger_panel import DetectionDebuggerPanel

PANELS = (DetectionDebuggerPanel,)

__all__ = ["PANELS", "DetectionDebuggerPanel"]
