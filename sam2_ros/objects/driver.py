"""The two calls that keep a StreamingTracker and an ObjectRegistry in step, per frame and per detection array.

Used by the node's inference thread, the tests and the benchmark alike, so the order of operations lives here once:

    result, events = track_frame(tracker, registry, rgb, frame_stamp=i, stamp=t)      # every frame
    applied = apply_detections(tracker, registry, detections, frame_stamp=i, stamp=t)  # every detection array

`frame_stamp` is the tracker's stamp of the frame (the node uses its frame counter); `stamp` is the frame's time in
seconds (the header stamp), which the registry uses for remove_lost_after and puts on the events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2_ros.objects.boxes import mask_boxes
from sam2_ros.objects.detections import Detections
from sam2_ros.objects.matching import DetectionPlan
from sam2_ros.objects.options import Event
from sam2_ros.objects.registry import ObjectRegistry


@dataclass(frozen=True)
class AppliedDetections:
    """What one detection array did: the plan, the events of the actions the tracker accepted, and the refused."""

    plan: DetectionPlan
    events: tuple[Event, ...]
    failed: tuple[tuple[int, str], ...]  # (detection position, the tracker's error) of actions it refused


def track_frame(tracker: Any, registry: ObjectRegistry, rgb: np.ndarray, frame_stamp: Any,
                stamp: float) -> tuple[Any, list[Event]]:
    """Remove expired LOST objects, track the frame, update every object's status from its presence and mask box.
    Returns the TrackResult and the events (REMOVED first, then LOST / FOUND)."""
    events = registry.expire(stamp)
    for event in events:
        if event.object_id in tracker.object_ids:
            tracker.remove_object(event.object_id)
    result = tracker.track(rgb, stamp=frame_stamp)
    events += registry.update(stamp, result.object_ids, result.presence, mask_boxes(result.masks))
    return result, events


def apply_detections(tracker: Any, registry: ObjectRegistry, detections: Detections, frame_stamp: Any,
                     stamp: float) -> AppliedDetections:
    """Plan the detections of the frame `frame_stamp` names and prompt the tracker with each new or re-acquired
    object's box there; the registry records an action only once the tracker has taken it."""
    plan = registry.plan_detections(detections)
    events, failed = [], []
    for action in plan.new + plan.reacquired:
        try:
            tracker.add_prompt(action.object_id, box=action.box, stamp=frame_stamp)
        except ValueError as err:
            failed.append((action.detection, str(err)))
            continue
        try:
            event = registry.apply_action(action, stamp)
        except ValueError as err:  # e.g. max_objects lowered from another thread since the plan: undo the prompt
            if action.object_id not in registry:
                tracker.remove_object(action.object_id)
            failed.append((action.detection, str(err)))
            continue
        if event is not None:
            events.append(event)
    for action in plan.matched:
        registry.confirm(action)
    return AppliedDetections(plan, tuple(events), tuple(failed))
