"""Placeholder lifecycle node; the full node replaces this file."""
from rclpy.lifecycle import LifecycleNode


class Sam2Node(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("sam2")
