"""Detector-driven tracking without ROS (ARCHITECTURE 3.4): detections matched to objects, labels, statuses, events.

    registry = ObjectRegistry(ObjectOptions(detection_classes=("cup",)))
    result, events = track_frame(tracker, registry, rgb, frame_stamp=i, stamp=t)
    applied = apply_detections(tracker, registry, parse_detections(raw, (H, W)), frame_stamp=i, stamp=t)
"""
from sam2_ros.objects.boxes import box_iou, mask_boxes, rotated_size_for_bounds, rotated_to_aabb
from sam2_ros.objects.detections import MAX_BOX_SCALE, Detections, RawDetection, parse_detections
from sam2_ros.objects.driver import AppliedDetections, apply_detections, track_frame
from sam2_ros.objects.matching import DetectionAction, DetectionPlan, greedy_match, lowest_free_ids, plan_detections
from sam2_ros.objects.options import Event, EventKind, ObjectOptions, Status
from sam2_ros.objects.registry import ObjectInfo, ObjectRegistry

__all__ = ["MAX_BOX_SCALE", "AppliedDetections", "DetectionAction", "DetectionPlan", "Detections", "Event",
           "EventKind", "ObjectInfo", "ObjectOptions", "ObjectRegistry", "RawDetection", "Status", "apply_detections",
           "box_iou", "greedy_match", "lowest_free_ids", "mask_boxes", "parse_detections", "plan_detections",
           "rotated_size_for_bounds", "rotated_to_aabb", "track_frame"]
