"""vision_msgs detections and object events in ROS terms, around the ROS-free core in sam2_ros.objects.

    raws = raw_detections(msg)                       # Detection2DArray -> [RawDetection] (parse_detections checks them)
    msgs = event_msgs(events, frame.header)          # objects Events -> sam2_ros/ObjectEvent with the frame's header
    registry.options = object_options(settings)      # the node's parameters -> ObjectOptions
    for key, warn, text in DetectionLog().lines(applied, registry, found, stamp): ...   # what an array did
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sam2_ros.objects import AppliedDetections, Event, ObjectOptions, ObjectRegistry, RawDetection

MAX_LISTED = 5  # malformed / refused detections written out per array (a log line of bounded length)
# Parameters (sam2_ros/ros/params.py) that are ObjectOptions fields of the same name; max_objects is not dynamic.
OBJECT_PARAMS = ("detection_classes", "detection_min_score", "detection_match_iou", "presence_threshold",
                 "lost_after", "remove_lost_after", "max_objects", "unconfirmed_after", "reacquire_min_score",
                 "correction_iou", "correction_after")


def object_options(settings: Any) -> ObjectOptions:
    """The node's Settings -> the rules of detector-driven tracking (ValueError for values ObjectOptions refuses)."""
    return ObjectOptions(**{name: getattr(settings, name) for name in OBJECT_PARAMS})


def raw_detections(msg: Any) -> list[RawDetection]:
    """vision_msgs/Detection2DArray (4.x) -> one RawDetection per detection: centre, size and theta of its bbox and
    (class_id, score) of each hypothesis. Nothing is checked here (parse_detections does, with a reason each)."""
    out = []
    for det in msg.detections:
        box = det.bbox
        out.append(RawDetection(box.center.position.x, box.center.position.y, box.size_x, box.size_y,
                                box.center.theta, [(r.hypothesis.class_id, r.hypothesis.score) for r in det.results]))
    return out


def detection_array(raws: Sequence[RawDetection], header: Any, ids: Sequence[str] | None = None) -> Any:
    """[RawDetection] -> vision_msgs/Detection2DArray with `header` (the detected image's), as a detector publishes
    it; for synthetic detectors (demo, tests)."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray(header=header)
    detections = []
    for k, raw in enumerate(raws):
        det = Detection2D(header=header, id=ids[k] if ids else "")
        det.bbox.center.position.x, det.bbox.center.position.y = float(raw.cx), float(raw.cy)
        det.bbox.center.theta, det.bbox.size_x, det.bbox.size_y = float(raw.theta), float(raw.size_x), \
            float(raw.size_y)
        results = []
        for class_id, score in raw.hypotheses:
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id, hyp.hypothesis.score = str(class_id), float(score)
            results.append(hyp)
        det.results = results
        detections.append(det)
    msg.detections = detections
    return msg


def event_msgs(events: Iterable[Event], header: Any) -> list[Any]:
    """objects Events -> sam2_ros/ObjectEvent messages on the frame with `header` (the event's own stamp is that
    frame's, in seconds: the header keeps it exact)."""
    from sam2_ros.msg import ObjectEvent

    return [ObjectEvent(header=header, object_id=int(e.object_id), label=e.label, event=int(e.kind),
                        reason=e.reason) for e in events]


class DetectionLog:
    """The log lines of detection arrays: (throttle key, warning?, text). Malformed detections repeat with every array
    of a bad detector (the caller throttles per key); a stamp naming no tracked frame (dropped by a slow model, older
    than the history, or a detector's own clock) is normal under load, so it is information, not a warning; detections
    the tracker refused are rare; `max_objects` reached is said once, and again only after there was room."""

    def __init__(self) -> None:
        self._limit_said = False

    def lines(self, applied: AppliedDetections, registry: ObjectRegistry, found: bool,
              stamp_ns: int) -> list[tuple[str, bool, str]]:
        plan, out = applied.plan, []
        if plan.skipped:
            listed = "; ".join(f"#{i} {reason}" for i, reason in plan.skipped[:MAX_LISTED])
            more = f"; ... ({len(plan.skipped)} in all)" if len(plan.skipped) > MAX_LISTED else ""
            out.append(("detections skipped", True, f"~/detections (stamp {stamp_ns}): skipped {len(plan.skipped)} "
                        f"malformed: {listed}{more}"))
        if not found:
            out.append(("detections late", False, f"~/detections: stamp {stamp_ns} names no tracked frame (dropped, or "
                        "older than prompt_history): applied to the newest frame"))
        for i, error in applied.failed[:MAX_LISTED]:
            out.append((f"detections failed {i}", True, f"~/detections (stamp {stamp_ns}): detection #{i} refused by the "
                        f"tracker: {error}"))
        if len(applied.failed) > MAX_LISTED:
            out.append(("detections failed more", True, f"~/detections (stamp {stamp_ns}): {len(applied.failed)} "
                        f"detections refused by the tracker in all ({MAX_LISTED} listed above)"))
        if plan.corrections:  # drift corrections (issue 24): information, one line per array (the caller throttles)
            listed = "; ".join(f"object {a.object_id}: {a.why}" for a in plan.corrections[:MAX_LISTED])
            out.append(("detections corrected", False, f"~/detections (stamp {stamp_ns}): re-prompted with its "
                        f"detection box: {listed} ({registry.corrections} corrections so far)"))
        max_objects = registry.options.max_objects
        if plan.limit_reached and not self._limit_said:
            self._limit_said = True
            out.append(("detections limit", True, f"~/detections: max_objects={max_objects} objects tracked; "
                        f"{len(plan.over_limit)} detection(s) make no object (said once until there is room)"))
        elif len(registry) < max_objects:
            self._limit_said = False
        return out
