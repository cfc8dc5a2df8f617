"""`--depth`: the click demo with an RGB-D camera (registered 16UC1 depth + camera_info from `sam2_ros.sim.depth`);
the node runs with use_depth and the summary adds each object's 3-D centroid error (~/detections_3d's centroid
against the ground truth of the shape it was prompted on)."""
from __future__ import annotations

from typing import Any

import numpy as np

from sam2_ros.demo.clicks import ClickDemo
from sam2_ros.ros import stamps
from sam2_ros.sim import SyntheticDepthCamera

DEPTH_TOPIC, INFO_TOPIC = "/demo/camera/depth", "/demo/camera/camera_info"


class DepthDemo(ClickDemo):
    """Clicks and a box as in ClickDemo, on an RGB-D camera."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depth_camera = SyntheticDepthCamera(self.scene)
        self.truth_3d: dict[int, np.ndarray] = {}  # stamp -> [N, 3] ground-truth centroids (m)
        self.errors_3d: dict[int, list[np.ndarray]] = {1: [], 2: []}  # object id -> centroid errors (m)

    def connect(self, node: Any, reliable: Any) -> None:
        from sensor_msgs.msg import CameraInfo, Image
        from vision_msgs.msg import Detection3DArray

        super().connect(node, reliable)
        self.depth_pub = node.create_publisher(Image, DEPTH_TOPIC, reliable)
        self.info_pub = node.create_publisher(CameraInfo, INFO_TOPIC, reliable)
        node.create_subscription(Detection3DArray, "/sam2/detections_3d", self._on_detections_3d, reliable)

    def before_frame(self, frame: Any, header: Any, stamp: int) -> None:
        """camera_info and the registered depth, with the colour image's header."""
        from sam2_ros.ros.conversions import array_to_image

        depth = self.depth_camera.render(frame, "16UC1")
        self.info_pub.publish(camera_info(self.depth_camera.intrinsics, header))
        self.depth_pub.publish(array_to_image(depth.depth, "16UC1", header))
        with self.lock:
            self.truth_3d[stamp] = depth.centroids

    def _on_detections_3d(self, msg: Any) -> None:
        stamp = stamps.to_ns(msg.header.stamp)
        with self.lock:
            truth = self.truth_3d.get(stamp)
            if truth is None or self.prompt_stamp is None or stamp < self.prompt_stamp:
                return
            for d in msg.detections:
                object_id = int(d.id)
                if object_id in self.errors_3d and object_id in self.targets:
                    p = d.results[0].pose.pose.position
                    self.errors_3d[object_id].append(np.array([p.x, p.y, p.z]) - truth[self.targets[object_id]])

    def summary_tail(self) -> str:
        """'centroid_err_mm obj1 <median |error|> (x .. y .. z ..; n frames) obj2 ... '."""
        parts = []
        with self.lock:
            errors = {k: np.array(v).reshape(-1, 3) for k, v in self.errors_3d.items()}
        for object_id, e in errors.items():
            if not len(e):
                parts.append(f"obj{object_id} nan (no 3-D output)")
                continue
            ax = np.median(np.abs(e), axis=0) * 1e3
            parts.append(f"obj{object_id} {np.median(np.linalg.norm(e, axis=1)) * 1e3:.1f} (x {ax[0]:.1f} "
                         f"y {ax[1]:.1f} z {ax[2]:.1f}; {len(e)} frames)")
        return "centroid_err_mm " + " ".join(parts) + " "


def camera_info(intrinsics: Any, header: Any) -> Any:
    """sensor_msgs/CameraInfo of a pinhole camera without distortion."""
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(header=header, width=intrinsics.width, height=intrinsics.height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[float(v) for v in intrinsics.k.reshape(-1)])
