"""The services' gate (issue 19): refuses while closed, counts every call until its answer is sent, drains."""
from __future__ import annotations

import threading

from sam2_ros.ros.services import ServiceGate


def test_gate_refuses_until_opened_and_counts_refused_calls_too():
    gate = ServiceGate()
    assert gate.enter() == "the node is inactive (state: inactive)"  # closed at first: answered at once
    assert not gate.drain(0.05, 0.05), "the refused call is in flight until its answer is sent"
    gate.leave()
    assert gate.drain(0.05)
    gate.open()
    assert gate.enter() is None
    gate.close("the node is inactive (state: cleaning up)")
    assert gate.enter() == "the node is inactive (state: cleaning up)"
    gate.leave()
    gate.leave()
    assert gate.drain(0.05)


def test_drain_waits_for_the_calls_in_flight():
    gate = ServiceGate()
    gate.open()
    assert gate.enter() is None
    gate.close("the node is inactive (state: inactive)")
    threading.Timer(0.2, gate.leave).start()   # the answer is sent a little later
    assert gate.drain(5.0)


def test_drain_does_not_wait_for_callers_that_keep_being_refused():
    """Refusals are answered at once: callers that keep calling a closed gate hold up a drain by at most
    `refused_timeout`, while an admitted call is waited for."""
    gate = ServiceGate()
    gate.open()
    assert gate.enter(1) is None                     # admitted, its work runs
    gate.close("the node is inactive (state: inactive)")
    assert gate.enter(2) is not None                 # refused, its answer not yet sent
    assert not gate.drain(0.05, 0.05), "the admitted call is still in flight"
    gate.leave(1)
    assert not gate.drain(5.0, 0.05), "only the refused one is left: waited 0.05 s, not 5 s"
    gate.leave(2)
    assert gate.drain(0.05, 0.05)
