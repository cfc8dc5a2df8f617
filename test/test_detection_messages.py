"""sam2_ros/ros/detection_msgs.py without a node: Detection2DArray <-> RawDetection (real generated vision_msgs types,
serialised as DDS would), events -> ObjectEvent, parameters -> ObjectOptions, and the log lines of an array."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sam2_ros.objects import (AppliedDetections, DetectionPlan, Event, EventKind, ObjectOptions, ObjectRegistry,
                              RawDetection, parse_detections, rotated_size_for_bounds)
from sam2_ros.ros.detection_msgs import detection_array, event_msgs, object_options, raw_detections
from sam2_ros.session.detection_log import DetectionLog
from sam2_ros.ros.params import Settings


def _header(sec: int = 1_700_000_000, nanosec: int = 5):
    from std_msgs.msg import Header

    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def test_detection_array_round_trip_through_serialisation():
    from rclpy.serialization import deserialize_message, serialize_message
    from vision_msgs.msg import Detection2DArray

    sx, sy = rotated_size_for_bounds(60.0, 40.0, 0.3)
    raws = [RawDetection(100.0, 50.0, 30.0, 20.0, 0.0, [("cup", 0.91), ("mug", 0.4)]),
            RawDetection(200.5, 120.25, sx, sy, 0.3, [("book", 0.75)]),
            RawDetection(10.0, 10.0, 5.0, 5.0, 0.0, [])]
    msg = detection_array(raws, _header(), ids=["a", "b", "c"])
    back = deserialize_message(serialize_message(msg), Detection2DArray)
    assert back.header == _header() and [d.id for d in back.detections] == ["a", "b", "c"]
    assert all(d.header == _header() for d in back.detections)
    got = raw_detections(back)
    assert [tuple(r[:5]) for r in got] == [tuple(r[:5]) for r in raws]
    assert [list(r.hypotheses) for r in got] == [list(r.hypotheses) for r in raws]
    parsed = parse_detections(got, (240, 320))
    assert parsed.class_ids == ("cup", "book"), "best hypothesis of each; the empty one is skipped"
    np.testing.assert_allclose(parsed.boxes, [[85, 40, 115, 60], [170.5, 100.25, 230.5, 140.25]], atol=1e-9)
    assert parsed.skipped == ((2, "no hypotheses (empty results)"),)


def test_malformed_numbers_survive_the_message_and_are_skipped():
    raws = [RawDetection(math.nan, 5.0, 10.0, 10.0, 0.0, [("cup", 0.9)]),
            RawDetection(5.0, 5.0, -1.0, 10.0, 0.0, [("cup", 0.9)]),
            RawDetection(5.0, 5.0, 1e9, 10.0, 0.0, [("cup", 0.9)]),
            RawDetection(5.0, 5.0, 10.0, 10.0, math.inf, [("cup", 0.9)]),
            RawDetection(5.0, 5.0, 10.0, 10.0, 0.0, [("cup", math.nan)])]
    parsed = parse_detections(raw_detections(detection_array(raws, _header())), (240, 320))
    assert len(parsed) == 0
    assert [r.split(" (")[0] for _, r in parsed.skipped] == [
        "centre is not finite", "size must be > 0, got -1 x 10", "size 1e+09 x 10 is absurd for a 320x240 image",
        "theta is not finite", "score of 'cup' is not finite"]


def test_event_messages_carry_the_frame_header():
    from sam2_ros.msg import ObjectEvent

    events = [Event(1.5, 3, "cup", EventKind.ADDED, "detection cup 0.91"), Event(1.5, 3, "cup", EventKind.LOST, "x"),
              Event(1.5, 4, "", EventKind.REMOVED, "~/reset")]
    msgs = event_msgs(events, _header())
    assert [(m.object_id, m.label, m.event, m.reason) for m in msgs] == [
        (3, "cup", ObjectEvent.ADDED, "detection cup 0.91"), (3, "cup", ObjectEvent.LOST, "x"),
        (4, "", ObjectEvent.REMOVED, "~/reset")]
    assert all(m.header == _header() for m in msgs)


def test_object_options_from_the_parameters():
    settings = Settings(detection_classes=["cup"], detection_min_score=0.7, detection_match_iou=0.4,
                        presence_threshold=0.6, lost_after=3, remove_lost_after=2.5, max_objects=5)
    assert object_options(settings) == ObjectOptions(("cup",), 0.7, 0.4, 0.6, 3, 2.5, 5)
    assert object_options(Settings()) == ObjectOptions(), "the parameter defaults are the core's defaults"
    with pytest.raises(ValueError, match="detection_match_iou"):
        object_options(Settings(detection_match_iou=0.0))


def _applied(skipped=(), over_limit=(), failed=()):
    plan = DetectionPlan(new=(), reacquired=(), matched=(), filtered=(), over_limit=tuple(over_limit),
                         skipped=tuple(skipped))
    return AppliedDetections(plan, (), tuple(failed))


def test_detection_log_lines_and_the_limit_said_once():
    registry, log = ObjectRegistry(ObjectOptions(max_objects=1)), DetectionLog()
    assert log.lines(_applied(), registry, True, 7) == []
    lines = log.lines(_applied(skipped=[(0, "centre is not finite (nan, 5)")], failed=[(2, "no frame")]), registry,
                      False, 7)
    assert [(k, w) for k, w, _ in lines] == [("detections skipped", True), ("detections late", False),
                                             ("detections failed 2", True)]
    assert "skipped 1 malformed: #0 centre is not finite (nan, 5)" in lines[0][2] and "no frame" in lines[2][2]
    registry.add(1, 0.0)
    full = _applied(over_limit=[3])
    assert [k for k, _, _ in log.lines(full, registry, True, 8)] == ["detections limit"]
    assert log.lines(full, registry, True, 9) == [], "said once while the limit holds"
    registry.remove(1, 1.0)
    assert log.lines(_applied(), registry, True, 10) == []  # room again: re-armed
    registry.add(1, 2.0)
    assert [k for k, _, _ in log.lines(full, registry, True, 11)] == ["detections limit"]


def test_detection_log_lines_have_bounded_length():
    """A detector sending 40 malformed boxes made a 6.7 k-character line and a line per refused box (issue 19): the
    first few are listed, then the count."""
    registry, log = ObjectRegistry(), DetectionLog()
    skipped = [(i, f"size must be > 0, got -{i} x 1e+300") for i in range(40)]
    failed = [(i, "box corner (1e+09, 0) is outside the 64x48 image") for i in range(40)]
    lines = log.lines(_applied(skipped=skipped, failed=failed), registry, True, 7)
    assert all(len(text) <= 600 for _, _, text in lines), max(len(text) for _, _, text in lines)
    assert "skipped 40 malformed: #0 size must be > 0" in lines[0][2] and "... (40 in all)" in lines[0][2]
    assert len(lines) <= 7 and "refused by the tracker" in lines[-1][2] and "40" in lines[-1][2]


def test_detection_log_says_which_objects_were_corrected_and_why():
    from sam2_ros.objects import DetectionAction

    registry, log = ObjectRegistry(), DetectionLog()
    action = DetectionAction(0, 2, np.array([0.0, 0, 10, 10]), "cup", 0.9, agreement=0.1,
                             why="its mask sits on object 1's detection")
    plan = DetectionPlan(new=(), reacquired=(), matched=(), filtered=(), over_limit=(), skipped=(),
                         corrections=(action,))
    lines = log.lines(AppliedDetections(plan, (), (), (2,)), registry, True, 7)
    assert lines == [("detections corrected", False, "~/detections (stamp 7): re-prompted with its detection box: "
                      "object 2: its mask sits on object 1's detection (0 corrections so far)")]
