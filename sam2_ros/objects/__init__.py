"""Detector-driven tracking without ROS (ARCHITECTURE 3.4): detections matched to objects, labels, statuses, events.

    registry = ObjectRegistry(ObjectOptions(detection_classes=("cup",)))
    result, events = track_frame(tracker, registry, rgb, seq=i, time_s=t)
    applied = apply_detections(tracker, registry, parse_detections(raw, (H, W)), seq=i, time_s=t)
"""
from sam2_ros.objects.appearance import box_looks
from sam2_ros.objects.assignment import assign
from sam2_ros.objects.boxes import box_iou, mask_boxes, rotated_size_for_bounds, rotated_to_aabb
from sam2_ros.objects.detections import MAX_BOX_SCALE, Detections, RawDetection, parse_detections
from sam2_ros.objects.driver import AppliedDetections, apply_detections, track_frame
from sam2_ros.objects.matching import (DetectionAction, DetectionPlan, Tracks, greedy_match, lowest_free_ids,
                                      plan_detections)
from sam2_ros.objects.motion import BoxMotion
from sam2_ros.objects.reacquire import reacquire_scores
from sam2_ros.objects.types import Event, EventKind, ObjectOptions, Status
from sam2_ros.objects.registry import ObjectInfo, ObjectRegistry

__all__ = ["MAX_BOX_SCALE", "AppliedDetections", "BoxMotion", "DetectionAction", "DetectionPlan", "Detections", "Event",
           "EventKind", "ObjectInfo", "ObjectOptions", "ObjectRegistry", "RawDetection", "Status", "Tracks", "apply_detections",
           "assign", "box_iou", "box_looks", "greedy_match", "lowest_free_ids", "mask_boxes", "parse_detections", "plan_detections",
           "reacquire_scores", "rotated_size_for_bounds", "rotated_to_aabb", "track_frame"]
