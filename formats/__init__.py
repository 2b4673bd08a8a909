"""Format readers and writers (COCO, and in time KITTI/TAO and YOLO), in one place.

Pure text-to-records code: nothing here imports FiftyOne or the evaluation engine.
"""

from .coco import read_coco_ground_truth, read_coco_results, read_image_ids, read_json
from .errors import FormatError

__all__ = [
    "FormatError",
    "read_coco_ground_truth",
    "read_coco_results",
    "read_image_ids",
    "read_json",
]
