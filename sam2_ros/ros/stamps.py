"""Header stamps in one place: ROS `builtin_interfaces/Time` <-> integer nanoseconds <-> seconds.

Names say which one a value is: `stamp_ns` (int ns, what the node keys frames by), `time_s` (float seconds, what the
object rules use), `seq` (the node's own frame counter, the tracker's stamp; never a time).
"""
from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def set_ns(header: Any, stamp_ns: int) -> Any:
    """Write integer nanoseconds into `header.stamp` (a std_msgs/Header or anything with one); returns the header."""
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), NS_PER_S)
    return header


def ns_to_s(stamp_ns: int) -> float:
    """Integer nanoseconds -> float seconds."""
    return stamp_ns * 1e-9
