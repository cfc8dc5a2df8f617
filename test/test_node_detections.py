"""Detector-driven tracking through the real node over Fast DDS (issue 14): a detector process answering the camera's
images with vision_msgs/Detection2DArray makes labelled objects; classes and scores filter (at start and at run time
over the parameter service); malformed detections are skipped with a log line; statuses and events are published.

One node process for the module: the shipped micro model (models/sam2_micro.pt, 256 px), 320x240 synthetic frames sent
reliably and one at a time (the next frame only after the node's masks for this one and the detector's array for it
arrived), so no frame is dropped and the run is the one bench/objects_quality.py measures without ROS. The node's
`~/detections` is remapped with `~/detections:=/detector/detections` (docs/detections.md). Detections start filtered to
the four shape classes (`detection_classes` from the params file).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.node_harness import prompt_msg
from ros_util import ROOT, Proc, ros_env, wait_for
from sam2_ros.objects import RawDetection, rotated_size_for_bounds
from sam2_ros.sim import CLASS_NAMES, HiddenShapeScene, pick_hide_window
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.ros import stamps

pytestmark = [pytest.mark.ros, pytest.mark.slow]

H, W = 240, 320
PERIOD = 66_666_667  # ns: 15 fps
CLASSES = list(CLASS_NAMES[:4])  # cup, bottle, book, phone: shapes 1..4
MICRO = ROOT / "models" / "sam2_micro.pt"
DETECTIONS = "/detector/detections"
SCENE = SyntheticScene(H, W, num_objects=4, seed=0)


@pytest.fixture(scope="module")
def node_params() -> dict:
    return {"name": "sam2_det", "model_config": "sam2_micro", "checkpoint": str(MICRO), "image_size": 256,
            "image_reliability": "reliable", "output_qos_depth": 10, "detection_classes": CLASSES,
            "remaps": {"~/detections": DETECTIONS}}


class Rig:
    """The camera (reliable images), a detections publisher of this process, and recorders of the detector's arrays."""

    def __init__(self, client) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray

        self.client = client
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.camera = client.image_pub  # reliable, as the node subscribes (image_reliability)
        self.detections = client.node.create_publisher(Detection2DArray, DETECTIONS, reliable)
        client.node.create_subscription(Detection2DArray, DETECTIONS, client._recorder("detections"), reliable)
        assert wait_for(lambda: self.detections.get_subscription_count() >= 2, 30), "node not on ~/detections"

    def frame(self, rgb: np.ndarray, stamp: int, detector: bool = False, timeout: float = 60.0):
        """Send one frame; return the node's last ~/masks for it (and wait for the detector's array if one runs)."""
        from fixtures.node_harness import image_msg

        self.camera.publish(image_msg(rgb, stamp))
        ok = wait_for(lambda: self.masks(stamp) is not None and
                      (not detector or any(stamps.to_ns(m.header.stamp) == stamp for m in self.client.msgs("detections"))),
                      timeout, 0.005)
        assert ok, f"no masks{' / detections' if detector else ''} for stamp {stamp}" + \
            f" (masks: {self.masks(stamp) is not None})"
        return self.masks(stamp)

    def masks(self, stamp: int, topic: str = "masks"):
        found = [m for m in self.client.msgs(topic) if stamps.to_ns(m.header.stamp) == stamp]
        return found[-1] if found else None

    def confidence(self, stamp: int):
        """The node's last ~/confidence for the frame (published just after its masks)."""
        assert wait_for(lambda: self.masks(stamp, "confidence") is not None, 10), f"no confidence for {stamp}"
        return self.masks(stamp, "confidence")

    def publish(self, raws: list[RawDetection], stamp: int) -> None:
        from fixtures.node_harness import image_msg
        from sam2_ros.ros.detection_msgs import detection_array

        self.detections.publish(detection_array(raws, image_msg(np.zeros((1, 1, 3), np.uint8), stamp).header))

    def events(self, since: int = 0) -> list[tuple[int, str, int, str, int]]:
        """(object_id, label, event, reason, stamp) of every event from the `since`-th on."""
        return [(e.object_id, e.label, e.event, e.reason, stamps.to_ns(e.header.stamp)) for e in self.client.msgs("events")][since:]

    def wait_events(self, since: int, count: int, timeout: float = 30.0) -> list:
        assert wait_for(lambda: len(self.events(since)) >= count, timeout), self.events(since)
        time.sleep(0.3)  # a wrong extra event would arrive with the expected ones
        return self.events(since)

    def reset(self) -> None:
        from std_srvs.srv import Trigger

        assert self.client.call(Trigger, "reset", Trigger.Request()).success


@pytest.fixture(scope="module")
def rig(client) -> Rig:
    return Rig(client)


def start_detector(rig: Rig, tmp_path: Path, base: int, *extra: str) -> Proc:
    """The detector process (test/fixtures/detector_node.py), once it hears the camera and we hear it."""
    proc = Proc([sys.executable, str(ROOT / "test" / "fixtures" / "detector_node.py"), "--base-ns", str(base),
                 "--period-ns", str(PERIOD), "--out", DETECTIONS, "--readers", "2", *extra],
                tmp_path / "detector.log", ros_env())
    ok = wait_for(lambda: proc.popen.poll() is not None or ("detector ready" in proc.output() and
                                                            rig.camera.get_subscription_count() >= 2), 60)
    assert ok and proc.popen.poll() is None, proc.output()
    return proc


def box_raw(box, class_id: str, score: float = 0.9, theta: float = 0.0) -> RawDetection:
    """A detection whose axis-aligned bounds are `box` (x0, y0, x1, y1), rotated by theta."""
    x0, y0, x1, y1 = box
    sx, sy = rotated_size_for_bounds(x1 - x0, y1 - y0, theta) if theta else (x1 - x0, y1 - y0)
    return RawDetection((x0 + x1) / 2, (y0 + y1) / 2, sx, sy, theta, ((class_id, score),))


def set_param(client, name: str, kind: str, value):
    """The node's set_parameters service (what `ros2 param set` calls); kind: a ParameterValue field, e.g.
    'string_array_value'."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    types = {"string_array_value": ParameterType.PARAMETER_STRING_ARRAY, "string_value": ParameterType.PARAMETER_STRING,
             "bool_array_value": ParameterType.PARAMETER_BOOL_ARRAY, "double_value": ParameterType.PARAMETER_DOUBLE}
    pv = ParameterValue(type=types[kind], **{kind: value})
    return client.call(SetParameters, "set_parameters", SetParameters.Request(parameters=[Parameter(
        name=name, value=pv)])).results[0]


def get_param(client, name: str):
    from rcl_interfaces.srv import GetParameters

    return client.call(GetParameters, "get_parameters", GetParameters.Request(names=[name])).values[0]


def test_detector_process_makes_one_labelled_object_per_shape(rig, node_proc, tmp_path):
    """4 shapes (scene seed 0: the phase-1 measurement's scene, mean J 0.817 without ROS), 40 frames; the detector
    repeats every shape on every frame and adds false positives of class 'clutter' (score up to 0.6), which the
    start-time detection_classes keep out."""
    from sam2_ros.msg import ObjectEvent
    from sam2_ros.ros.conversions import image_to_array

    base = 1_900_000_000 * 10**9
    rig.reset()
    since = len(rig.events())
    detector = start_detector(rig, tmp_path, base, "--shapes", "4", "--seed", "0", "--false-positives", "1.0")
    try:
        scores, per_frame = [], []
        for i in range(40):
            frame = SCENE.frame(i)
            masks = rig.frame(frame.rgb, base + i * PERIOD, detector=True)
            per_frame.append([(o.object_id, o.label, o.status) for o in masks.objects])
            for o in masks.objects:
                truth = frame.masks[CLASSES.index(o.label)]
                scores.append(jaccard(image_to_array(o.mask)[:, :, 0] > 0, truth))
                assert o.label_score == pytest.approx(0.9) and o.status in (0, 1, 2)
    finally:
        detector.stop()
    events = rig.wait_events(since, 4)
    mean_j = float(np.mean(scores))
    print(f"\n4 shapes over DDS, 40 frames: events {events}\nlast frame {per_frame[-1]}, mean J {mean_j:.3f} over "
          f"{len(scores)} object-frames")
    added = [e for e in events if e[2] == ObjectEvent.ADDED]
    assert sorted(e[0] for e in added) == [1, 2, 3, 4], "one object per shape, never a second id"
    assert sorted(e[1] for e in added) == sorted(CLASSES) and all(e[3] == f"detection {e[1]} 0.90" for e in added)
    assert not [e for e in events if e[2] == ObjectEvent.REMOVED]
    assert [o[:2] for o in per_frame[-1]] == [(e[0], e[1]) for e in sorted(added)], "labels = the classes"
    conf = rig.confidence(base + 39 * PERIOD)
    assert list(conf.labels) == [o[1] for o in per_frame[-1]] and list(conf.status) == [o[2] for o in per_frame[-1]]
    clutter = [r.hypothesis.score for m in rig.client.msgs("detections") if stamps.to_ns(m.header.stamp) >= base
               for d in m.detections for r in d.results if r.hypothesis.class_id == "clutter"]
    assert max(clutter) >= 0.5, "the filter had something to filter"
    assert mean_j >= 0.6


def test_detection_classes_and_min_score_change_at_run_time(rig, node_proc):
    from sam2_ros.msg import ObjectEvent

    base = 1_910_000_000 * 10**9
    rig.reset()
    frame = SCENE.frame(0)
    rig.frame(frame.rgb, base)
    cup, book = box_raw(frame.box(0), "cup"), box_raw(frame.box(2), "book")
    since = len(rig.events())

    assert set_param(rig.client, "detection_classes", "string_array_value", ["book"]).successful
    rig.publish([cup, book], base)
    assert [e[:4] for e in rig.wait_events(since, 1)] == [(1, "book", ObjectEvent.ADDED, "detection book 0.90")]

    # `ros2 param set /sam2 detection_classes "[]"` sends an empty *bool* array: accepted as [] (every class).
    assert set_param(rig.client, "detection_classes", "bool_array_value", []).successful
    assert list(get_param(rig.client, "detection_classes").bool_array_value) == []
    rig.publish([cup, book], base)  # the book matches object 1: only the cup is new
    assert [e[:2] for e in rig.wait_events(since, 2)[1:]] == [(2, "cup")]

    refused = set_param(rig.client, "detection_classes", "string_value", "cup")
    assert not refused.successful and "must be a list of strings" in refused.reason
    assert set_param(rig.client, "detection_min_score", "double_value", 0.95).successful
    rig.publish([box_raw(frame.box(3), "phone", 0.9), box_raw(frame.box(1), "bottle", 0.97)], base)
    assert [e[:2] for e in rig.wait_events(since, 3)[2:]] == [(3, "bottle")], "the 0.9 phone is below 0.95"
    assert set_param(rig.client, "detection_min_score", "double_value", 0.5).successful
    assert set_param(rig.client, "detection_classes", "string_array_value", CLASSES).successful
    assert list(get_param(rig.client, "detection_classes").string_array_value) == CLASSES


def test_empty_malformed_and_rotated_detections(rig, node_proc):
    from sam2_ros.msg import ObjectEvent
    from sam2_ros.ros.conversions import image_to_array

    base = 1_920_000_000 * 10**9
    rig.reset()
    frame = SCENE.frame(5)
    rig.frame(frame.rgb, base)
    since = len(rig.events())
    rig.publish([], base)
    nan = float("nan")
    rig.publish([RawDetection(nan, 50.0, 20.0, 20.0, 0.0, (("cup", 0.9),)),
                 RawDetection(100.0, 100.0, -5.0, 20.0, 0.0, (("cup", 0.9),)),
                 RawDetection(100.0, 100.0, 1e6, 20.0, 0.0, (("book", 0.9),)),
                 RawDetection(100.0, 100.0, 20.0, 20.0, 0.0, ()),
                 box_raw(frame.box(1), "bottle", 0.8, theta=0.4)], base)
    events = rig.wait_events(since, 1)
    assert [e[:4] for e in events] == [(1, "bottle", ObjectEvent.ADDED, "detection bottle 0.80")], \
        "only the good (rotated) detection made an object; the empty array nothing"
    for text in ("skipped 4 malformed", "#0 centre is not finite", "#1 size must be > 0, got -5 x 20",
                 "#2 size 1e+06 x 20 is absurd for a 320x240 image", "#3 no hypotheses (empty results)"):
        assert wait_for(lambda: text in node_proc.output(), 10), text
    nxt = SCENE.frame(6)
    masks = rig.frame(nxt.rgb, base + PERIOD)
    assert [(o.object_id, o.label) for o in masks.objects] == [(1, "bottle")], "nothing else changed"
    j = jaccard(image_to_array(masks.objects[0].mask)[:, :, 0] > 0, nxt.masks[1])
    print(f"\nrotated box (theta 0.4) around shape 2: J {j:.3f} on the next frame")
    assert j >= 0.5, "the rotated box's axis-aligned bounds prompted the shape"


def test_prompt_labels_clicks_and_removal_events(rig, node_proc):
    from geometry_msgs.msg import Point, PointStamped

    from sam2_ros.msg import ObjectEvent
    from sam2_ros.srv import AddPrompt, RemoveObject

    base = 1_930_000_000 * 10**9
    rig.reset()
    frame = SCENE.frame(10)
    rig.frame(frame.rgb, base)
    since = len(rig.events())
    prompt = prompt_msg(5, base, box=frame.box(0))
    prompt.label = "mug"
    rig.client.prompt_pub.publish(prompt)
    assert rig.wait_events(since, 1)[0][:4] == (5, "mug", ObjectEvent.ADDED, "~/prompt")
    masks = rig.frame(SCENE.frame(11).rgb, base + PERIOD)
    (obj,) = masks.objects
    assert (obj.object_id, obj.label, obj.label_score, obj.status) == (5, "mug", 0.0, obj.STATUS_TRACKED)
    conf = rig.confidence(base + PERIOD)
    assert list(conf.labels) == ["mug"] and list(conf.status) == [0]

    rig.publish([box_raw(SCENE.frame(11).box(2), "book")], base + PERIOD)
    assert rig.wait_events(since, 2)[1][:4] == (1, "book", ObjectEvent.ADDED, "detection book 0.90")
    x, y = SCENE.frame(11).inner_point(2)
    click = PointStamped(point=Point(x=x, y=y))  # click_object_id 1: the detector's object
    rig.client.click_pub.publish(click)
    assert wait_for(lambda: "(refines object 1 'book', made by a detection)" in node_proc.output(), 20)
    relabel = prompt_msg(1, 0, box=SCENE.frame(11).box(2))
    relabel.label = "novel"
    answer = rig.client.call(AddPrompt, "add_prompt", AddPrompt.Request(prompt=relabel))
    assert answer.success, answer.message
    # (sorted: the tracker's insertion order today; issue 19 publishes ascending ids)
    assert sorted((o.object_id, o.label, o.label_score) for o in answer.masks.objects) == [(1, "novel", 0.0),
                                                                                            (5, "mug", 0.0)]

    assert rig.client.call(RemoveObject, "remove_object", RemoveObject.Request(object_id=5)).success
    rig.reset()
    events = rig.wait_events(since, 4)
    assert [e[:4] for e in events[2:]] == [(5, "mug", ObjectEvent.REMOVED, "~/remove_object"),
                                           (1, "novel", ObjectEvent.REMOVED, "~/reset")]
    assert all(e[4] == base + PERIOD for e in events[2:]), "on the newest frame"


def test_shape_leaving_the_view_is_lost_then_back_with_the_same_id(rig, node_proc, tmp_path):
    """ONE shape (scene seed 1): the micro model reports a hidden shape absent only when it is alone; with other
    shapes in view its mask jumps onto one of them at presence ~1 (docs/BENCHMARKS.md), which no status rule can
    see. Phase 1 measured LOST exactly on the 15th hidden frame in this scene without ROS."""
    from sam2_ros.msg import ObjectEvent

    base = 1_940_000_000 * 10**9
    scene = SyntheticScene(H, W, num_objects=1, seed=1)
    start, _ = pick_hide_window(scene, 1, frames=40, starts=range(5, 60))
    camera = HiddenShapeScene(scene, {1: range(start, start + 40)})
    rig.reset()
    since = len(rig.events())
    detector = start_detector(rig, tmp_path, base, "--shapes", "1", "--seed", "1", "--hide", f"1:{start}:{start + 40}")
    status = {}
    try:
        for i in range(start + 45):
            masks = rig.frame(camera.frame(i).rgb, base + i * PERIOD, detector=True)
            status[i] = [(o.object_id, o.status) for o in masks.objects]
    finally:
        detector.stop()
    events = rig.wait_events(since, 3)
    frames = [(e[4] - base) // PERIOD for e in events]
    print(f"\nshape out of view on frames {start}..{start + 39}: events {[e[:4] for e in events]} on frames {frames}")
    assert [e[:3] for e in events[:2]] == [(1, "cup", ObjectEvent.ADDED), (1, "cup", ObjectEvent.LOST)]
    assert frames[:2] == [0, start + 14] and events[1][3] == "lost for 15 frames"
    assert len(events) == 3 and events[2][0] == 1, "back once, with the same id, and no second object"
    assert events[2][2] in (ObjectEvent.FOUND, ObjectEvent.REACQUIRED) and start + 40 <= frames[2] <= start + 44
    assert status[start + 14] == [(1, 2)] and status[start + 44] == [(1, 0)], "LOST, then TRACKED, in ~/masks"
