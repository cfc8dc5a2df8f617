"""Helpers for tests that talk to real ROS 2 processes over Fast DDS (localhost only, private domain): the package's
child-process launcher and polling helper, plus this checkout's root."""
from __future__ import annotations

from pathlib import Path

from sam2_ros.ros.client import wait_for  # noqa: F401  (re-exported for the tests)
from sam2_ros.ros.node_process import ChildProcess as Proc  # noqa: F401
from sam2_ros.ros.node_process import child_env

ROOT = Path(__file__).resolve().parents[1]


def ros_env(**extra: str) -> dict[str, str]:
    """Environment for a child ROS process: localhost discovery, this test run's domain (conftest's ros_domain),
    sources importable."""
    return child_env(extra)
