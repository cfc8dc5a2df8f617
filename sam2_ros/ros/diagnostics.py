"""Counters the node reports on /diagnostics: input/output rates, latency, dropped frames, stage timings."""
from __future__ import annotations

import threading
import time


class Meter:
    """Events and durations counted between two reports (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._sum = 0.0
        self._max = 0.0
        self._since = time.monotonic()

    def add(self, value: float = 0.0) -> None:
        """Record one event with an optional duration/value."""
        with self._lock:
            self._count += 1
            self._sum += value
            self._max = max(self._max, value)

    def take(self) -> tuple[float, float, float]:
        """(events per second, mean value, max value) since the last take; resets the window."""
        with self._lock:
            now = time.monotonic()
            span = max(now - self._since, 1e-9)
            out = (self._count / span, self._sum / self._count if self._count else 0.0, self._max)
            self._count, self._sum, self._max, self._since = 0, 0.0, 0.0, now
            return out


class NodeStats:
    """All meters of one node: input frames, output frames (with latency), and per-stage milliseconds."""

    def __init__(self) -> None:
        self.inputs = Meter()
        self.outputs = Meter()      # value = latency, receive -> published (ms)
        self.convert = Meter()      # image message -> numpy (ms)
        self.inference = Meter()    # tracker.track (ms)
        self.publish = Meter()      # result -> messages -> published (ms)
        self.convert_cpu = Meter()  # the same two stages in CPU time of the thread (robust to a busy machine)
        self.publish_cpu = Meter()
        self.prompts = Meter()      # prompt handling incl. decoder (ms)
        self.depth_paired = Meter()  # use_depth: one event per tracked frame, value 1 = it had a depth partner
        self.geometry = Meter()     # use_depth: depth decode + 3-D extraction + the 3-D messages published (ms)
        self.geometry_cpu = Meter()


def build_status(name: str, hardware_id: str, stats: NodeStats, worker, info: dict[str, str], active: bool):
    """DiagnosticStatus with the rates and latencies of the last window plus totals and the model description."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    in_rate, _, _ = stats.inputs.take()
    out_rate, latency, latency_max = stats.outputs.take()
    _, convert, _ = stats.convert.take()
    _, inference, _ = stats.inference.take()
    _, publish, _ = stats.publish.take()
    _, convert_cpu, _ = stats.convert_cpu.take()
    _, publish_cpu, _ = stats.publish_cpu.take()
    _, prompt_ms, _ = stats.prompts.take()
    depth_frames_hz, paired_rate, _ = stats.depth_paired.take()
    _, geometry_ms, _ = stats.geometry.take()
    _, geometry_cpu, _ = stats.geometry_cpu.take()
    values = {
        "input_rate_hz": f"{in_rate:.2f}",
        "output_rate_hz": f"{out_rate:.2f}",
        "latency_ms": f"{latency:.1f}",
        "latency_max_ms": f"{latency_max:.1f}",
        "dropped_frames": str(worker.dropped if worker else 0),
        "frames_in": str(worker.frames_in if worker else 0),
        "frames_out": str(worker.frames_done if worker else 0),
        "convert_ms": f"{convert:.2f}",
        "inference_ms": f"{inference:.1f}",
        "publish_ms": f"{publish:.2f}",
        "convert_cpu_ms": f"{convert_cpu:.2f}",
        "publish_cpu_ms": f"{publish_cpu:.2f}",
        "prompt_ms": f"{prompt_ms:.1f}",
        "depth_paired_rate": f"{paired_rate:.2f}" if depth_frames_hz > 0 else "n/a",  # n/a: no frame / use_depth off
        "geometry_ms": f"{geometry_ms:.2f}",
        "geometry_cpu_ms": f"{geometry_cpu:.2f}",
        **info,
    }
    if not active:
        level, message = DiagnosticStatus.WARN, "inactive"
    elif worker is None or worker.frames_in == 0:
        level, message = DiagnosticStatus.WARN, "no image received yet"
    elif in_rate == 0.0 and out_rate == 0.0:
        level, message = DiagnosticStatus.WARN, "no images in the last period"
    else:
        level, message = DiagnosticStatus.OK, f"tracking at {out_rate:.1f} Hz of {in_rate:.1f} Hz input"
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
