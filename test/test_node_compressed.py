"""image/compressed input (use_compressed: true) through a node process over real Fast DDS: PNG and JPEG frames are
tracked with their headers kept; a corrupt or non-PNG/JPEG payload is logged and dropped, and the node goes on."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest

from fixtures.checkpoint import write_checkpoint
from fixtures.node_harness import NodeClient, prompt_msg, start_node
from ros_util import wait_for
from sam2_ros.ros.client import spinning_node
from sam2_ros.sim import SyntheticScene
from sam2_ros.ros import stamps

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCENE = SyntheticScene(96, 128, num_objects=2, seed=5)
BASE = 1_750_000_000 * 1_000_000_000


def _compressed(rgb: np.ndarray, fmt: str, stamp_ns: int):
    from PIL import Image as PilImage
    from sensor_msgs.msg import CompressedImage

    buf = io.BytesIO()
    PilImage.fromarray(rgb).save(buf, format=fmt)
    msg = CompressedImage(format=fmt.lower(), data=buf.getvalue())
    msg.header.frame_id = "camera_optical"
    stamps.set_ns(msg.header, stamp_ns)
    return msg


def _publish_until(client: NodeClient, pub, msg, stamp_ns: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(msg)
        if wait_for(lambda: any(stamps.to_ns(m.header.stamp) == stamp_ns for m in client.msgs("masks")), 0.5, 0.02):
            return next(m for m in client.msgs("masks") if stamps.to_ns(m.header.stamp) == stamp_ns)
    raise AssertionError(f"no masks for stamp {stamp_ns}")


def test_compressed_frames_are_tracked_and_bad_ones_dropped(tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage

    proc = start_node(tmp_path, checkpoint=str(write_checkpoint(tmp_path / "weights.pt")), use_compressed=True)
    try:
        with spinning_node("compressed_client") as node:
            client = NodeClient(node)
            pub = node.create_publisher(CompressedImage, "/image/compressed", qos_profile_sensor_data)
            assert wait_for(lambda: pub.get_subscription_count() > 0, 30), "node does not subscribe image/compressed"
            first = BASE + 1_000_000_000
            out = _publish_until(client, pub, _compressed(SCENE.frame(0).rgb, "PNG", first), first)
            assert out.header.frame_id == "camera_optical" and list(out.objects) == []
            client.prompt_pub.publish(prompt_msg(4, first, box=SCENE.frame(0).box(1)))
            assert wait_for(lambda: any(4 in [o.object_id for o in m.objects] for m in client.msgs("masks")), 30)
            bad = _compressed(SCENE.frame(1).rgb, "PNG", BASE + 2_000_000_000)
            bad.data = bytes(bad.data)[:len(bad.data) // 2]  # truncated in the pixel data
            gif = _compressed(SCENE.frame(1).rgb, "GIF", BASE + 3_000_000_000)
            for msg, why in ((bad, "corrupt PNG data"), (gif, "not a PNG or JPEG image")):
                deadline = time.monotonic() + 30  # the image queue keeps only the newest message: one at a time
                while why not in proc.output() and time.monotonic() < deadline:
                    pub.publish(msg)
                    time.sleep(0.3)
                assert why in proc.output(), proc.output()[-3000:]
            later = BASE + 4_000_000_000
            out = _publish_until(client, pub, _compressed(SCENE.frame(2).rgb, "JPEG", later), later)
            assert [o.object_id for o in out.objects] == [4]  # still tracking after the bad messages
            seen = {stamps.to_ns(m.header.stamp) for m in client.msgs("masks")}
            assert BASE + 2_000_000_000 not in seen and BASE + 3_000_000_000 not in seen
            assert proc.popen.poll() is None
    finally:
        assert proc.stop() == 0, proc.output()[-3000:]
