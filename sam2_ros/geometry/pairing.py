"""Pairs a colour frame with its depth image by header stamp: a small bounded buffer, no message_filters, ROS-free.

Rules (stamps are integer nanoseconds, as `sam2_ros.ros.stamps.to_ns(header.stamp)`):
- `add(stamp, depth)` keeps the `capacity` most recently *arrived* depth images (arrival order, not stamp order, so a
  stamp jumping back, e.g. a looping bag, cannot pin stale entries); a stamp already held is replaced.
- `match(stamp)` returns the held depth with the smallest |depth stamp - stamp|, only if that is <= max_dt (the same
  stamp wins; a tie goes to the older depth), else None: depth is never paired across more than max_dt.
  It also forgets depth older than stamp - max_dt: the node processes colour frames in stamp order, so those can
  never pair again. The partner itself stays (two colour frames may share one depth image).
- No waiting: `match` answers from what has arrived. The node takes the newest colour frame when its inference thread
  is free; depth from the same camera normally arrived before or within a few ms of it, so pairing at that moment
  (and, if it found nothing, once more after inference, when later depth has had time to arrive) loses little.
  Holding colour frames back for late depth would mean a queue of stale frames and extra latency on every output;
  a frame without depth still gets its 2-D outputs, and the paired rate goes to diagnostics.
"""
from __future__ import annotations

import collections
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class DepthPairingBuffer(Generic[T]):
    """Depth images (any payload: a message, an array) by stamp; thread-safe (callback thread adds, worker matches)."""

    def __init__(self, max_dt: float, capacity: int = 8) -> None:
        if not max_dt >= 0.0:
            raise ValueError(f"max_dt must be >= 0 s, got {max_dt}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.max_dt_ns = int(round(max_dt * 1e9))
        self.capacity = int(capacity)
        self._items: collections.deque[tuple[int, T]] = collections.deque()  # (stamp ns, depth), arrival order
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def add(self, stamp: int, depth: T) -> None:
        """Hold `depth` stamped `stamp` (ns); the oldest arrival goes when more than `capacity` are held."""
        with self._lock:
            for i, (held, _) in enumerate(self._items):
                if held == stamp:
                    del self._items[i]
                    break
            self._items.append((int(stamp), depth))
            while len(self._items) > self.capacity:
                self._items.popleft()

    def match(self, stamp: int) -> T | None:
        """The depth paired with a colour frame stamped `stamp` (ns), or None (see the module rules)."""
        stamp = int(stamp)
        with self._lock:
            best, best_key = None, None
            for held, depth in self._items:
                dt = abs(held - stamp)
                if dt <= self.max_dt_ns and (best_key is None or (dt, held) < best_key):
                    best, best_key = depth, (dt, held)
            floor = stamp - self.max_dt_ns
            if any(held < floor for held, _ in self._items):
                self._items = collections.deque(item for item in self._items if item[0] >= floor)
            return best

    def clear(self) -> None:
        """Forget everything (the node's time-jump reset, deactivation)."""
        with self._lock:
            self._items.clear()
