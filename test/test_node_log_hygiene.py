"""Log hygiene (issue 19, defect 5): warnings are throttled per kind of problem (with a count of what was held back),
and text that comes from outside is clipped in log lines and service answers.

One node process for the module (tiny model, 128 px, reliable images with a deep queue so that every bad frame
reaches the node and the counts are exact). The node's log is its process output, kept by the harness.
"""
from __future__ import annotations

import re
import time

import pytest

from fixtures.node_harness import image_msg, prompt_msg
from ros_util import wait_for
from sam2_ros.sim import SyntheticScene

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCENE = SyntheticScene(96, 128, num_objects=2, seed=6)
BASE = 1_970_000_000 * 1_000_000_000
LONGEST_LINE = 600  # a log line: its prefix, a clipped text (~300 chars) and the clip's note
SUPPRESSED = re.compile(r"\((\d+) more of this kind suppressed\)")


@pytest.fixture(scope="module")
def node_params() -> dict:
    return {"name": "sam2_logs", "image_reliability": "reliable", "image_qos_depth": 100}


def _lines(node_proc, after: int, text: str) -> list[str]:
    return [ln for ln in node_proc.output()[after:].splitlines() if text in ln]


def _throttle_window() -> None:
    """Let the throttle of the previous test's kind of problem expire."""
    from sam2_ros.ros.logtext import THROTTLE_S

    time.sleep(THROTTLE_S + 0.2)


def test_bad_frames_with_different_frame_ids_are_throttled_per_kind(client, node_proc):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    camera = client.node.create_publisher(Image, "/camera/image", QoSProfile(
        depth=200, reliability=ReliabilityPolicy.RELIABLE))  # keeps all 100 until the node has them
    assert wait_for(lambda: camera.get_subscription_count() > 0, 20)
    _throttle_window()
    start = len(node_proc.output())
    bad = image_msg(SCENE.frame(0).rgb, BASE)
    bad.encoding = "yuv422"
    for k in range(100):
        bad.header.frame_id = f"camera_{k}"
        camera.publish(bad)
    time.sleep(1.0)
    first = _lines(node_proc, start, "dropping image")
    print(f"100 bad frames: {len(first)} WARN line(s)")
    assert 1 <= len(first) <= 3, "\n".join(first[:10])
    _throttle_window()
    bad.header.frame_id = "camera_last"
    camera.publish(bad)
    assert wait_for(lambda: _lines(node_proc, start, "camera_last"), 10), node_proc.output()[-2000:]
    lines = _lines(node_proc, start, "dropping image")
    held = sum(int(m.group(1)) for ln in lines for m in SUPPRESSED.finditer(ln))
    print(f"then one more: {len(lines)} line(s), {held} suppressed: {lines[-1][-120:]}")
    assert len(lines) + held == 101, "every bad frame is either logged or counted as suppressed"
    assert SUPPRESSED.search(lines[-1]), lines[-1]


def test_a_1000_point_prompt_gives_a_clipped_answer_and_log_line(client, node_proc):
    from sam2_ros.srv import AddPrompt

    client.publish_until_output(SCENE.frame(1).rgb, BASE + 1_000_000_000)
    start = len(node_proc.output())
    points = [(1 + (k % 120), 1 + (k // 120) * 9) for k in range(1000)]
    prompt = prompt_msg(1, points=points, labels=[1] * 1000)
    r = client.call(AddPrompt, "add_prompt", AddPrompt.Request(prompt=prompt))
    print(f"answer ({len(r.message)} chars): ...{r.message[-60:]}")
    assert r.success, r.message
    # short either way: the prompt's description names a few points and the count, and any text is clipped
    assert len(r.message) <= 400 and re.search(r"(… \(\d+ chars\)|\(1000 points\))$", r.message), r.message[-200:]
    assert wait_for(lambda: _lines(node_proc, start, "~/add_prompt: object 1"), 10)
    longest = max(len(ln) for ln in node_proc.output()[start:].splitlines())
    assert longest <= LONGEST_LINE, f"a log line of {longest} chars"


def test_a_5000_char_encoding_and_frame_id_are_clipped_in_the_log(client, node_proc):
    _throttle_window()
    start = len(node_proc.output())
    bad = image_msg(SCENE.frame(2).rgb, BASE + 2_000_000_000, frame_id="f" * 5000)
    bad.encoding = "e" * 5000
    client.image_pub.publish(bad)
    assert wait_for(lambda: _lines(node_proc, start, "dropping image"), 10), node_proc.output()[-2000:]
    (line,) = _lines(node_proc, start, "dropping image")
    print(f"line of {len(line)} chars: {line[:100]}...{line[-80:]}")
    assert len(line) <= LONGEST_LINE and re.search(r"… \(\d+ chars\)", line), line[:1000]
