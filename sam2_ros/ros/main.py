"""Process entry point of the sam2 node: init rclpy, autostart the lifecycle, spin, exit 0 on Ctrl-C / SIGTERM."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; returns the process exit code."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
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
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal can shut the context down between two waits of the executor; then spin raises an RCLError
        # ("context is not valid") instead of ExternalShutdownException. That is a normal exit too.
        if rclpy.ok():
            raise
    finally:
        node.shutdown()  # join the inference thread before the context goes away
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
