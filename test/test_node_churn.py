"""Lifecycle churn while services are being called (issue 19, defect 1): the node process never dies and every call
is answered, with success or a reason that says what happened (never "RuntimeError: the node is shutting down").

One node process for the module (tiny model, 128 px, reliable images). Deactivate / activate go through the standard
lifecycle service `~/change_state`, as a lifecycle manager sends them.
"""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from fixtures.node_harness import image_msg, prompt_msg
from ros_util import wait_for
from sam2_ros.sim import SyntheticScene
from sam2_ros.ros import stamps

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCENE = SyntheticScene(96, 128, num_objects=2, seed=3)
BASE = 1_900_000_000 * 1_000_000_000
# What an unsuccessful answer may say during churn: the node's own refusals, each naming its cause.
REASONS = ("the node is inactive", "not handled: the node is deactivating", "unknown object id",
           "no image received yet", "no frame arrived since", "busy (")


@pytest.fixture(scope="module")
def node_params() -> dict:
    return {"name": "sam2_churn", "image_reliability": "reliable", "publish_overlay": False}


def _transition(client, transition_id: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    return client.call(ChangeState, "change_state", ChangeState.Request(transition=Transition(id=transition_id)),
                       timeout=60).success


def _reactivate(client) -> None:
    from lifecycle_msgs.msg import Transition

    assert _transition(client, Transition.TRANSITION_ACTIVATE)
    assert wait_for(lambda: client.image_pub.get_subscription_count() > 0, 20), "image subscription back"


def _big_frame() -> np.ndarray:
    """A 4000x3000 rgb8 frame (36 MB): its prompt answer and outputs take long enough to be caught mid-reply."""
    small = SyntheticScene(300, 400, num_objects=2, seed=5).frame(0).rgb
    return np.ascontiguousarray(np.repeat(np.repeat(small, 10, axis=0), 10, axis=1))


def _check_answers(answers: list, node_proc) -> None:
    assert node_proc.popen.poll() is None, "the node process died:\n" + node_proc.output()[-4000:]
    unanswered = [a for a in answers if a is None]
    assert not unanswered, f"{len(unanswered)} of {len(answers)} calls never answered"
    odd = [a.message for a in answers if not a.success and not any(r in a.message for r in REASONS)]
    assert not odd, f"answers without a known reason: {odd[:5]}"
    log = node_proc.output()
    assert "InvalidHandle" not in log and "shutting down" not in log, log[-4000:]


def test_deactivate_while_answering_a_big_prompt(client, node_proc):
    """A prompt on a 4000x3000 frame (plus two queued behind it), deactivated 0.05-0.15 s after the calls: three
    rounds (unfixed, the first already crashed the node); every call is answered and the process lives."""
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2_ros.srv import AddPrompt

    node = client.node
    big_pub = node.create_publisher(Image, "/camera/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    callers = [node.create_client(AddPrompt, "/sam2_churn/add_prompt") for _ in range(3)]
    assert all(c.wait_for_service(timeout_sec=30) for c in callers)
    rgb, rng = _big_frame(), random.Random(0)
    answers, said = [], []
    for k in range(3):
        stamp = BASE + k * 1_000_000_000
        client.clear()
        big_pub.publish(image_msg(rgb, stamp))
        assert wait_for(lambda: any(stamps.to_ns(m.header.stamp) == stamp for m in client.msgs("confidence")), 60), \
            f"round {k}: big frame not tracked"
        request = AddPrompt.Request(prompt=prompt_msg(1 + k % 2, points=[(2000, 1500)], labels=[1]))
        futures = [c.call_async(request) for c in callers]
        time.sleep(rng.uniform(0.05, 0.15))
        deactivated = _transition(client, Transition.TRANSITION_DEACTIVATE)
        for f in futures:
            wait_for(f.done, 30)
        answers += [f.result() if f.done() else None for f in futures]
        said += [f.result().message for f in futures if f.done()]
        assert node_proc.popen.poll() is None, f"round {k}: the node died:\n" + node_proc.output()[-4000:]
        assert deactivated, f"round {k}: deactivate failed"
        _reactivate(client)
    print("answers:", *sorted(set(s[:80] for s in said)), sep="\n  ")
    _check_answers(answers, node_proc)
    # the calls queued behind the first when the deactivate came were refused, honestly
    assert any("not handled: the node is deactivating" in s for s in said), said


def test_eight_callers_across_six_deactivate_activate_cycles(client, node_proc):
    """8 threads call ~/add_prompt / ~/remove_object while the node is deactivated and activated 6 times; a camera
    streams meanwhile. Every call is answered (success or a reason), the process lives and works afterwards."""
    from lifecycle_msgs.msg import Transition

    from sam2_ros.srv import AddPrompt, RemoveObject

    node = client.node
    stop = threading.Event()
    lock = threading.Lock()
    answers: list = []
    types = [AddPrompt if k % 2 == 0 else RemoveObject for k in range(8)]
    callers = [node.create_client(t, "/sam2_churn/" + ("add_prompt" if t is AddPrompt else "remove_object"))
               for t in types]
    assert all(c.wait_for_service(timeout_sec=30) for c in callers)

    def call_loop(k: int) -> None:
        rng = random.Random(k)
        while not stop.is_set():
            object_id = rng.randint(1, 4)
            if types[k] is AddPrompt:
                x, y = rng.uniform(10, 118), rng.uniform(10, 86)
                request = AddPrompt.Request(prompt=prompt_msg(object_id, points=[(x, y)], labels=[1]))
            else:
                request = RemoveObject.Request(object_id=object_id)
            future = callers[k].call_async(request)
            wait_for(future.done, 30)
            with lock:
                answers.append(future.result() if future.done() else None)
            time.sleep(rng.uniform(0.0, 0.05))

    def camera() -> None:
        k = 0
        while not stop.is_set():
            client.image_pub.publish(image_msg(SCENE.frame(k % 8).rgb, BASE + 100_000_000_000 + k * 50_000_000))
            k += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=call_loop, args=(k,)) for k in range(8)] + [threading.Thread(target=camera)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            time.sleep(0.3)
            assert _transition(client, Transition.TRANSITION_DEACTIVATE), "deactivate failed"
            time.sleep(0.3)
            _reactivate(client)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    messages = [a.message for a in answers if a is not None]
    print(f"{len(answers)} calls; answers:", *sorted(set(m[:60] for m in messages)), sep="\n  ")
    _check_answers(answers, node_proc)
    assert any("the node is inactive" in m or "deactivating" in m for m in messages), \
        "no call met an inactive node: the test did not exercise the cycles"
    # and it still works: a frame comes out, a prompt is applied
    client.publish_until_output(SCENE.frame(9).rgb, BASE + 200_000_000_000)
    r = client.call(AddPrompt, "add_prompt", AddPrompt.Request(prompt=prompt_msg(5, points=[(64, 48)], labels=[1])))
    assert r.success, r.message


def test_waiting_calls_hold_no_executor_thread(client, node_proc):
    """A long ~/segment_everything and 8 ~/add_prompt calls queued behind it on the inference thread: the lifecycle's
    ~/get_state is answered while every one of them still waits (unfixed, each waiting call held one of the
    executor's 4 threads, and a deactivate waited up to 17 s behind them)."""
    from lifecycle_msgs.srv import GetState

    from sam2_ros.srv import AddPrompt, SegmentEverything

    client.publish_until_output(SCENE.frame(3).rgb, BASE + 300_000_000_000)
    node = client.node
    everything = node.create_client(SegmentEverything, "/sam2_churn/segment_everything")
    prompts = [node.create_client(AddPrompt, "/sam2_churn/add_prompt") for _ in range(8)]
    state = node.create_client(GetState, "/sam2_churn/get_state")
    assert all(c.wait_for_service(timeout_sec=30) for c in [everything, state, *prompts])
    long_call = everything.call_async(SegmentEverything.Request(points_per_side=48, track=False))
    time.sleep(0.3)  # it has reached the inference thread
    waiting = [c.call_async(AddPrompt.Request(prompt=prompt_msg(6, points=[(64, 48)], labels=[1]))) for c in prompts]
    time.sleep(0.3)  # they are queued behind it
    got = state.call_async(GetState.Request())
    assert wait_for(got.done, 30), "get_state not answered"
    still_waiting = sum(not f.done() for f in [long_call, *waiting])
    print(f"get_state answered ({got.result().current_state.label}) with {still_waiting} of 9 calls still waiting")
    assert not long_call.done() and still_waiting == 9, "the test needs calls waiting (make the long call longer)"
    assert wait_for(lambda: all(f.done() for f in [long_call, *waiting]), 120), "every call is answered"
    assert all(f.result().success for f in waiting), [f.result().message for f in waiting]
