"""A small real detector (PyTorch, CPU): a CenterNet-style network, its training and inference.

The demo trains it on rendered traffic scenes (``detection-debugger demo train``); nothing
here imports FiftyOne: training reads KITTI label folders, inference writes TAO-style KITTI
(16 columns with the confidence), the files users bring.
"""
