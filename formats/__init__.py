"""Format readers and writers (COCO, KITTI/TAO, YOLO, Ultralytics JSON, corner txt, Pascal
VOC), in one place.

Pure text-to-records code: nothing here imports FiftyOne or the evaluation engine. Boxes in
records are absolute pixel corners ``(x1, y1, x2, y2)``.
"""

from detection_debugger.formats.category_ids import (
    COCO80_TO_COCO91,
    category_names_from_class_names,
)
from detection_debugger.formats.class_map import ClassMap
from detection_debugger.formats.coco import (
    check_coco_ground_truth,
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
from detection_debugger.formats.corner_txt import parse_corner_line, read_corner_txt_folder
from detection_debugger.formats.detect import detect_format
from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.image_ids import ImageJoin
from detection_debugger.formats.kitti import (
    DONT_CARE,
    format_kitti_line,
    parse_kitti_line,
    read_kitti_folder,
    write_kitti_folder,
)
from detection_debugger.formats.records import ImageObjects, ObjectRecord, ReadReport, SkippedLine
from detection_debugger.formats.ultralytics import read_ultralytics_predictions
from detection_debugger.formats.voc import parse_voc_file, read_voc_folder
from detection_debugger.formats.yolo import (
    read_class_names,
    read_yolo_folder,
    write_class_names,
    write_yolo_folder,
)

__all__ = [
    "COCO80_TO_COCO91",
    "DONT_CARE",
    "ClassMap",
    "FormatError",
    "ImageJoin",
    "ImageObjects",
    "ObjectRecord",
    "ReadReport",
    "SkippedLine",
    "category_names_from_class_names",
    "check_coco_ground_truth",
    "coco_category_names",
    "coco_image_stems",
    "detect_format",
    "format_kitti_line",
    "parse_corner_line",
    "parse_kitti_line",
    "parse_voc_file",
    "read_class_names",
    "read_coco_ground_truth",
    "read_coco_objects",
    "read_coco_result_objects",
    "read_coco_results",
    "read_corner_txt_folder",
    "read_image_ids",
    "read_json",
    "read_kitti_folder",
    "read_ultralytics_predictions",
    "read_voc_folder",
    "read_yolo_folder",
    "write_class_names",
    "write_coco",
    "write_kitti_folder",
    "write_yolo_folder",
]
