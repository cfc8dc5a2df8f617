"""A guard for rclpy callbacks: the node keeps running whatever a message makes a callback raise."""
from __future__ import annotations

import functools
import traceback
from typing import Any, Callable

from sam2_ros.ros.logtext import clip


def guarded(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Log an unexpected exception of a node's topic or timer callback instead of letting it stop the executor (the
    services have their own guard, which also answers the caller: services.py)."""
    @functools.wraps(callback)
    def run(self, *args):
        try:
            return callback(self, *args)
        except Exception as err:
            if not self.context.ok():  # SIGINT / SIGTERM came while it ran (e.g. publishing): that is no error
                return None
            text = clip(f"{callback.__name__} failed: {type(err).__name__}: {err}")
            self.get_logger().error(text + "\n" + traceback.format_exc(limit=4))
            return None
    return run
