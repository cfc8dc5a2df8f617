"""The two calls that keep a StreamingTracker and an ObjectRegistry in step, per frame and per detection array.

Used by the node's inference thread, the tests and the benchmark alike, so the order of operations lives here once:

    result, events = track_frame(tracker, registry, rgb, seq=i, time_s=t)      # every frame
    applied = apply_detections(tracker, registry, detections, seq=i, time_s=t)  # every detection array

`seq` is the tracker's stamp of the frame (the session's frame counter, never a time); `time_s` is the frame's time in
seconds (the header stamp), which the registry uses for remove_lost_after and motion, and puts on the events.

apply_detections (issue 24) matches the array against the masks of the frame it names (the newest frame's boxes
from track_frame, or the tracker's result of an older history frame for a late array), prompts new and re-acquired
objects and the tracked objects that need a correction with their detection boxes, then commits: confirmations,
and LOST for the detector's objects not confirmed for unconfirmed_after arrays (its events say so). An array counts
once, whatever frame it names; frames without an array count nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2_ros.objects.appearance import LOOK_EVERY_S, box_looks
from sam2_ros.objects.boxes import mask_boxes
from sam2_ros.objects.detections import Detections
from sam2_ros.objects.matching import DetectionPlan
from sam2_ros.objects.types import Event
from sam2_ros.objects.registry import ObjectRegistry


@dataclass(frozen=True)
class AppliedDetections:
    """What one detection array did: the plan, the events of the actions the tracker accepted, and the refused."""

    plan: DetectionPlan
    events: tuple[Event, ...]
    failed: tuple[tuple[int, str], ...]  # (detection position, the tracker's error) of actions it refused
    corrected: tuple[int, ...] = ()  # objects re-prompted with their detection's box (plan.corrections it took)


def track_frame(tracker: Any, registry: ObjectRegistry, rgb: np.ndarray, seq: Any,
                time_s: float) -> tuple[Any, list[Event]]:
    """Remove expired LOST objects, track the frame, update every object's status from its presence and mask box.
    Returns the TrackResult and the events (REMOVED first, then LOST / FOUND)."""
    events = registry.expire(time_s)
    for event in events:
        if event.object_id in tracker.object_ids:
            tracker.remove_object(event.object_id)
    result = tracker.track(rgb, stamp=seq)
    events += registry.update(time_s, result.object_ids, result.presence, mask_boxes(result.masks))
    return result, events


def apply_detections(tracker: Any, registry: ObjectRegistry, detections: Detections, seq: Any,
                     time_s: float) -> AppliedDetections:
    """Plan the detections of the frame `seq` names, prompt the tracker there with the box of each new,
    re-acquired or corrected object, and commit; the registry records an action only once the tracker took it."""
    frame_boxes, features = _frame_view(tracker, registry, seq)
    size = _frame_size(tracker, seq)
    looks = None if features is None else (lambda boxes: box_looks(features, boxes, size))
    plan = registry.plan_detections(detections, time_s, frame_boxes, looks)
    events, failed, corrected = [], [], []
    for action in plan.new + plan.reacquired:
        try:
            tracker.add_prompt(action.object_id, box=action.box, stamp=seq)
        except ValueError as err:
            failed.append((action.detection, str(err)))
            continue
        try:
            event = registry.apply_action(action, time_s)
        except ValueError as err:  # e.g. max_objects lowered from another thread since the plan: undo the prompt
            if action.object_id not in registry:
                tracker.remove_object(action.object_id)
            failed.append((action.detection, str(err)))
            continue
        if event is not None:
            events.append(event)
    for action in plan.corrections:  # the object starts again from its detection's box (see _restart)
        try:
            result = _restart(tracker, action, seq)
        except ValueError as err:  # the tracker no longer has it: neither has the registry
            failed.append((action.detection, str(err)))
            events.append(registry.remove(action.object_id, time_s, f"correction refused by the tracker: {err}"))
            continue
        k = result.object_ids.index(action.object_id) if action.object_id in result.object_ids else None
        box = None if k is None else mask_boxes(result.masks[k:k + 1])[0]
        registry.corrected(action, time_s, box)
        corrected.append(action.object_id)
    fresh = {}
    if features is not None:  # appearance vectors of agreeing objects, refreshed every LOOK_EVERY_S
        due = [a for a in plan.matched if a.agreement >= registry.options.correction_iou and a.object_id in registry
               and time_s - registry.get(a.object_id).look_stamp >= LOOK_EVERY_S]
        if due:
            vectors = box_looks(features, np.stack([a.box for a in due]), size)
            fresh = {a.object_id: v for a, v in zip(due, vectors) if np.isfinite(v).all()}
    events += registry.commit(plan, time_s, fresh)
    return AppliedDetections(plan, tuple(events), tuple(failed), tuple(corrected))


def _restart(tracker: Any, action: Any, seq: Any) -> Any:
    """A drift correction: forget the object's memory and prompt it afresh with its detection's box on that frame
    (a new conditioning frame, re-tracked to the newest frame), keeping its id. A refinement prompt on the tracked
    frame (what a user's click does) is fed the wrong previous mask and barely moves it: on crossing cups with the
    micro model it left 4-6 id switches where restarting leaves 0 (docs/detections.md)."""
    if action.object_id in tracker.object_ids:
        tracker.remove_object(action.object_id)
    return tracker.add_prompt(action.object_id, box=action.box, stamp=seq)


def _frame_size(tracker: Any, seq: Any) -> tuple[int, int]:
    try:
        return tuple(tracker.history_frame(seq).size)
    except (AttributeError, ValueError):
        return (1, 1)


def _frame_view(tracker: Any, registry: ObjectRegistry, seq: Any) -> tuple[np.ndarray | None, Any]:
    """(mask boxes [N, 4] of the registry's objects on that frame, or None when it is the newest (the registry has
    them); the frame's encoder features, or None when the tracker keeps none)."""
    stamps = getattr(tracker, "stamps", [])
    if not stamps:
        return None, None
    try:
        features = tracker.history_frame(seq).image_embed
    except (AttributeError, ValueError):
        features = None
    if seq == stamps[-1] or seq not in stamps:
        return None, features
    result = tracker.result(seq)
    boxes = mask_boxes(result.masks)
    index = {object_id: k for k, object_id in enumerate(result.object_ids)}
    rows = [boxes[index[i]] if i in index else np.full(4, np.nan) for i in registry.ids]
    return np.array(rows, np.float64).reshape(-1, 4), features
