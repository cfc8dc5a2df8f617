"""Process entry point of the sam2 node: init rclpy, spin, shut down cleanly on Ctrl-C / SIGTERM."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from sam2_ros.ros.node import Sam2Node

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = Sam2Node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
