"""The control for bench/soak.py (`--echo`, started as `python -m bench.soak_echo`): a process that answers like the sam2 node on the wire but runs no model.

It subscribes `image` as the node does (reliable, depth 1), and for every frame publishes on `~/masks` (`/sam2/masks`)
an ObjectMaskArray with the frame's header and three 640x480 mono8 masks, the same size as the node's; `~/add_prompt`
answers success. A soak that degrades with this process too is a transport matter, not the node's.
"""
from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    """Run until SIGINT."""
    import rclpy
    from sam2_ros.ros.client import spin_until_signal
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2_ros.msg import ObjectMask, ObjectMaskArray
    from sam2_ros.ros.conversions import mask_to_image
    from sam2_ros.srv import AddPrompt

    rclpy.init(args=sys.argv)
    node = rclpy.create_node("sam2")
    masks = [mask_to_image(np.random.default_rng(k).random((480, 640)) > 0.5) for k in range(3)]
    pub = node.create_publisher(ObjectMaskArray, "~/masks", QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE))

    def on_image(msg) -> None:
        out = ObjectMaskArray(header=msg.header)
        out.objects = [ObjectMask(object_id=k + 1, mask=m) for k, m in enumerate(masks)]
        pub.publish(out)

    def add_prompt(request, response):
        response.success, response.message = True, "echo"
        return response

    node.create_subscription(Image, "image", on_image, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    node.create_service(AddPrompt, "~/add_prompt", add_prompt)
    return spin_until_signal(node)


if __name__ == "__main__":
    sys.exit(main())
