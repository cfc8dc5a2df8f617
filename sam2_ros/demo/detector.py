"""`--detector`: the demo driven by a detector instead of an operator's clicks.

Next to each camera frame, a synthetic detector (`sam2_ros.sim.SyntheticDetector`) publishes the frame's shapes as a
vision_msgs/Detection2DArray (ground-truth boxes, one class name per shape, the image's header) on /demo/detections,
which the node reads as its `~/detections` (remapped). Every object is created by the node from those boxes; the
summary says how many, with which labels, their J against the shape their label names, and the events seen.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sam2_ros.demo.camera import CameraDemo, mean_or_nan
from sam2_ros.sim import SyntheticDetector, jaccard

DETECTIONS_TOPIC = "/demo/detections"


class DetectorDemo(CameraDemo):
    """Camera + synthetic detector + recorder; the node makes the objects from the boxes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.detector = SyntheticDetector(seed=self.args.seed)
        self.shape_of = {self.detector.class_of(i): k for k, i in enumerate(self.scene.object_ids)}  # label -> shape
        self.j_by_object: dict[int, list[float]] = defaultdict(list)
        self.added: dict[int, str] = {}  # object id -> label, from ADDED events
        self.events: Counter = Counter()

    def connect(self, node: Any, reliable: Any) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray

        from sam2_ros.msg import ObjectEvent

        self.detections = node.create_publisher(Detection2DArray, DETECTIONS_TOPIC, reliable)
        node.create_subscription(ObjectEvent, "/sam2/events", self._on_event,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))

    def start(self, node: Any) -> None:
        print(f"the node answers; the detector publishes {len(self.scene.object_ids)} shapes per frame as "
              f"{', '.join(self.shape_of)} on {DETECTIONS_TOPIC}", flush=True)

    def after_frame(self, frame: Any, header: Any) -> None:
        from sam2_ros.ros.detection_msgs import detection_array

        self.detections.publish(detection_array([d.raw for d in self.detector.detect(frame)], header))

    def _on_event(self, msg: Any) -> None:
        from sam2_ros.msg import ObjectEvent

        names = {ObjectEvent.ADDED: "ADDED", ObjectEvent.LOST: "LOST", ObjectEvent.FOUND: "FOUND",
                 ObjectEvent.REACQUIRED: "REACQUIRED", ObjectEvent.REMOVED: "REMOVED"}
        with self.lock:
            self.events[names.get(msg.event, str(msg.event))] += 1
            if msg.event == ObjectEvent.ADDED:
                self.added[msg.object_id] = msg.label

    def score(self, index: int, stamp: int, msg: Any) -> None:
        """J against the shape the object's label names (0 for a label of no shape)."""
        from sam2_ros.ros.conversions import image_to_array

        truth = self.scene.frame(index).masks
        for o in msg.objects:
            shape = self.shape_of.get(o.label)
            mask = image_to_array(o.mask)[:, :, 0] > 0
            value = jaccard(mask, truth[shape]) if shape is not None else 0.0
            with self.lock:
                self.j_by_object[o.object_id].append(value)

    def summary_fields(self) -> str:
        with self.lock:
            added, events = dict(self.added), dict(self.events)
            scores = {k: list(v) for k, v in self.j_by_object.items()}
        every = [x for v in scores.values() for x in v]
        per = ", ".join(f"{i} {added.get(i, '?')} {mean_or_nan(scores[i]):.3f}" for i in sorted(scores))
        return (f"objects={len(added)} labels={','.join(added[i] for i in sorted(added)) or '-'} "
                f"J={mean_or_nan(every):.3f} ({per or 'no objects'}) "
                f"events={','.join(f'{k}:{v}' for k, v in sorted(events.items())) or '-'} ")
