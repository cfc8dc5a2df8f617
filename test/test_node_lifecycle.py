"""Process life of the sam2 node: SIGINT / SIGTERM while tracking exit 0 with no abort; the managed lifecycle
(autostart false -> configure -> activate -> deactivate -> cleanup) over the standard lifecycle services."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from fixtures.node_harness import NodeClient, image_msg, start_node
from ros_util import wait_for
from sam2_ros.ros.client import spinning_node
from sam2_ros.sim import SyntheticScene
from sam2_ros.ros import stamps

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCENE = SyntheticScene(96, 128, num_objects=1, seed=2)
BASE = 2_000_000_000 * 1_000_000_000


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_tracking_exits_0(tmp_path, sig):
    name = f"sam2_sig{int(sig)}"
    proc = start_node(tmp_path, name=name)
    with spinning_node(f"signal_client_{int(sig)}") as node:
        client = NodeClient(node, name=name)
        client.wait_connected()
        client.publish_until_output(SCENE.frame(0).rgb, BASE)
        stop = threading.Event()

        def stream() -> None:  # keep the inference thread busy while the signal arrives
            k = 1
            while not stop.is_set():
                client.image_pub.publish(image_msg(SCENE.frame(k % 4).rgb, BASE + k * 33_000_000))
                k += 1
                time.sleep(0.03)

        thread = threading.Thread(target=stream)
        thread.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.popen.send_signal(sig)
        try:
            code = proc.popen.wait(30)
        finally:
            stop.set()
            thread.join()
    elapsed = time.monotonic() - t0
    log = proc.log_path.read_text()
    print(f"{sig.name}: exit code {code} after {elapsed:.2f} s")
    proc.stop()
    assert code == 0, log[-3000:]
    assert "terminate called" not in log and "Traceback" not in log and "Aborted" not in log, log[-3000:]


def _change_state(client, transition_id: int):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    return client.call(ChangeState, "change_state", ChangeState.Request(transition=Transition(id=transition_id)))


def _state(client) -> str:
    from lifecycle_msgs.srv import GetState

    return client.call(GetState, "get_state", GetState.Request()).current_state.label


def test_managed_lifecycle(tmp_path):
    from lifecycle_msgs.msg import Transition

    name = "sam2_managed"
    proc = start_node(tmp_path, name=name, ready="", autostart=False)
    try:
        with spinning_node("lifecycle_client") as node:
            client = NodeClient(node, name=name)
            assert _state(client) == "unconfigured"
            assert client.image_pub.get_subscription_count() == 0, "no subscription before activate"
            assert _change_state(client, Transition.TRANSITION_CONFIGURE).success
            assert _state(client) == "inactive"
            assert "model sam2.1_hiera_t@128 on cpu via torch" in proc.output()
            assert _change_state(client, Transition.TRANSITION_ACTIVATE).success
            assert _state(client) == "active"
            client.wait_connected()
            client.publish_until_output(SCENE.frame(0).rgb, BASE)

            assert _change_state(client, Transition.TRANSITION_DEACTIVATE).success
            assert _state(client) == "inactive"
            assert wait_for(lambda: client.image_pub.get_subscription_count() == 0, 10), "unsubscribed"
            client.image_pub.publish(image_msg(SCENE.frame(1).rgb, BASE + 1))
            time.sleep(1.0)
            assert not any(stamps.to_ns(m.header.stamp) == BASE + 1 for m in client.msgs("masks")), "inactive: no output"

            assert _change_state(client, Transition.TRANSITION_CLEANUP).success
            assert _state(client) == "unconfigured"
            # configure again (e.g. after changing parameters) and run
            assert _change_state(client, Transition.TRANSITION_CONFIGURE).success
            assert _change_state(client, Transition.TRANSITION_ACTIVATE).success
            client.publish_until_output(SCENE.frame(2).rgb, BASE + 2)
    finally:
        code = proc.stop(signal.SIGTERM)
    assert code == 0, proc.log_path.read_text()[-3000:]


def test_bad_checkpoint_leaves_node_unconfigured(tmp_path):
    """A missing checkpoint fails configure with a clear log line; the process stays up and exits 0 on SIGINT."""
    proc = start_node(tmp_path, name="sam2_nockpt", ready="configure failed", checkpoint="/nonexistent/model.pt")
    log = proc.output()
    assert "configure failed: ValueError: checkpoint '/nonexistent/model.pt' does not exist" in log, log
    assert proc.popen.poll() is None
    assert proc.stop() == 0
