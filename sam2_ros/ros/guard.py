"""A guard for rclpy callbacks: the node keeps running whatever a message or request makes a callback raise."""
from __future__ import annotations

import functools
import traceback
from typing import Any, Callable


def guarded(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Log an unexpected exception of a node's callback instead of letting it stop the executor; a service callback
    (self, request, response) then answers success=False with the error."""
    @functools.wraps(callback)
    def run(self, *args):
        try:
            return callback(self, *args)
        except Exception as err:
            text = f"{callback.__name__} failed: {type(err).__name__}: {err}"
            self.get_logger().error(text + "\n" + traceback.format_exc(limit=4))
            response = args[1] if len(args) == 2 and hasattr(args[1], "success") else None
            if response is not None:
                response.success, response.message = False, text
            return response
    return run
