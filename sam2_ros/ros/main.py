"""Process entry point of the sam2 node: init rclpy, autostart the lifecycle, spin, exit 0 on Ctrl-C / SIGTERM.

Nothing but a real shutdown ends the process: an exception that escapes a callback or the executor is logged and
spinning goes on (a robot's perception node must never exit by itself).
"""
from __future__ import annotations

import sys
import traceback
from typing import Any


def _spin(executor: Any, node: Any) -> None:
    """Spin until SIGINT / SIGTERM (or the context is shut down); log any other exception and spin again."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from sam2_ros.ros.logtext import clip

    while True:
        try:
            executor.spin()
            return
        except (KeyboardInterrupt, ExternalShutdownException):
            return
        except Exception as err:
            # A signal can shut the context down between two waits of the executor; then spin raises an RCLError
            # ("context is not valid") instead of ExternalShutdownException. That is a normal exit too.
            if not rclpy.ok():
                return
            where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
            at = f" at {where.filename}:{where.lineno}" if where else ""
            node.warn("executor error", clip(f"executor: {type(err).__name__}: {err}") + f"{at} (the node keeps "
                      "running)")


def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; returns the process exit code."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn

    from sam2_ros.ros.node import Sam2Node

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = Sam2Node()
    # Images, prompts and services each get a thread, so a blocking add_prompt never stops the image stream.
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            # Stays unconfigured (and says why) when configure fails, as a managed node should.
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        _spin(executor, node)
    finally:
        node.shutdown()  # join the inference thread before the context goes away
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
