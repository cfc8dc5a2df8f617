"""What a program that talks to the sam2 node needs (the demo, benchmarks, tests): a private DDS domain and an rclpy
node spun in the background."""
from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any


def use_private_domain(environ: MutableMapping[str, str] = os.environ) -> str:
    """Localhost-only discovery and a DDS domain picked for this process, written into `environ` (before rclpy.init
    and before starting child processes), so concurrent runs on one machine never hear each other; returns the id.
    A domain whose first participant port is taken (another run is in it) is skipped while a free one remains."""
    domains = list(range(1, 101))
    random.Random(os.getpid() ^ time.time_ns()).shuffle(domains)
    domain = str(next((d for d in domains if not domain_in_use(d)), domains[0]))
    environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    environ["ROS_DOMAIN_ID"] = domain
    return domain


def domain_in_use(domain: int) -> bool:
    """Whether a DDS participant on this machine holds domain `domain`'s first unicast discovery port (RTPS well-known
    ports: 7400 + 250 * domain + 10; the first participant of a domain binds it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("0.0.0.0", 7410 + 250 * domain))
    except OSError:
        return True
    finally:
        sock.close()
    return False


@contextmanager
def spinning_node(name: str) -> Iterator[Any]:
    """An rclpy node in a context of its own, spun by a background executor thread; on exit the executor stops, the
    thread is joined before the context shuts down (else rclpy can abort), and the node is destroyed."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    node = rclpy.create_node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.shutdown()
        thread.join(5)
        node.destroy_node()
        rclpy.shutdown(context=context)


def spin_until_signal(node: Any, first: Callable[[], None] | None = None) -> int:
    """Run `first()` (e.g. wait for discovery), then spin `node` in the default context until Ctrl-C / SIGTERM, then
    destroy it and shut rclpy down: how a small helper process (a fixture, a tool) ends cleanly; returns 0."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        if first is not None:
            first()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
