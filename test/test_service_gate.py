"""The services' gate (issue 19): refuses while closed, counts every call until its answer is sent, drains."""
from __future__ import annotations

import threading

from sam2_ros.ros.services import ServiceGate


def test_gate_refuses_until_opened_and_counts_refused_calls_too():
    gate = ServiceGate()
    assert gate.enter() == "the node is inactive (state: inactive)"  # closed at first: answered at once
    assert not gate.drain(0.05), "the refused call is in flight until its answer is sent"
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
