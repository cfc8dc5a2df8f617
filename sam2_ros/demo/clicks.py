"""The default demo: an operator clicks the most visible shape (object 1) and boxes the next most visible one
(object 2) on the newest frame the node has answered; J of each against the shape it was prompted on."""
from __future__ import annotations

from typing import Any

import numpy as np

from sam2_ros.demo.camera import CameraDemo, mean_or_nan
from sam2_ros.ros import stamps
from sam2_ros.sim import jaccard


class ClickDemo(CameraDemo):
    """Prompts by ~/click and ~/prompt (a box), as rqt_image_view and a script would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scores: dict[int, list[float]] = {1: [], 2: []}
        self.prompt_stamp: int | None = None
        self.targets: dict[int, int] = {}  # object id -> index of the scene shape it was prompted on

    def connect(self, node: Any, reliable: Any) -> None:
        from geometry_msgs.msg import PointStamped

        from sam2_ros.msg import Prompt

        self.click = node.create_publisher(PointStamped, "/sam2/click", reliable)
        self.prompt = node.create_publisher(Prompt, "/sam2/prompt", reliable)

    def start(self, node: Any) -> None:
        """A click on the most visible shape, a box around the next; a shape hidden behind others is left alone."""
        from geometry_msgs.msg import Point, PointStamped

        from sam2_ros.ros.client import prompt_msg

        stamp, frame = self.latest_frame()
        clicked, boxed = (int(k) for k in np.argsort(-frame.masks.sum(axis=(1, 2)), kind="stable")[:2])
        bounds = frame.box(boxed)
        self.targets = {1: clicked, 2: boxed}
        x, y = frame.inner_point(clicked)
        click = PointStamped(point=Point(x=x, y=y))
        stamps.set_ns(click.header, stamp)
        self.click.publish(click)
        self.prompt.publish(prompt_msg(2, stamp, box=bounds))
        with self.lock:
            self.prompt_stamp = stamp
        print(f"prompted frame {frame.index}: click ({x:.0f}, {y:.0f}) on shape {clicked} (object 1), "
              f"box {bounds} on shape {boxed} (object 2)", flush=True)

    def score(self, index: int, stamp: int, msg: Any) -> None:
        from sam2_ros.ros.conversions import image_to_array

        with self.lock:
            if self.prompt_stamp is None or stamp < self.prompt_stamp:
                return
        truth = self.scene.frame(index).masks
        found = {o.object_id: image_to_array(o.mask)[:, :, 0] > 0 for o in msg.objects}
        with self.lock:
            for object_id in self.scores:
                if object_id in found:
                    self.scores[object_id].append(jaccard(found[object_id], truth[self.targets[object_id]]))

    def summary_fields(self) -> str:
        with self.lock:
            scores = {k: list(v) for k, v in self.scores.items()}
        j = {k: mean_or_nan(v) for k, v in scores.items()}
        j_all = mean_or_nan([x for v in scores.values() for x in v])
        return f"J={j_all:.3f} (click obj1 {j[1]:.3f}, box obj2 {j[2]:.3f}) "
