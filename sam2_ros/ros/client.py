"""What a program that talks to the sam2 node needs (the demo, benchmarks, tests): a private DDS domain, an rclpy
node spun in the background, and `NodeClient` — publishers for the node's inputs (images and prompts with stamps),
recorders of its outputs, and service calls with timeouts.

    use_private_domain()                                  # before rclpy.init and before starting the node process
    with spinning_node("my_client") as node:
        client = NodeClient(node, name="sam2", image_topic="/camera/image")
        client.wait_connected()
        masks = client.publish_until_output(rgb, stamp_ns)   # a frame, until its ~/masks arrives
        answer = client.call(AddPrompt, "add_prompt", request)
"""
from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from sam2_ros.ros import stamps


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


def wait_for(predicate: Callable[[], bool], timeout: float, period: float = 0.02) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return predicate()


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera_optical") -> Any:
    """sensor_msgs/Image rgb8 of an [H, W, 3] uint8 array with the given stamp."""
    from sam2_ros.ros.conversions import array_to_image

    msg = array_to_image(rgb, "rgb8")
    msg.header.frame_id = frame_id
    stamps.set_ns(msg.header, stamp_ns)
    return msg


def prompt_msg(object_id: int = 1, stamp_ns: int = 0, points: Sequence = (), labels: Sequence = (),
               box: Sequence[float] | None = None, mask: np.ndarray | None = None, label: str = "") -> Any:
    """sam2_ros/Prompt: pixel points (x, y) with labels, an optional box and an [H, W] uint8 mask (sent as mono8);
    stamp 0 = the newest frame."""
    from geometry_msgs.msg import Point

    from sam2_ros.msg import Prompt
    from sam2_ros.ros.conversions import array_to_image

    msg = Prompt(object_id=object_id, points=[Point(x=float(x), y=float(y)) for x, y in points], labels=list(labels),
                 label=label)
    stamps.set_ns(msg.header, stamp_ns)
    if box is not None:
        msg.has_box, msg.box = True, [float(v) for v in box]
    if mask is not None:
        msg.mask = array_to_image(mask, "mono8")
    return msg


class NodeClient:
    """Publishers for a sam2 node's inputs, recorders of its outputs, and blocking service calls with timeouts.

    name: the node's name (its private topics are /<name>/...); image_topic / camera_info_topic: where the node's
    `image` / `camera_info` are remapped; image_reliability: as the node subscribes both (a best-effort publisher would
    not reach a reliable reader); recorded: the outputs kept in `received` (a long run that measures its own outputs
    records fewer: every message is kept).
    """

    OUTPUTS = ("masks", "confidence", "label_image", "overlay")
    RECORDED = (*OUTPUTS, "events", "diagnostics")

    def __init__(self, node: Any, name: str = "sam2", image_reliability: str = "best_effort",
                 image_topic: str = "/camera/image", camera_info_topic: str = "/camera/camera_info",
                 recorded: Sequence[str] = RECORDED) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PointStamped
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        from sam2_ros.msg import ObjectConfidenceArray, ObjectEvent, ObjectMaskArray, Prompt

        self.node, self.name = node, name
        self.lock = threading.Lock()
        self.received: dict[str, list] = defaultdict(list)   # topic -> [(arrival monotonic, msg)]
        self._clients: dict[str, Any] = {}
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        camera_qos = reliable if image_reliability == "reliable" else qos_profile_sensor_data
        self.image_pub = node.create_publisher(Image, image_topic, camera_qos)
        self.info_pub = node.create_publisher(CameraInfo, camera_info_topic, camera_qos)
        self.prompt_pub = node.create_publisher(Prompt, f"/{name}/prompt", reliable)
        self.click_pub = node.create_publisher(PointStamped, f"/{name}/click", reliable)
        self.click_neg_pub = node.create_publisher(PointStamped, f"/{name}/click_negative", reliable)
        self.point_pub = node.create_publisher(PointStamped, f"/{name}/clicked_point", reliable)
        types = {"masks": ObjectMaskArray, "confidence": ObjectConfidenceArray, "label_image": Image,
                 "overlay": Image, "events": ObjectEvent}
        for topic, msg_type in types.items():
            if topic in recorded:
                node.create_subscription(msg_type, f"/{name}/{topic}", self._recorder(topic), reliable)
        if "diagnostics" in recorded:
            node.create_subscription(DiagnosticArray, "/diagnostics", self._recorder("diagnostics"), reliable)

    def record(self, topic: str, msg_type: Any, depth: int = 50) -> None:
        """Also record the node's output `~/<topic>` (reliable), e.g. the 3-D outputs of use_depth."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, f"/{self.name}/{topic}", self._recorder(topic), qos)

    def _recorder(self, topic: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self.lock:
                self.received[topic].append((time.monotonic(), msg))
        return record

    def msgs(self, topic: str) -> list:
        """Every message recorded on `topic` so far, in arrival order."""
        with self.lock:
            return [m for _, m in self.received[topic]]

    def arrivals(self, topic: str) -> list[tuple[float, Any]]:
        """(arrival time.monotonic(), message) of every message recorded on `topic`."""
        with self.lock:
            return list(self.received[topic])

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.received[topic])

    def clear(self) -> None:
        with self.lock:
            self.received.clear()

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Until the node subscribes to our image topic and we hear its masks topic."""
        assert wait_for(lambda: self.image_pub.get_subscription_count() > 0 and
                        self.node.count_publishers(f"/{self.name}/masks") > 0, timeout), "node not discovered"

    def publish_image(self, rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera_optical") -> Any:
        """Publish one frame with this stamp; returns the message."""
        msg = image_msg(rgb, stamp_ns, frame_id)
        self.image_pub.publish(msg)
        return msg

    def publish_until_output(self, rgb: np.ndarray, stamp_ns: int, topic: str = "masks",
                             timeout: float = 60.0) -> Any:
        """Publish one frame (again every 0.5 s, best effort) until an output with its stamp arrives."""
        msg = image_msg(rgb, stamp_ns)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.image_pub.publish(msg)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                for out in self.msgs(topic):
                    if stamps.to_ns(out.header.stamp) == stamp_ns:
                        return out
                time.sleep(0.02)
        raise AssertionError(f"no {topic} output for stamp {stamp_ns}")

    def call(self, srv_type: Any, service: str, request: Any, timeout: float = 60.0) -> Any:
        """Blocking service call. Clients are kept: a just-created client can lose its first response over DDS."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(srv_type, f"/{self.name}/{service}")
            assert client.wait_for_service(timeout_sec=30), f"service {service} not found"
        future = client.call_async(request)
        assert wait_for(future.done, timeout), f"service {service} did not answer in {timeout} s"
        return future.result()

    def diagnostics(self) -> list[dict[str, str]]:
        """Key/values of every received status of our node (plus `_level` and `_message`)."""
        out = []
        for msg in self.msgs("diagnostics"):
            for status in msg.status:
                if status.name.startswith(f"{self.name}:"):
                    d = {kv.key: kv.value for kv in status.values}
                    d["_level"], d["_message"] = int.from_bytes(status.level, "little") \
                        if isinstance(status.level, bytes) else int(status.level), status.message
                    out.append(d)
        return out
