"""What every demo mode shares: the synthetic camera it plays to the node, the recorder of the node's answers
(overlay PNGs, arrival times, what /diagnostics says ran), the play loop and the common part of the summary."""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sam2_ros.ros import stamps
from sam2_ros.ros.node_process import NodeProcess
from sam2_ros.sim import SyntheticScene

CAMERA_TOPIC = "/demo/camera/image"
FRAME_ID = "demo_camera_optical"


class CameraDemo:
    """Camera + recorder in one rclpy node; the sam2 node is a child process. Modes override `start` (what happens
    once the node answers), `score(index, msg)` and `summary_fields`."""

    name = "demo"

    def __init__(self, args: argparse.Namespace, out: Path, node_proc: NodeProcess) -> None:
        self.args, self.out, self.node_proc = args, out, node_proc
        self.scene = SyntheticScene(args.height, args.width, num_objects=4, seed=args.seed)
        self.lock = threading.Lock()
        self.sent: dict[int, tuple[int, float]] = {}  # stamp_ns -> (frame index, send time)
        self.outputs: list[tuple[int, float]] = []  # (stamp_ns, arrival)
        self.saved = 0
        self.diagnostics: dict[str, str] = {}  # the node's last /diagnostics values
        self.first_output = threading.Event()
        self.started_at: float | None = None  # when the mode started (after the first answer)

    # ---------------------------------------------------------------- set-up
    def run(self) -> int:
        """Connect to the node, play the camera; 0 when the node answered."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from sam2_ros.msg import ObjectMaskArray
        from sam2_ros.ros.client import spinning_node

        with spinning_node("sam2_demo") as node:
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            # Reliable, and the node told so: best-effort 640x480 frames between processes lose most of their UDP
            # fragments with Fast DDS's defaults here (measured: 6 of 139 frames delivered, vs 116 of 139 reliable).
            self.camera = node.create_publisher(Image, CAMERA_TOPIC, reliable)
            node.create_subscription(Image, "/sam2/overlay", self._on_overlay, reliable)
            node.create_subscription(ObjectMaskArray, "/sam2/masks", self._on_masks, reliable)
            node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
            self.connect(node, reliable)
            return self._play(node)

    def connect(self, node: Any, reliable: Any) -> None:
        """The mode's own publishers and subscriptions."""

    # ---------------------------------------------------------------- the loop
    def _play(self, node: Any) -> int:
        period = 1.0 / self.args.fps
        index, deadline = 0, time.monotonic() + self.args.startup_timeout
        while True:
            now = time.monotonic()
            if self.started_at is None and self.first_output.is_set():
                self.started_at = now
                self.start(node)
            if self.started_at is None and self._startup_failed(now, deadline):
                return 1
            if self.started_at is not None and now - self.started_at > self.args.seconds:
                break
            self._send(node, index)
            index += 1
            time.sleep(max(0.0, period - (time.monotonic() - now)))
        time.sleep(1.0)  # let the last outputs arrive
        return 0

    def start(self, node: Any) -> None:
        """Once the node has answered a frame (e.g. prompt it)."""

    def _startup_failed(self, now: float, deadline: float) -> bool:
        """True, saying why, when the node has exited or has produced no output by `deadline`."""
        exited = not self.node_proc.running()
        if exited or now > deadline:
            print(f"the node produced no output ({'it exited' if exited else 'timeout'}); see {self.out / 'node.log'}",
                  flush=True)
        return exited or now > deadline

    def _send(self, node: Any, index: int) -> None:
        """Publish scene frame `index` stamped now and note when."""
        from sam2_ros.ros.client import image_msg

        frame = self.scene.frame(index)
        msg = image_msg(frame.rgb, node.get_clock().now().nanoseconds, FRAME_ID)
        stamp = stamps.to_ns(msg.header.stamp)
        self.before_frame(frame, msg.header, stamp)
        with self.lock:
            self.sent[stamp] = (index, time.monotonic())
        self.camera.publish(msg)
        self.after_frame(frame, msg.header)

    def before_frame(self, frame: Any, header: Any, stamp: int) -> None:
        """What goes out just before a camera frame (depth and camera_info)."""

    def after_frame(self, frame: Any, header: Any) -> None:
        """What goes out right after a camera frame (detections)."""

    # ---------------------------------------------------------------- the node's answers
    def latest_frame(self) -> tuple[int, Any]:
        """(stamp, scene frame) of the newest frame the node has answered."""
        with self.lock:
            stamp = self.outputs[-1][0]
            index = self.sent[stamp][0]
        return stamp, self.scene.frame(index)

    def _on_masks(self, msg: Any) -> None:
        stamp = stamps.to_ns(msg.header.stamp)
        with self.lock:  # only answers to our own frames (another run may share the DDS domain)
            if stamp not in self.sent:
                return
            self.outputs.append((stamp, time.monotonic()))
            index = self.sent[stamp][0]
        self.first_output.set()
        self.score(index, stamp, msg)

    def score(self, index: int, stamp: int, msg: Any) -> None:
        """Score one ~/masks answer for scene frame `index` against its ground truth."""

    def _on_overlay(self, msg: Any) -> None:
        from PIL import Image as PilImage

        from sam2_ros.ros.conversions import image_to_array

        with self.lock:
            ours = stamps.to_ns(msg.header.stamp) in self.sent
        if ours and self.saved < self.args.max_frames:
            PilImage.fromarray(image_to_array(msg)).save(self.out / f"overlay_{self.saved:04d}.png")
            self.saved += 1

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.node_proc.name}:"):
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    # ---------------------------------------------------------------- summary
    def summary(self, weights: str) -> str:
        """One line: rates and latency, the mode's fields, what ran (from /diagnostics) and where the files are."""
        with self.lock:
            outputs, sent, diagnostics = list(self.outputs), dict(self.sent), dict(self.diagnostics)
        latency = [arrival - sent[s][1] for s, arrival in outputs]
        span = (outputs[-1][1] - outputs[0][1]) if len(outputs) > 1 else 0.0
        fps = (len(outputs) - 1) / span if span > 0 else 0.0
        ran = f"backend={diagnostics.get('backend', '?')} start_s={diagnostics.get('ready_s', '?')}"
        return (f"frames_in={len(sent)} frames_out={len(outputs)} fps={fps:.2f} "
                f"latency_ms={1e3 * float(np.mean(latency)) if latency else float('nan'):.0f} "
                f"{self.summary_fields()}weights={weights} {ran} overlays={self.saved} {self.summary_tail()}"
                f"folder={self.out}")

    def summary_fields(self) -> str:
        """The mode's scores, each followed by a space."""
        return ""

    def summary_tail(self) -> str:
        """More of the mode's fields after the common ones, each followed by a space."""
        return ""


def mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
