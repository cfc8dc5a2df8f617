"""vision_msgs detections and object events in ROS terms, around the ROS-free core in sam2_ros.objects.

    raws = raw_detections(msg)                       # Detection2DArray -> [RawDetection] (parse_detections checks them)
    msgs = event_msgs(events, frame.header)          # objects Events -> sam2_ros/ObjectEvent with the frame's header
    registry.options = object_options(settings)      # the node's parameters -> ObjectOptions
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sam2_ros.objects import Event, ObjectOptions, RawDetection

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
