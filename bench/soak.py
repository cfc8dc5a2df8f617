"""Soak: N frames closed loop through the real node process, 3 prompted objects; RSS and latency every 100 frames.

The node runs as its own process (NodeProcess: `python -m sam2_ros`, the shipped micro model, backend torch, 1 torch thread,
reliable image QoS, every 2-D output on). This script publishes one synthetic 640x480 rgb8 frame, waits for the
node's `~/masks` with that frame's stamp (closed loop: no frame is dropped, each latency is publish -> masks
received), then publishes the next. Every `--sample-every` frames it reads the node process's RSS (/proc/PID/status
VmRSS) and the latencies of that window. Memory must be flat after warm-up (the tracker's memory bank and frame
history are bounded); the summary fits a line to RSS after warm-up and reports the growth per 1,000 frames.

    .venv/bin/python -m bench.soak [--frames 10000] [--sample-every 100] [--warmup 1000] [--out bench/out]
        [--transport default|udp|large_data] [--echo] [--max-lost 5] [--domain N] [--quick]

Results: bench/out/soak.json and bench/out/soak.md (written at every sample, so a long run can be watched and an
interrupted one still leaves its figures); the node's log in bench/out/soak_node.log.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import MICRO_CHECKPOINT, OUT, Report, description, parse_args, stats

TRANSPORTS = {"default": None, "udp": "UDPv4", "large_data": "LARGE_DATA"}  # --transport -> FASTDDS_BUILTIN_TRANSPORTS


# ---------------------------------------------------------------------------------------------- pure parts (tested)
def parse_rss_kb(status_text: str) -> int:
    """VmRSS in kB from the text of /proc/PID/status; ValueError when it has none (e.g. a zombie)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    raise ValueError("no VmRSS line")


def stamp_from_cdr(raw: bytes) -> int:
    """Header stamp (ns) of a serialized message whose first field is std_msgs/Header (read without deserializing
    the masks): 4 bytes of CDR encapsulation (byte 1: 1 = little endian), then int32 sec, uint32 nanosec."""
    if len(raw) < 12:
        raise ValueError(f"{len(raw)} bytes: too short for a header")
    order = "<" if raw[1] == 1 else ">"
    sec, nanosec = struct.unpack(order + "iI", raw[4:12])
    return sec * 1_000_000_000 + nanosec


def ping_pong(count: int, k: int) -> int:
    """Index into `count` scene frames for step k: 0, 1, ..., count-1, count-2, ..., 1, 0, 1, ... (no jumps)."""
    if count <= 1:
        return 0
    period = 2 * (count - 1)
    i = k % period
    return i if i < count else period - i


def summarize(samples: list[dict], latencies_ms: list[float], warmup: int) -> dict:
    """Figures of a run: RSS after warm-up and at the end, its growth (total and by a least-squares line per 1,000
    frames, after warm-up), and latency median / p95 / max over the frames after warm-up (all when the run was shorter).

    samples: [{"frame": n, "rss_mb": ...}, ...] in frame order; latencies_ms: one per frame, in frame order.
    """
    after = [s for s in samples if s["frame"] >= warmup] or samples
    out: dict = {"warmup_frames": warmup, "frames": len(latencies_ms)}
    if after:
        x = np.array([s["frame"] for s in after], np.float64)
        y = np.array([s["rss_mb"] for s in after], np.float64)
        out["rss_after_warmup_mb"] = round(float(y[0]), 1)
        out["rss_end_mb"] = round(float(y[-1]), 1)
        out["rss_max_mb"] = round(float(y.max()), 1)
        out["rss_growth_mb"] = round(float(y[-1] - y[0]), 1)
        slope = float(np.polyfit(x, y, 1)[0]) if len(after) >= 2 and np.ptp(x) > 0 else 0.0
        out["rss_slope_mb_per_1000_frames"] = round(slope * 1000.0, 3)
    steady = latencies_ms[warmup:] if len(latencies_ms) > warmup else latencies_ms
    figures = stats(steady)
    for name in ("median", "p95", "p99"):
        out[f"latency_{name}_ms"] = None if figures[name] is None else round(figures[name], 1)
    out["latency_max_ms"] = round(max(steady), 1) if steady else None
    return out


def markdown(result: dict) -> str:
    """The run as a short markdown report (under the writer's header): set-up, the summary, the samples as a table."""
    s, c = result["summary"], result["config"]
    lines = [f"{s['frames']} frames, {c['objects']} objects, {c['model']}, transport {c.get('transport', 'default')}",
             "",
             "| RSS after warm-up | RSS end | growth | slope per 1000 frames | latency median | p95 | max | lost | "
             "participant renewals |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| {s.get('rss_after_warmup_mb')} MB | {s.get('rss_end_mb')} MB | {s.get('rss_growth_mb')} MB | "
             f"{s.get('rss_slope_mb_per_1000_frames')} MB | {s.get('latency_median_ms')} ms | "
             f"{s.get('latency_p95_ms')} ms | {s.get('latency_max_ms')} ms | {result['lost_frames']} | "
             f"{len(result.get('stalls', []))} |", "",
             "| frame | RSS MB | latency median ms (window) | max ms (window) | objects | load avg |",
             "|---|---|---|---|---|---|"]
    for row in result["samples"]:
        lines.append(f"| {row['frame']} | {row['rss_mb']} | {row['latency_median_ms']} | {row['latency_max_ms']} | "
                     f"{row['objects']} | {row['loadavg']} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the run
def read_rss_mb(pid: int) -> float:
    """The process's resident set size in MB."""
    return round(parse_rss_kb(Path(f"/proc/{pid}/status").read_text()) / 1024.0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=1000, help="frames before the RSS baseline")
    parser.add_argument("--objects", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0, help="s to wait for one frame's masks")
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="default",
                        help="Fast DDS builtin transports of both processes (FASTDDS_BUILTIN_TRANSPORTS): default = "
                             "shared memory + UDP, udp = UDPv4 only, large_data = UDP discovery, SHM / TCP data")
    parser.add_argument("--stall", type=float, default=2.0,
                        help="s without a frame's masks after which this process's DDS participant is renewed and "
                             "the frame sent again (0 = never): long runs here stalled in Fast DDS, with the echo "
                             "process too (docs/BENCHMARKS.md, Soak)")
    parser.add_argument("--echo", action="store_true",
                        help="control run: bench/soak_echo.py answers each frame with masks of the same size, no model")
    parser.add_argument("--max-lost", type=int, default=5, help="consecutive lost frames that end the run")
    parser.add_argument("--domain", type=int, default=None,
                        help="ROS_DOMAIN_ID (default: one of 101..232 by pid; the test suite's runs use 1..100, and "
                             "a run of 10,000 frames lives long enough to meet one in the same domain)")
    parser.add_argument("--out", default=str(OUT))
    args = parse_args(parser, quick={"frames": 60, "sample_every": 20, "warmup": 20})

    from sam2_ros.ros import stamps
    from sam2_ros.ros.client import NodeClient, image_msg, prompt_msg, spinning_node, use_private_domain, wait_for
    from sam2_ros.ros.node_process import ChildProcess, NodeProcess

    use_private_domain()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain if args.domain is not None else 101 + os.getpid() % 132)
    if TRANSPORTS[args.transport]:  # before rclpy starts here, and inherited by the node process
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = TRANSPORTS[args.transport]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message

    from sam2_ros.msg import ObjectMaskArray
    from sam2_ros.sim import SyntheticScene
    from sam2_ros.srv import AddPrompt

    params = {"model_config": "sam2_micro", "checkpoint": str(MICRO_CHECKPOINT), "image_size": args.image_size,
              "cpu_threads": args.threads, "backend": "torch", "image_reliability": "reliable",
              "diagnostics_period": 1.0}
    log = out_dir / "soak_node.log"
    node_proc = ChildProcess([sys.executable, "-m", "bench.soak_echo", "--ros-args", "-r", "image:=/soak/image"], log) \
        if args.echo else NodeProcess(log, params=params, remaps={"image": "/soak/image"})
    scene = SyntheticScene(480, 640, num_objects=max(3, args.objects), seed=1)
    frames = [scene.frame(i) for i in range(60)]
    images = [image_msg(f.rgb, 0) for f in frames]
    lock = threading.Condition()
    arrived: dict[int, tuple[float, bytes]] = {}   # stamp -> (arrival monotonic, the serialized ~/masks)

    def on_masks(raw: bytes) -> None:
        stamp = stamp_from_cdr(raw)
        with lock:
            arrived[stamp] = (time.monotonic(), raw)
            lock.notify_all()

    rep = Report("soak", "Soak through the node process", out=out_dir)
    result = rep.data
    result.update({"config": {"model": "echo (no model)" if args.echo else f"sam2_micro@{args.image_size}",
                               "backend": "torch", "threads": args.threads,
                               "objects": args.objects, "image": "640x480 rgb8", "frames": args.frames,
                               "sample_every": args.sample_every, "transport": args.transport},
                   "samples": [], "lost_frames": 0})
    latencies: list[float] = []
    window: list[float] = []

    def write() -> None:
        result["summary"] = summarize(result["samples"], latencies, args.warmup)
        rep.write(markdown(result))

    class Link:
        """This process's DDS participant: a NodeClient (the image publisher, the ~/add_prompt client; it records no
        output) and the ~/masks reader (raw: the stamp is read without deserializing). renew() replaces it (--stall)."""

        def __init__(self) -> None:
            self.stack = contextlib.ExitStack()
            self.node = self.stack.enter_context(spinning_node("soak_bench"))
            self.client = NodeClient(self.node, image_reliability="reliable", image_topic="/soak/image", recorded=())
            self.pub = self.client.image_pub
            self.node.create_subscription(ObjectMaskArray, "/sam2/masks", on_masks,
                                          QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE), raw=True)

        def connected(self) -> bool:
            return self.pub.get_subscription_count() > 0 and self.node.count_publishers("/sam2/masks") > 0

        def renew(self) -> None:
            self.stack.close()
            self.__init__()
            wait_for(self.connected, 30, period=0.05)

    link = Link()

    def send(k: int) -> int:
        msg = images[ping_pong(len(images), k)]
        stamp = 1_000_000_000 + k * 33_000_000
        stamps.set_ns(msg.header, stamp)
        link.pub.publish(msg)
        return stamp

    def answer(stamp: int, timeout: float):
        with lock:
            got = lock.wait_for(lambda: stamp in arrived, timeout)
            seen = arrived.pop(stamp, None) if got else None
            arrived.clear()   # bounded: older stamps (none expected) are dropped
        return seen

    try:
        deadline, k = time.monotonic() + 120, 0
        while time.monotonic() < deadline and not arrived:   # until the node is up and answers
            send(k)
            k += 1
            with lock:
                lock.wait(1.0)
        if not arrived:
            print(f"node did not answer; see {log}")
            return 1
        first = frames[ping_pong(len(frames), k - 1)]
        for j in range(args.objects):
            reply = link.client.call(AddPrompt, "add_prompt", AddPrompt.Request(
                prompt=prompt_msg(j + 1, points=[first.inner_point(j)], labels=[1])))
            if not reply.success:
                print(f"prompt {j + 1} refused: {reply.message}")
                return 1
        lost_in_a_row = 0
        result["stalls"] = []  # frames after which this process's participant was renewed
        for n in range(1, args.frames + 1):
            t0 = time.monotonic()
            stamp = send(k)
            k += 1
            seen = answer(stamp, args.stall if args.stall > 0 else args.timeout)
            if seen is None and args.stall > 0:  # a transport stall (see --stall): a new participant, a new frame
                link.renew()
                result["stalls"].append(n)
                print(f"frame {n}: no masks after {args.stall} s; participant renewed", flush=True)
                t0 = time.monotonic()
                stamp = send(k)
                k += 1
                seen = answer(stamp, args.timeout)
            if seen is None:
                result["lost_frames"] += 1
                lost_in_a_row += 1
                if lost_in_a_row >= args.max_lost:
                    print(f"{lost_in_a_row} frames in a row without masks: stopping at frame {n}", flush=True)
                    result["stopped_at"] = n
                    break
                continue
            lost_in_a_row = 0
            latencies.append((seen[0] - t0) * 1e3)
            window.append(latencies[-1])
            if n % args.sample_every == 0:
                result["samples"].append({
                    "frame": n, "rss_mb": read_rss_mb(node_proc.popen.pid),
                    "latency_median_ms": round(float(np.median(window)), 1) if window else None,
                    "latency_max_ms": round(max(window), 1) if window else None,
                    "objects": len(deserialize_message(seen[1], ObjectMaskArray).objects),
                    "loadavg": round(os.getloadavg()[0], 2)})
                window.clear()
                write()
                row = result["samples"][-1]
                print(f"frame {n}: RSS {row['rss_mb']} MB, latency median {row['latency_median_ms']} ms "
                      f"(max {row['latency_max_ms']}), load {row['loadavg']}", flush=True)
    finally:
        link.stack.close()
        result["node_exit_code"] = node_proc.stop(timeout=30)
    write()
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
