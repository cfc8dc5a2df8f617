"""Log and answer hygiene, ROS-free: text that comes from outside is clipped, and repeated warnings are throttled per
kind of problem with a count of what was held back.

    clip("x" * 5000)                 # 'xxx…x… (5000 chars)': at most CLIP_CHARS of it
    kind_of("unsupported encoding 'yuv422' (...)")   # 'unsupported encoding': the problem, not its values
    throttle = Throttle()
    ok, held = throttle.admit("dropping image: unsupported encoding")   # one line per THROTTLE_S per kind
    if ok: log(clip(text) + held_note(held))
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

CLIP_CHARS = 300   # a log line / service message keeps this much of an outside text
THROTTLE_S = 2.0   # one warning per kind of problem per this many seconds
MAX_KINDS = 256    # kinds remembered by a Throttle (call sites pass fixed kinds; this bounds the state anyway)


def clip(text: str, limit: int = CLIP_CHARS) -> str:
    """`text` cut to `limit` characters plus '… (N chars)' when longer: a 1000-point prompt or a 5000-character
    encoding string must not make a 17 k-character log line or service message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def kind_of(text: str) -> str:
    """The kind of problem an error message names: its leading words up to the first value in it (a number, a quoted
    name, a bracket), so the same problem with other values (frame_id, size, stamp) is one kind and another problem
    is another; at most 60 characters."""
    return re.match(r"[A-Za-z _-]*", text).group(0).strip()[:60]


def held_note(held: int) -> str:
    """The suffix that says how many lines of the same kind the throttle held back since the last one."""
    return f" ({held} more of this kind suppressed)" if held else ""


class Throttle:
    """At most one line per `period` seconds for each kind of problem (a bad stream repeats every frame, with a
    different frame_id or stamp each time: the kind, not the text, is the key); counts the lines it held back."""

    def __init__(self, period: float = THROTTLE_S, max_kinds: int = MAX_KINDS) -> None:
        self.period = period
        self._max_kinds = max_kinds
        self._lock = threading.Lock()
        self._kinds: OrderedDict[str, list] = OrderedDict()  # kind -> [last logged (monotonic), held back since]

    def admit(self, kind: str) -> tuple[bool, int]:
        """(log it now?, lines of this kind held back since the last logged one); callable from any thread."""
        now = time.monotonic()
        with self._lock:
            entry = self._kinds.get(kind)
            if entry is None:
                if len(self._kinds) >= self._max_kinds:
                    self._kinds.popitem(last=False)
                self._kinds[kind] = [now, 0]
                return True, 0
            if now - entry[0] >= self.period:
                held, entry[0], entry[1] = entry[1], now, 0
                return True, held
            entry[1] += 1
            return False, 0
