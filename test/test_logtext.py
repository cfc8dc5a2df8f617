"""Log hygiene helpers (issue 19): clipping outside text, the kind of a problem, the per-kind throttle."""
from __future__ import annotations

import time

from sam2_ros.ros.logtext import CLIP_CHARS, Throttle, clip, held_note, kind_of


def test_clip_keeps_short_text_and_cuts_long_text_with_its_length():
    assert clip("a short reason") == "a short reason"
    long = "x" * 5000
    out = clip(long)
    assert out == "x" * CLIP_CHARS + "… (5000 chars)"
    assert clip("y" * (CLIP_CHARS + 1)).endswith(f"… ({CLIP_CHARS + 1} chars)")


def test_kind_of_names_the_problem_not_its_values():
    a = kind_of("unsupported encoding 'yuv422' (supported: rgb8)")
    assert a == kind_of("unsupported encoding 'e" + "e" * 5000 + "'") == "unsupported encoding"
    assert kind_of("empty image (0x0)") == "empty image"
    assert kind_of("data has 5 bytes, expected height*step = 2*6 = 12") == "data has"
    assert len(kind_of("a" * 500)) == 60 and kind_of("'quoted first'") == ""


def test_throttle_one_line_per_kind_per_period_and_counts_the_rest():
    throttle = Throttle(period=0.2)
    assert throttle.admit("dropping image") == (True, 0)
    assert [throttle.admit("dropping image") for _ in range(5)] == [(False, 0)] * 5
    assert throttle.admit("time jump") == (True, 0)      # another kind is not held back
    time.sleep(0.25)
    assert throttle.admit("dropping image") == (True, 5)  # the next line says how many were held back
    assert held_note(5) == " (5 more of this kind suppressed)" and held_note(0) == ""


def test_throttle_state_is_bounded():
    throttle = Throttle(period=10.0, max_kinds=4)
    for k in range(100):
        throttle.admit(f"kind {k}")
    assert len(throttle._kinds) == 4
    assert throttle.admit("kind 99") == (False, 0) and throttle.admit("kind 0") == (True, 0)
