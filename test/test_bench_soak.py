"""bench/soak.py's pure parts (no node, no timing): reading RSS from /proc, the stamp of a serialized message, the
frame order, and the summary figures and report a soak run is recorded with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import soak  # `python -m pytest` from the checkout root, as the benches run (python -m bench.soak)


def test_rss_is_read_from_proc_status():
    text = "Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t  409600 kB\nRssAnon:\t 1 kB\n"
    assert soak.parse_rss_kb(text) == 409600
    assert soak.parse_rss_kb(Path("/proc/self/status").read_text()) > 0
    with pytest.raises(ValueError):
        soak.parse_rss_kb("Name:\tzombie\nState:\tZ\n")


def test_stamp_is_read_from_the_serialized_header():
    from rclpy.serialization import serialize_message

    from sam2_ros.msg import ObjectMaskArray

    msg = ObjectMaskArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 456_789
    msg.header.frame_id = "camera"
    assert soak.stamp_from_cdr(serialize_message(msg)) == 1_700_000_123 * 1_000_000_000 + 456_789
    with pytest.raises(ValueError):
        soak.stamp_from_cdr(b"\x00\x01\x00")


def test_frames_go_back_and_forth_without_jumps():
    order = [soak.ping_pong(4, k) for k in range(10)]
    assert order == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert all(abs(a - b) == 1 for a, b in zip(order, order[1:]))
    assert {soak.ping_pong(1, k) for k in range(5)} == {0}


def test_summary_of_a_flat_and_of_a_leaking_run():
    frames = list(range(100, 10_001, 100))
    flat = [{"frame": f, "rss_mb": 400.0 + (0.3 if f % 200 else -0.3)} for f in frames]
    latencies = [50.0] * 9000 + [60.0] * 900 + [300.0] * 100
    s = soak.summarize(flat, latencies, warmup=1000)
    assert s["frames"] == 10_000 and s["rss_after_warmup_mb"] == 399.7 and s["rss_end_mb"] == 399.7
    assert s["rss_growth_mb"] == 0.0 and abs(s["rss_slope_mb_per_1000_frames"]) < 0.01
    assert s["latency_median_ms"] == 50.0 and s["latency_max_ms"] == 300.0
    assert s["latency_p95_ms"] == pytest.approx(np.percentile(latencies[1000:], 95))
    leaking = [{"frame": f, "rss_mb": 400.0 + 0.002 * f} for f in frames]   # 2 MB per 1000 frames
    s = soak.summarize(leaking, latencies, warmup=1000)
    assert s["rss_slope_mb_per_1000_frames"] == pytest.approx(2.0)
    assert s["rss_growth_mb"] == pytest.approx(18.0)
    short = soak.summarize([{"frame": 100, "rss_mb": 10.0}], [5.0, 7.0], warmup=1000)  # shorter than the warm-up
    assert short["rss_after_warmup_mb"] == short["rss_end_mb"] == 10.0 and short["latency_max_ms"] == 7.0
    empty = soak.summarize([], [], warmup=10)
    assert empty["latency_median_ms"] is None and "rss_end_mb" not in empty


def test_markdown_report_has_the_figures():
    samples = [{"frame": 100, "rss_mb": 400.0, "latency_median_ms": 70.1, "latency_max_ms": 90.0, "objects": 3,
                "loadavg": 2.1}]
    result = {"summary": soak.summarize(samples, [70.1] * 100, 50), "samples": samples, "lost_frames": 0,
              "config": {"objects": 3, "model": "sam2_micro@256"}}
    text = soak.markdown(result)
    assert "| 400.0 MB | 400.0 MB | 0.0 MB |" in text and "| 100 | 400.0 | 70.1 | 90.0 | 3 | 2.1 |" in text
