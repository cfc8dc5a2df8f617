"""Bad input, one test each: a log line or a service message, nothing changes, and the node still answers.

One node process for the module (real tracker, tiny model, 128 px). The first test runs before any image is sent.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fixtures.node_harness import image_msg, prompt_msg
from ros_util import wait_for
from sam2_ros.sim import SyntheticScene
from sam2_ros.ros import stamps

pytestmark = [pytest.mark.ros, pytest.mark.slow]

H, W = 96, 128
SCENE = SyntheticScene(H, W, num_objects=2, seed=7)
BASE = 1_800_000_000 * 1_000_000_000
_SECONDS = itertools.count(1)  # good frames get increasing stamps, as from a camera (stamps going back > 1 s would be a
                               # time jump: the node resets, see time_jump_reset)


@pytest.fixture(scope="module")
def node_params() -> dict:
    return {"name": "sam2_bad"}


def _validator_says(prompt, tracked: list[int]) -> str:
    """The refusal of this prompt on an H x W frame by the node's own checks and the tracker's prompt validator,
    run here in-process: the node must answer with exactly these words."""
    from sam2_ros.ros.params import Settings
    from sam2_ros.ros.prompt_msgs import from_prompt_msg
    from sam2_ros.session.requests import prompt_args
    from sam2_ros.tracking.prompts import check_prompt

    with pytest.raises(ValueError) as err:
        args = prompt_args(from_prompt_msg(prompt), set(tracked), Settings().max_objects)
        check_prompt(args.points, args.labels, args.box, args.mask, (H, W))
    return str(err.value)


def _add(client, prompt):
    from sam2_ros.srv import AddPrompt

    return client.call(AddPrompt, "add_prompt", AddPrompt.Request(prompt=prompt))


def _still_answers(client, node_proc, index: int):
    """A good frame still comes out, with the objects it had before (state unchanged), and the process lives."""
    assert node_proc.popen.poll() is None, node_proc.output()
    out = client.publish_until_output(SCENE.frame(index).rgb, BASE + next(_SECONDS) * 1_000_000_000)
    return [o.object_id for o in out.objects]


def _logged(node_proc, text: str, timeout: float = 20.0) -> None:
    assert wait_for(lambda: text in node_proc.output(), timeout), f"no log line with {text!r}:\n" + \
        node_proc.output()[-3000:]


def test_prompt_before_any_image(client, node_proc):
    r = _add(client, prompt_msg(points=[(10, 10)], labels=[1]))
    print("add_prompt:", r.message)
    assert not r.success and "no image received yet" in r.message
    client.prompt_pub.publish(prompt_msg(points=[(10, 10)], labels=[1]))
    _logged(node_proc, "~/prompt refused: no image received yet")
    assert _still_answers(client, node_proc, 1) == []


def _publish_bad(client, **fields):
    from sensor_msgs.msg import Image

    msg = image_msg(SCENE.frame(0).rgb, BASE)
    for key, value in fields.items():
        setattr(msg, key, value)
    for _ in range(3):  # best effort: send a few
        client.image_pub.publish(msg)
    return msg if isinstance(msg, Image) else None


@pytest.mark.parametrize("fields, text, index", [
    (dict(encoding="yuv422"), "unsupported encoding 'yuv422'", 2),
    (dict(height=0, width=0, step=0, data=b""), "empty image (0x0)", 3),
    (dict(data=bytes(H * W * 3 - 7)), f"expected height*step = {H}*{W * 3}", 4),
], ids=["unknown_encoding", "zero_size", "short_data"])
def test_bad_images(client, node_proc, fields, text, index):
    before = len([m for m in client.msgs("masks") if stamps.to_ns(m.header.stamp) == BASE])
    _publish_bad(client, **fields)
    _logged(node_proc, text)
    assert _still_answers(client, node_proc, index) == []
    assert len([m for m in client.msgs("masks") if stamps.to_ns(m.header.stamp) == BASE]) == before, "bad frame not tracked"


@pytest.fixture(scope="module")
def one_object(client, node_proc):
    """Object 1 tracked (added once for the prompt tests below)."""
    _still_answers(client, node_proc, 10)
    r = _add(client, prompt_msg(box=(10, 10, 60, 50)))
    assert r.success, r.message
    return [1]


@pytest.mark.parametrize("prompt_kwargs, text", [
    (dict(points=[(math.nan, 5.0)], labels=[1]), "NaN or infinity in points"),
    (dict(points=[(5.0, math.inf)], labels=[1]), "NaN or infinity in points"),
    (dict(points=[(W + 5.0, 5.0)], labels=[1]), f"point ({W + 5:g}, 5) is outside the {W}x{H} image"),
    (dict(points=[(5.0, -1.0)], labels=[1]), f"is outside the {W}x{H} image"),
    (dict(points=[(5.0, 5.0), (6.0, 6.0)], labels=[1]), "2 point(s) but 1 label(s)"),
    (dict(points=[(5.0, 5.0)], labels=[2]), "labels must be 1 (foreground) or 0 (background)"),
    (dict(box=(50, 10, 20, 40)), "box (50, 10, 20, 40) needs x_min < x_max"),
    (dict(box=(0, 0, W + 10, 40)), f"box corner ({W + 10}, 40) is outside the {W}x{H} image"),
    (dict(box=(0, 0, math.nan, 40)), "NaN or infinity in box"),
    (dict(object_id=0, points=[(5.0, 5.0)], labels=[1]), "object_id must be in 1..65535"),
    (dict(object_id=2), "empty prompt"),
    (dict(object_id=3, points=[(5.0, 5.0)], labels=[1], mask=np.ones((H, W + 1), np.uint8)),
     "a mask prompt cannot be combined with points or a box"),
], ids=["nan", "inf", "outside_x", "outside_y", "labels_mismatch", "bad_label", "inverted_box", "box_outside",
        "nan_box", "object_zero", "empty", "mask_and_points"])
def test_bad_prompts(client, node_proc, one_object, prompt_kwargs, text):
    """Refused with the validator's words (service message and log line), no masks, tracking unchanged."""
    prompt = prompt_msg(**prompt_kwargs)
    r = _add(client, prompt)
    print("add_prompt:", r.message)
    assert not r.success and list(r.masks.objects) == []
    assert r.message == _validator_says(prompt, one_object) and text in r.message
    client.prompt_pub.publish(prompt)
    _logged(node_proc, f"~/prompt refused: {r.message}")  # the topic gets the same words as the service
    assert _still_answers(client, node_proc, 11 + len(node_proc.output()) % 50) == one_object


def test_unknown_object_on_remove(client, node_proc, one_object):
    from sam2_ros.srv import RemoveObject

    r = client.call(RemoveObject, "remove_object", RemoveObject.Request(object_id=42))
    print("remove_object:", r.message)
    assert not r.success and r.message == "unknown object id 42 (tracked: 1)"
    _logged(node_proc, "~/remove_object refused: unknown object id 42")
    assert _still_answers(client, node_proc, 70) == one_object


def test_prompt_mask_of_wrong_size(client, node_proc, one_object):
    prompt = prompt_msg(object_id=3, mask=np.ones((H, W + 1), np.uint8))
    r = _add(client, prompt)
    assert not r.success and r.message == _validator_says(prompt, one_object), r.message
    assert f"mask is {W + 1}x{H}, the image is {W}x{H}" in r.message
    assert _still_answers(client, node_proc, 71) == one_object


def test_bad_input_was_logged_not_crashed(node_proc):
    log = node_proc.output()
    assert "Traceback" not in log and "failed:" not in log, log[-3000:]
