"""`python -m sam2_ros.demo --detector`: the demo driven by a detector instead of an operator's clicks.

Next to each synthetic camera frame, a synthetic detector publishes the frame's shapes as a vision_msgs/Detection2DArray
(ground-truth boxes, one class name per shape, the image's header) on /demo/detections, which the node reads as its
`~/detections` (remapped). Every object is created by the node from those boxes; the summary line says how many, with
which labels, and their J against the ground truth of the shape their label names.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np

from sam2_ros.demo import Demo
from sam2_ros.sim import SyntheticDetector
from sam2_ros.ros.client import spinning_node
from sam2_ros.sim import jaccard

DETECTIONS_TOPIC = "/demo/detections"


class DetectorDemo(Demo):
    """Camera + synthetic detector + recorder in one rclpy node; the sam2 node is a child process."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.detector = SyntheticDetector(seed=self.args.seed)
        self.shape_of = {self.detector.class_of(i): k for k, i in enumerate(self.scene.object_ids)}  # label -> shape
        self.j_by_object: dict[int, list[float]] = defaultdict(list)
        self.added: dict[int, str] = {}  # object id -> label, from ADDED events
        self.events: Counter = Counter()

    def run(self) -> int:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        from sam2_ros.msg import ObjectEvent, ObjectMaskArray

        with spinning_node("sam2_demo") as node:
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            self.camera = node.create_publisher(Image, "/demo/camera/image", reliable)
            self.detections = node.create_publisher(Detection2DArray, DETECTIONS_TOPIC, reliable)
            node.create_subscription(Image, "/sam2/overlay", self._on_overlay, reliable)
            node.create_subscription(ObjectMaskArray, "/sam2/masks", self._on_masks, reliable)
            node.create_subscription(ObjectEvent, "/sam2/events", self._on_event,
                                     QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
            return self._play(node)

    def _play(self, node) -> int:
        period = 1.0 / self.args.fps
        index, deadline, started = 0, time.monotonic() + self.args.startup_timeout, None
        while True:
            now = time.monotonic()
            if started is None and self.first_output.is_set():
                started = now
                print(f"the node answers; the detector publishes {len(self.scene.object_ids)} shapes per frame as "
                      f"{', '.join(self.shape_of)} on {DETECTIONS_TOPIC}", flush=True)
            if started is None and self._startup_failed(now, deadline):
                return 1
            if started is not None and now - started > self.args.seconds:
                break
            self._send(node, index)
            index += 1
            time.sleep(max(0.0, period - (time.monotonic() - now)))
        time.sleep(1.0)  # let the last outputs arrive
        return 0

    def _after_frame(self, frame, msg) -> None:
        from sam2_ros.ros.detections import detection_array

        self.detections.publish(detection_array([d.raw for d in self.detector.detect(frame)], msg.header))

    def _on_event(self, msg) -> None:
        from sam2_ros.msg import ObjectEvent

        names = {ObjectEvent.ADDED: "ADDED", ObjectEvent.LOST: "LOST", ObjectEvent.FOUND: "FOUND",
                 ObjectEvent.REACQUIRED: "REACQUIRED", ObjectEvent.REMOVED: "REMOVED"}
        with self.lock:
            self.events[names.get(msg.event, str(msg.event))] += 1
            if msg.event == ObjectEvent.ADDED:
                self.added[msg.object_id] = msg.label

    def _on_masks(self, msg) -> None:
        from sam2_ros.ros.conversions import image_to_array
        from sam2_ros.ros.prompts import stamp_ns

        stamp = stamp_ns(msg.header.stamp)
        with self.lock:
            if stamp not in self.sent:
                return
            self.outputs.append((stamp, time.monotonic()))
            index = self.sent[stamp][0]
        self.first_output.set()
        truth = self.scene.frame(index).masks
        for o in msg.objects:  # J against the shape the object's label names (0 for a label of no shape)
            shape = self.shape_of.get(o.label)
            mask = image_to_array(o.mask)[:, :, 0] > 0
            score = jaccard(mask, truth[shape]) if shape is not None else 0.0
            with self.lock:
                self.j_by_object[o.object_id].append(score)

    def summary(self, weights: str) -> str:
        with self.lock:
            outputs, sent = list(self.outputs), dict(self.sent)
            added, events = dict(self.added), dict(self.events)
            scores = {k: list(v) for k, v in self.j_by_object.items()}
        latency = [arrival - sent[s][1] for s, arrival in outputs]
        span = (outputs[-1][1] - outputs[0][1]) if len(outputs) > 1 else 0.0
        fps = (len(outputs) - 1) / span if span > 0 else 0.0
        every = [x for v in scores.values() for x in v]
        per = ", ".join(f"{i} {added.get(i, '?')} {np.mean(scores[i]):.3f}" for i in sorted(scores))
        return (f"frames_in={len(sent)} frames_out={len(outputs)} fps={fps:.2f} "
                f"latency_ms={1e3 * float(np.mean(latency)) if latency else float('nan'):.0f} "
                f"objects={len(added)} labels={','.join(added[i] for i in sorted(added)) or '-'} "
                f"J={float(np.mean(every)) if every else float('nan'):.3f} ({per or 'no objects'}) "
                f"events={','.join(f'{k}:{v}' for k, v in sorted(events.items())) or '-'} weights={weights} "
                f"{self.node_start()} overlays={self.saved} folder={self.out}")
