"""Format readers and writers (COCO, KITTI/TAO, YOLO), in one place.

Pure text-to-records code: nothing here imports FiftyOne or the evaluation engine. Boxes in
records are absolute pixel corners ``(x1, y1, x2, y2)``.
"""

from .class_map import ClassMap
from .coco import (
    coco_category_names,
    coco_image_stems,
    read_coco_ground_truth,
    read_coco_objects,
    read_coco_result_objects,
    read_coco_results,
    read_image_ids,
    read_json,
    write_coco,
)
from .errors import FormatError
from .kitti import (
    DONT_CARE,
    format_kitti_line,
    parse_kitti_line,
    read_kitti_folder,
    write_kitti_folder,
)
from .records import ImageObjects, ObjectRecord, ReadReport, SkippedLine
from .yolo import read_class_names, read_yolo_folder, write_class_names, write_yolo_folder

__all__ = [
    "DONT_CARE",
    "ClassMap",
    "FormatError",
    "ImageObjects",
    "ObjectRecord",
    "ReadReport",
    "SkippedLine",
    "coco_category_names",
    "coco_image_stems",
    "format_kitti_line",
    "parse_kitti_line",
    "read_class_names",
    "read_coco_ground_truth",
    "read_coco_objects",
    "read_coco_result_objects",
    "read_coco_results",
    "read_image_ids",
    "read_json",
    "read_kitti_folder",
    "read_yolo_folder",
    "write_class_names",
    "write_coco",
    "write_kitti_folder",
    "write_yolo_folder",
]
