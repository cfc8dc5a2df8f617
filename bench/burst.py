"""Bursts through the real node (issue 19): N clients calling ~/remove_object at once, M prompts published back to
back on ~/prompt; how many are answered / handled / refused, and how long the last one took.

Starts the sam2 node as a process (sam2.1_hiera_t, random weights, image_size 128, 1 torch thread, backend torch),
sends one 128x96 frame, then the bursts. Prompt outcomes are counted from the node's log lines (a topic has no
answer: "~/prompt: object ..." handled, "~/prompt refused: ..." refused).

    .venv/bin/python bench/burst.py [--calls 16 32 64 100] [--prompts 50 100] [--param service_qos_depth:=10 ...]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="*", default=[16, 32, 64, 100])
    parser.add_argument("--prompts", type=int, nargs="*", default=[50, 100])
    parser.add_argument("--param", action="append", default=[], help="extra node parameter, name:=value")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a burst's answers")
    parser.add_argument("--client-depth", type=int, default=10,
                        help="QoS depth of each client (its request writer and response reader); rclpy's default 10")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between creating the N clients and calling (DDS discovery of their endpoints)")
    args = parser.parse_args()

    from sam2_ros.ros.client import spinning_node, use_private_domain

    use_private_domain()
    from geometry_msgs.msg import Point
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2_ros.msg import ObjectConfidenceArray, Prompt
    from sam2_ros.ros.conversions import array_to_image
    from sam2_ros.ros import stamps
    from sam2_ros.srv import RemoveObject
    from sam2_ros.sim import SyntheticScene

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "burst_node.log"
    params = ["image_size:=128", "cpu_threads:=1", "backend:=torch", "image_reliability:=reliable", *args.param]
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "sam2_ros", "--ros-args", "-r", "__node:=sam2", "-r", "image:=/bench/image",
         *[a for p in params for a in ("-p", p)]],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1",
                                                                         PYTHONPATH=str(ROOT)), cwd=str(ROOT))
    rows = []
    try:
        with spinning_node("burst_bench") as node:
            reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
            camera = node.create_publisher(Image, "/bench/image", reliable)
            prompts = node.create_publisher(Prompt, "/sam2/prompt", reliable)
            seen: list[int] = []
            node.create_subscription(ObjectConfidenceArray, "/sam2/confidence",
                                     lambda m: seen.append(stamps.to_ns(m.header.stamp)), reliable)
            assert _wait(lambda: camera.get_subscription_count() > 0, 120), "node not up"
            msg = array_to_image(SyntheticScene(96, 128, num_objects=2, seed=4).frame(0).rgb, "rgb8")
            msg.header.stamp.sec = 1_950_000_000
            assert _wait(lambda: camera.publish(msg) or bool(seen), 60), "no output"
            assert _wait(lambda: prompts.get_subscription_count() > 0, 30)
            for n in args.calls:
                client_qos = QoSProfile(depth=args.client_depth, reliability=ReliabilityPolicy.RELIABLE)
                callers = [node.create_client(RemoveObject, "/sam2/remove_object", qos_profile=client_qos)
                           for _ in range(n)]
                assert all(c.wait_for_service(timeout_sec=30) for c in callers)
                time.sleep(args.settle)
                t0 = time.monotonic()
                futures = [c.call_async(RemoveObject.Request(object_id=1000 + k)) for k, c in enumerate(callers)]
                _wait(lambda: all(f.done() for f in futures), args.timeout)
                answered = sum(f.done() for f in futures)
                rows.append(f"| {n} concurrent `~/remove_object` calls | {answered} answered, {n - answered} not | "
                            f"{time.monotonic() - t0:.2f} s |")
                for c in callers:
                    node.destroy_client(c)
            for m in args.prompts:
                start = len(log_path.read_text(errors="replace"))

                def outcomes() -> tuple[int, int, list[str]]:
                    lines = log_path.read_text(errors="replace")[start:].splitlines()
                    refused = [ln.split("refused: ", 1)[1] for ln in lines if "~/prompt refused: " in ln]
                    return sum("~/prompt: object" in ln for ln in lines), len(refused), refused
                t0 = time.monotonic()
                for k in range(m):
                    prompts.publish(Prompt(object_id=1, points=[Point(x=20.0 + k % 90, y=30.0)], labels=[1]))
                _wait(lambda: sum(outcomes()[:2]) >= m, args.timeout)
                handled, refused, texts = outcomes()
                why = f" ({texts[0]})" if texts else ""
                rows.append(f"| {m} prompts back to back on `~/prompt` | {handled} handled, {refused} refused{why}, "
                            f"{m - handled - refused} lost | {time.monotonic() - t0:.2f} s |")
    finally:
        node_proc.send_signal(signal.SIGINT)
        node_proc.wait(30)
    print(f"node parameters: {' '.join(params)}")
    print("| burst | outcome | last answer after |\n|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
