"""Colour/depth pairing by stamp: same stamp first, else the nearest within max_dt, never beyond; bounded by
arrival; old depth forgotten once no colour frame can want it; late depth still found on a second look."""
from __future__ import annotations

import threading

import pytest

from sam2_ros.geometry import DepthPairingBuffer

MS = 1_000_000  # ns


def test_same_stamp_wins_then_nearest_within_max_dt():
    buf = DepthPairingBuffer(max_dt=0.02)
    buf.add(100 * MS, "d100")
    buf.add(110 * MS, "d110")
    buf.add(125 * MS, "d125")
    assert buf.match(110 * MS) == "d110"            # exact
    assert buf.match(121 * MS) == "d125"            # nearest: 4 ms vs 11 ms
    assert buf.match(145 * MS) == "d125"            # exactly max_dt: still paired
    assert buf.match(146 * MS) is None              # 21 ms: never paired, however lonely the frame


def test_tie_goes_to_the_older_depth_and_max_dt_zero_is_exact_only():
    buf = DepthPairingBuffer(max_dt=0.01)
    buf.add(110 * MS, "late")
    buf.add(100 * MS, "early")
    assert buf.match(105 * MS) == "early"
    exact = DepthPairingBuffer(max_dt=0.0)
    exact.add(100 * MS, "d")
    assert exact.match(100 * MS) == "d"
    assert exact.match(100 * MS + 1) is None        # 1 ns off (and, colour having moved on, "d" is forgotten)
    assert len(exact) == 0


def test_no_stale_depth_after_matching():
    buf = DepthPairingBuffer(max_dt=0.02, capacity=16)
    for t in range(0, 200, 33):
        buf.add(t * MS, t)
    assert buf.match(165 * MS) == 165
    # everything older than 165 - 20 ms is gone for good; the partner stays (another colour frame may share it)
    assert len(buf) == 2 and buf.match(165 * MS) == 165
    assert buf.match(140 * MS) is None              # 132 was dropped even though it would be within 20 ms of 140


def test_bounded_by_arrival_and_time_jumps_cannot_pin_entries():
    buf = DepthPairingBuffer(max_dt=0.02, capacity=4)
    for t in range(1000):
        buf.add((10_000 + t * 33) * MS, t)
        assert len(buf) <= 4
    # a bag loops: stamps jump back; the new ones push the old ones out by arrival, not by stamp
    for t in range(4):
        buf.add(t * 33 * MS, f"loop{t}")
    assert len(buf) == 4
    assert buf.match(66 * MS) == "loop2"
    assert buf.match((10_000 + 999 * 33) * MS) is None   # the old timeline is gone
    buf.clear()
    assert len(buf) == 0 and buf.match(66 * MS) is None


def test_same_stamp_replaces_and_late_depth_is_found_on_second_look():
    buf = DepthPairingBuffer(max_dt=0.02)
    buf.add(100 * MS, "first")
    buf.add(100 * MS, "second")
    assert len(buf) == 1 and buf.match(100 * MS) == "second"
    # the node looks when it takes the colour frame (nothing yet), depth arrives during inference, second look finds it
    assert buf.match(200 * MS) is None
    buf.add(200 * MS, "late")
    assert buf.match(200 * MS) == "late"
    # depth that arrives long after its colour frame is held, but only a colour frame within max_dt can take it
    buf.add(150 * MS, "too late")
    assert buf.match(200 * MS) == "late"
    assert buf.match(165 * MS) is None              # 15 ms from "too late", but older than 200 - 20 ms: pruned
    assert buf.match(233 * MS) is None and len(buf) == 0


def test_invalid_arguments():
    with pytest.raises(ValueError):
        DepthPairingBuffer(max_dt=-0.01)
    with pytest.raises(ValueError):
        DepthPairingBuffer(max_dt=float("nan"))
    with pytest.raises(ValueError):
        DepthPairingBuffer(max_dt=0.02, capacity=0)


def test_concurrent_add_and_match_stay_bounded_and_exact():
    """The depth callback adds while the inference thread matches: never a wrong pairing, never more than capacity."""
    buf = DepthPairingBuffer(max_dt=0.0, capacity=8)
    errors = []

    def producer():
        for t in range(20000):
            buf.add(t, t)

    def consumer():
        for t in range(20000):
            got = buf.match(t)
            if got is not None and got != t:
                errors.append((t, got))
            if len(buf) > 8:
                errors.append(("size", len(buf)))

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
