"""The network: a tiny conv backbone with a top-down path and CenterNet heads.

Input ``(B, 3, H, W)`` floats in [0, 1] (``H, W`` multiples of 32); output at stride
:data:`STRIDE`: ``heatmap (B, K, H/4, W/4)`` logits of object centres per class, ``size
(B, 2, H/4, W/4)`` box width and height in output cells (log scale) and ``offset
(B, 2, H/4, W/4)`` the centre's sub-cell position.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["STRIDE", "CenterNet"]

STRIDE = 4
_WIDTHS = (16, 24, 48, 64, 96)  # channels at strides 2, 4, 8, 16, 32
_HEAD = 32


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


class CenterNet(nn.Module):
    """About 0.3 M parameters; ``forward`` returns ``(heatmap, size, offset)``."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        stages, cin = [], 3
        for cout in _WIDTHS:
            stages.append(nn.Sequential(_conv(cin, cout, 2), _conv(cout, cout)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        # top-down: s32 -> s16 -> s8 -> s4, each adding a 1x1 lateral of the backbone
        self.laterals = nn.ModuleList(nn.Conv2d(c, _HEAD, 1) for c in _WIDTHS[1:])
        self.smooth = nn.ModuleList(_conv(_HEAD, _HEAD) for _ in _WIDTHS[1:-1])
        self.trunk = _conv(_HEAD, _HEAD)
        self.heatmap = nn.Conv2d(_HEAD, num_classes, 1)
        self.size = nn.Conv2d(_HEAD, 2, 1)
        self.offset = nn.Conv2d(_HEAD, 2, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # prior 0.1: stable focal loss at start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        y = self.laterals[-1](features[-1])
        for lateral, smooth, f in zip(
            reversed(self.laterals[:-1]), reversed(self.smooth), reversed(features[1:-1])
        ):
            y = nn.functional.interpolate(y, size=f.shape[-2:], mode="nearest")
            y = smooth(y + lateral(f))
        y = self.trunk(y)
        return self.heatmap(y), self.size(y), self.offset(y)
