"""Every sam2_ros message and service crosses a real process boundary over Fast DDS with all fields equal."""
from __future__ import annotations

import base64
import sys
import threading

import numpy as np
import pytest

from ros_util import Proc, wait_for
from sam2_ros.ros.client import spinning_node

pytestmark = pytest.mark.ros


def _image(height: int, width: int, encoding: str, seed: int):
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(seed)
    channels = {"mono8": 1, "rgb8": 3}[encoding]
    img = Image(height=height, width=width, encoding=encoding, step=width * channels)
    img.header.frame_id = f"camera_{seed}"
    img.header.stamp.sec, img.header.stamp.nanosec = 1_700_000_000 + seed, 123_456_789
    img.data = rng.integers(0, 256, height * width * channels, dtype=np.uint8).tobytes()
    return img


def _roi(seed: int):
    from sensor_msgs.msg import RegionOfInterest

    return RegionOfInterest(x_offset=seed, y_offset=seed + 1, width=seed + 10, height=seed + 20, do_rectify=bool(seed % 2))


def make_messages():
    """One fully populated instance of each message type (every field non-default, floats exact in float32)."""
    from geometry_msgs.msg import Point
    from sam2_ros.msg import ObjectConfidenceArray, ObjectEvent, ObjectMask, ObjectMaskArray, Prompt

    prompt = Prompt(object_id=3, has_box=True, replace=True, label="cup", multimask=True)
    prompt.header = _image(1, 1, "mono8", 1).header
    prompt.points = [Point(x=10.5, y=20.25, z=0.0), Point(x=100.0, y=5.0, z=1.0)]
    prompt.labels = [1, 0]
    prompt.box = [1.5, 2.5, 300.0, 200.0]
    prompt.mask = _image(12, 16, "mono8", 2)

    obj = ObjectMask(object_id=7, iou=0.875, presence=0.5, bbox=_roi(3), area=42, label="mug", label_score=0.75,
                     status=ObjectMask.STATUS_LOST, mask_scale=0.25)
    obj.mask = _image(24, 32, "mono8", 4)
    arr = ObjectMaskArray(objects=[obj, ObjectMask(object_id=8, iou=0.125, presence=0.75, bbox=_roi(5), area=1,
                                                   mask=_image(2, 3, "mono8", 6), label="bottle",
                                                   status=ObjectMask.STATUS_OCCLUDED, mask_scale=1.0)])
    arr.header = _image(1, 1, "mono8", 7).header
    conf = ObjectConfidenceArray(object_ids=[1, 5, 9], iou=[0.125, 0.25, 0.375], presence=[0.75, 0.5, 0.625],
                                 boxes=[_roi(1), _roi(2), _roi(3)], labels=["a", "", "c"], status=[0, 1, 2])
    conf.header = _image(1, 1, "mono8", 8).header
    event = ObjectEvent(object_id=4, label="cup", event=ObjectEvent.REACQUIRED, reason="detection cup 0.91")
    event.header = _image(1, 1, "mono8", 9).header
    return [prompt, obj, arr, conf, event]


NAMES = ["Prompt", "ObjectMask", "ObjectMaskArray", "ObjectConfidenceArray", "ObjectEvent"]


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    proc = Proc([sys.executable, "test/fixtures/echo_node.py"], tmp_path_factory.mktemp("echo") / "echo.log")
    assert wait_for(lambda: "echo ready" in proc.output(), 30), proc.output()
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_message_round_trip(echo, index):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    sent = make_messages()[index]
    msg_type = type(sent)
    received = []
    got = threading.Event()
    with spinning_node(f"client_{index}") as node:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(msg_type, f"out/{msg_type.__name__}", lambda m: (received.append(m), got.set()), qos)
        pub = node.create_publisher(msg_type, f"in/{msg_type.__name__}", qos)
        # Publish until the echo answers (discovery takes a moment); the first echoed copy is compared.
        for _ in range(100):
            pub.publish(sent)
            if got.wait(0.2):
                break
    assert received, f"no {msg_type.__name__} came back; echo log:\n{echo.output()}"
    assert received[0] == sent, f"{msg_type.__name__} changed in transit"


def _call(node, srv_type, name, request):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20), f"service {name} not found"
    future = client.call_async(request)
    assert wait_for(future.done, 20), f"service {name} did not answer"
    return future.result()


def test_add_prompt_service_round_trip(echo):
    from rclpy.serialization import deserialize_message
    from sam2_ros.srv import AddPrompt

    prompt = make_messages()[0]
    with spinning_node("client_add") as node:
        response = _call(node, AddPrompt, "add_prompt", AddPrompt.Request(prompt=prompt))
    assert response.success is True
    assert deserialize_message(base64.b64decode(response.message), AddPrompt.Request).prompt == prompt
    assert response.masks.header == prompt.header
    assert [o.object_id for o in response.masks.objects] == [prompt.object_id]
    assert response.masks.objects[0].mask == prompt.mask
    assert (response.masks.objects[0].iou, response.masks.objects[0].presence) == (0.5, 0.25)
    assert [o.object_id for o in response.candidates.objects] == [prompt.object_id] * 3, "candidates cross too"
    assert list(response.candidate_stability) == [0.0, 0.125, 0.25]


@pytest.mark.parametrize("object_id", [4, 5])
def test_remove_object_service_round_trip(echo, object_id):
    from rclpy.serialization import deserialize_message
    from sam2_ros.srv import RemoveObject

    with spinning_node(f"client_remove_{object_id}") as node:
        response = _call(node, RemoveObject, "remove_object", RemoveObject.Request(object_id=object_id))
    assert response.success is (object_id % 2 == 0)
    assert deserialize_message(base64.b64decode(response.message), RemoveObject.Request).object_id == object_id


def test_select_candidate_service_round_trip(echo):
    from rclpy.serialization import deserialize_message
    from sam2_ros.srv import SelectCandidate

    with spinning_node("client_select") as node:
        response = _call(node, SelectCandidate, "select_candidate", SelectCandidate.Request(object_id=6, index=2))
    request = deserialize_message(base64.b64decode(response.message), SelectCandidate.Request)
    assert (request.object_id, request.index) == (6, 2) and response.success is True
    assert [o.object_id for o in response.masks.objects] == [6]


def test_segment_everything_service_round_trip(echo):
    from rclpy.serialization import deserialize_message
    from sam2_ros.srv import SegmentEverything

    sent = SegmentEverything.Request(points_per_side=16, min_iou=0.75, min_stability=0.875, min_area=25,
                                     max_objects=9, track=True)
    with spinning_node("client_everything") as node:
        response = _call(node, SegmentEverything, "segment_everything", sent)
    assert deserialize_message(base64.b64decode(response.message), SegmentEverything.Request) == sent
    assert [o.object_id for o in response.masks.objects] == list(range(1, 10))


# Type hashes of the real vision_msgs 4.1.1 built against the Kilted wheels (ROS 2 matches topics by these).
VISION_HASHES = {
    "Detection2DArray": "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968",
    "Detection2D": "RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea",
    "BoundingBox2D": "RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f",
    "ObjectHypothesisWithPose": "RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc",
    "Detection3DArray": "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018",
}


@pytest.mark.parametrize("name", sorted(VISION_HASHES))
def test_vision_msgs_type_hashes_match_the_real_package(name):
    """The compat build (or a real vision_msgs) generates exactly the real package's type hashes."""
    import json
    from pathlib import Path

    import vision_msgs

    share = next(p for p in (Path(vision_msgs.__file__).resolve().parents[k] / "share" / "vision_msgs" / "msg"
                             for k in range(2, 7)) if p.is_dir())
    doc = json.loads((share / f"{name}.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in doc["type_hashes"]}
    assert hashes[f"vision_msgs/msg/{name}"] == VISION_HASHES[name]
