"""Bursts through the real node: N clients calling ~/remove_object at once, M prompts published back to back on
~/prompt; how many are answered / handled / refused, and how long the last one took.

Starts the sam2 node as a process (sam2.1_hiera_t, random weights, image_size 128, 1 torch thread, backend torch),
sends one 128x96 frame, then the bursts. Prompt outcomes are counted from the node's log lines (a topic has no
answer: "~/prompt: object ..." handled, "~/prompt refused: ..." refused).

    .venv/bin/python -m bench.burst [--calls 16 32 64 100] [--prompts 50 100] [--param service_qos_depth:=10 ...]
        [--quick]

Writes bench/out/burst.json and .md; the node's log in bench/out/burst_node.log.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.common import OUT, Report, description, parse_args


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--calls", type=int, nargs="*", default=[16, 32, 64, 100])
    parser.add_argument("--prompts", type=int, nargs="*", default=[50, 100])
    parser.add_argument("--param", action="append", default=[], help="extra node parameter, name:=value")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a burst's answers")
    parser.add_argument("--client-depth", type=int, default=10,
                        help="QoS depth of each client (its request writer and response reader); rclpy's default 10")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between creating the N clients and calling (DDS discovery of their endpoints)")
    args = parse_args(parser, quick={"calls": [8], "prompts": [10], "timeout": 20.0})

    from sam2_ros.ros.client import NodeClient, prompt_msg, spinning_node, use_private_domain, wait_for
    from sam2_ros.ros.node_process import NodeProcess

    use_private_domain()
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from sam2_ros.msg import Prompt
    from sam2_ros.sim import SyntheticScene
    from sam2_ros.srv import RemoveObject

    OUT.mkdir(parents=True, exist_ok=True)
    params = {"image_size": 128, "cpu_threads": 1, "backend": "torch", "image_reliability": "reliable",
              **dict(p.split(":=", 1) for p in args.param)}
    rep = Report("burst", "Bursts of service calls and prompts through the node")
    rep.print("node parameters: " + " ".join(f"{k}:={v}" for k, v in params.items()), "")
    rep.table("burst", "outcome", "last answer after")
    rows = []
    with NodeProcess(OUT / "burst_node.log", params=params, remaps={"image": "/bench/image"}) as proc, \
            spinning_node("burst_bench") as node:
        proc.wait_ready(120)
        client = NodeClient(node, image_reliability="reliable", image_topic="/bench/image", recorded=("confidence",))
        client.wait_connected(60)
        rgb = SyntheticScene(96, 128, num_objects=2, seed=4).frame(0).rgb
        client.publish_until_output(rgb, 1_950_000_000 * 10**9, topic="confidence")
        # The burst's own publisher: deep enough to hold the largest burst (the client's keeps 50).
        prompts = node.create_publisher(Prompt, "/sam2/prompt", QoSProfile(depth=200,
                                                                           reliability=ReliabilityPolicy.RELIABLE))
        assert wait_for(lambda: prompts.get_subscription_count() > 0, 30), "~/prompt not discovered"
        for n in args.calls:
            client_qos = QoSProfile(depth=args.client_depth, reliability=ReliabilityPolicy.RELIABLE)
            callers = [node.create_client(RemoveObject, "/sam2/remove_object", qos_profile=client_qos)
                       for _ in range(n)]
            assert all(c.wait_for_service(timeout_sec=30) for c in callers)
            time.sleep(args.settle)
            t0 = time.monotonic()
            futures = [c.call_async(RemoveObject.Request(object_id=1000 + k)) for k, c in enumerate(callers)]
            wait_for(lambda: all(f.done() for f in futures), args.timeout, period=0.01)
            answered, spent = sum(f.done() for f in futures), time.monotonic() - t0
            rows.append({"burst": "remove_object", "size": n, "answered": answered, "seconds": spent})
            rep.row(f"{n} concurrent `~/remove_object` calls", f"{answered} answered, {n - answered} not",
                    f"{spent:.2f} s")
            for c in callers:
                node.destroy_client(c)
        for m in args.prompts:
            start = len(proc.output())

            def outcomes() -> tuple[int, int, list[str]]:
                lines = proc.output()[start:].splitlines()
                refused = [ln.split("refused: ", 1)[1] for ln in lines if "~/prompt refused: " in ln]
                return sum("~/prompt: object" in ln for ln in lines), len(refused), refused
            t0 = time.monotonic()
            for k in range(m):
                prompts.publish(prompt_msg(1, points=[(20.0 + k % 90, 30.0)], labels=[1]))
            wait_for(lambda: sum(outcomes()[:2]) >= m, args.timeout, period=0.01)
            handled, refused, texts = outcomes()
            spent = time.monotonic() - t0
            rows.append({"burst": "prompt", "size": m, "handled": handled, "refused": refused,
                         "lost": m - handled - refused, "seconds": spent, "refusal": texts[0] if texts else None})
            why = f" ({texts[0]})" if texts else ""
            rep.row(f"{m} prompts back to back on `~/prompt`",
                    f"{handled} handled, {refused} refused{why}, {m - handled - refused} lost", f"{spent:.2f} s")
    rep.data.update(args=vars(args), params=params, rows=rows, node_exit_code=proc.returncode)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
