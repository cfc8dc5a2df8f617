"""Node overhead per frame at 640x480: receive + convert + publish all outputs, vs the tracker alone (goal <= 5 ms).

Starts the real sam2 node as a process (tiny model, random weights), subscribes to all four outputs (so publishing
really serialises and sends), streams synthetic 640x480 rgb8 frames with two prompted objects, and reads the node's
own stage timings from /diagnostics (convert_ms, publish_ms, inference_ms), plus end-to-end latency seen from here.

--depth (issue 15): the camera also publishes registered 16UC1 depth (640x480, sam2_ros.sim.depth) and
camera_info, the node runs with use_depth and all three 3-D outputs subscribed; the overhead adds geometry_ms (depth
decode + 3-D extraction + 3-D messages published), and depth_paired_rate is reported.
With random weights the masks are noise: use --model-config sam2_micro --checkpoint models/sam2_micro.pt for masks
of object size (and the same for the run without --depth you compare with).

    .venv/bin/python -m bench.node_overhead [--seconds 20] [--image-size 256] [--threads 1] [--depth]
        [--model-config sam2.1_hiera_t] [--checkpoint PATH] [--objects 2] [--mask-resolution full] [--masks-only]
        [--quick]

Low vs full resolution masks through the node's own publish path: the shipped micro model, 8 objects, ~/masks only
(the other outputs off), and the serialized size of every ~/masks message:

    .venv/bin/python -m bench.node_overhead --model-config sam2_micro --checkpoint models/sam2_micro.pt \
        --objects 8 --masks-only --mask-resolution low

Writes bench/out/node_overhead[_depth][_<N>obj][_low][_masks].json and .md; the node's log in
bench/out/node_overhead_node.log.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np

from bench.common import OUT, Report, description, parse_args


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--depth", action="store_true", help="RGB-D: use_depth with all three 3-D outputs")
    parser.add_argument("--qos", default="reliable", choices=("reliable", "best_effort"),
                        help="image (and depth, camera_info) QoS of camera and node: best-effort 640x480 frames "
                             "between processes lose most of their UDP fragments here (see README, Notes)")
    parser.add_argument("--depth-order", default="before", choices=("before", "after"),
                        help="publish depth + camera_info before or after the colour frame")
    parser.add_argument("--model-config", default="sam2.1_hiera_t")
    parser.add_argument("--checkpoint", default="", help="empty = random weights")
    parser.add_argument("--objects", type=int, default=2, help="objects prompted (the scene has at least 3)")
    parser.add_argument("--mask-resolution", choices=("full", "low"), default="full")
    parser.add_argument("--masks-only", action="store_true", help="publish ~/masks only (the other 2-D outputs off)")
    args = parse_args(parser, quick={"seconds": 4.0})
    from sam2_ros.ros import stamps
    from sam2_ros.ros.client import NodeClient, image_msg, prompt_msg, spinning_node, use_private_domain, wait_for
    from sam2_ros.ros.node_process import NodeProcess

    use_private_domain()
    OUT.mkdir(parents=True, exist_ok=True)

    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from vision_msgs.msg import Detection3DArray
    from visualization_msgs.msg import MarkerArray

    from sam2_ros.msg import ObjectConfidenceArray, ObjectMaskArray
    from sam2_ros.ros.conversions import array_to_image
    from sam2_ros.sim import SyntheticDepthCamera, SyntheticScene
    from sam2_ros.srv import AddPrompt

    params = {"image_size": args.image_size, "cpu_threads": args.threads, "diagnostics_period": 1.0,
              "model_config": args.model_config, "image_reliability": args.qos,
              "mask_resolution": args.mask_resolution, "backend": "torch"}
    if args.checkpoint:  # the node's default "" = random weights (`-p checkpoint:=` does not parse)
        params["checkpoint"] = args.checkpoint
    if args.masks_only:
        params.update(publish_confidence=False, publish_label_image=False, publish_overlay=False)
    remaps = {"image": "/bench/image"}
    if args.depth:
        params["use_depth"] = True
        remaps.update(depth="/bench/depth", camera_info="/bench/camera_info")
    scene = SyntheticScene(480, 640, num_objects=max(3, args.objects), seed=1)
    frames = [scene.frame(i) for i in range(30)]
    camera = SyntheticDepthCamera(scene)
    depths = [array_to_image(camera.render(f, "16UC1").depth, "16UC1") for f in frames] if args.depth else []
    info = CameraInfo(width=640, height=480, k=[float(v) for v in camera.intrinsics.k.reshape(-1)])
    lock = threading.Lock()
    sent: dict[int, float] = {}
    outputs = {"masks": ObjectMaskArray} if args.masks_only else \
        {"masks": ObjectMaskArray, "confidence": ObjectConfidenceArray, "label_image": Image, "overlay": Image}
    if args.depth:
        outputs.update(points=PointCloud2, detections_3d=Detection3DArray, markers=MarkerArray)
    arrivals: dict[str, dict[int, float]] = {t: {} for t in outputs}   # topic -> stamp -> arrival (monotonic)
    mask_bytes: dict[int, int] = {}  # stamp -> serialized ~/masks message

    def on_masks(raw: bytes) -> None:
        stamp = stamps.to_ns(deserialize_message(raw, ObjectMaskArray).header.stamp)
        with lock:
            arrivals["masks"][stamp] = time.monotonic()
            mask_bytes[stamp] = len(raw)

    def recorder(topic):
        def record(msg):
            header = msg.header if hasattr(msg, "header") else msg.markers[0].header  # MarkerArray: its markers'
            with lock:
                arrivals[topic][stamps.to_ns(header.stamp)] = time.monotonic()
        return record

    def publish(k: int) -> int:
        """Frame k, and with --depth its camera_info and depth (same header) before or after it; returns its stamp."""
        stamp = 1_000_000_000 + k * 50_000_000
        msg = image_msg(frames[k % len(frames)].rgb, stamp)
        if args.depth:
            info.header = msg.header
            depth = depths[k % len(depths)]
            depth.header = msg.header
        if args.depth and args.depth_order == "before":
            client.info_pub.publish(info)
            depth_pub.publish(depth)
        with lock:
            sent[stamp] = time.monotonic()
        client.image_pub.publish(msg)
        if args.depth and args.depth_order == "after":
            client.info_pub.publish(info)
            depth_pub.publish(depth)
        return stamp

    with NodeProcess(OUT / "node_overhead_node.log", params=params, remaps=remaps) as proc, \
            spinning_node("node_overhead_bench") as node:
        client = NodeClient(node, image_reliability=args.qos, image_topic="/bench/image",
                            camera_info_topic="/bench/camera_info", recorded=("diagnostics",))
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        depth_pub = node.create_publisher(Image, "/bench/depth", reliable if args.qos == "reliable"
                                          else qos_profile_sensor_data)
        node.create_subscription(ObjectMaskArray, "/sam2/masks", on_masks, reliable, raw=True)
        for topic, typ in outputs.items():
            if topic != "masks":
                node.create_subscription(typ, f"/sam2/{topic}", recorder(topic), reliable)
        proc.wait_ready(90)
        k = 0
        answered = lambda: bool(arrivals["masks"])  # noqa: E731
        while not answered() and k < 300:  # until the node answers
            publish(k)
            k += 1
            wait_for(answered, 0.3)
        if not answered():
            print(f"node did not answer; see {proc.log_path}")
            return 1
        f0 = frames[(k - 1) % len(frames)]
        for j in range(args.objects):
            if f0.inner_point(j) is not None:
                client.call(AddPrompt, "add_prompt", AddPrompt.Request(prompt=prompt_msg(
                    j + 1, points=[f0.inner_point(j)], labels=[1])))
        with lock:
            client.clear()
            sent.clear()
            for t in arrivals.values():
                t.clear()
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            t0 = time.monotonic()
            publish(k)
            k += 1
            time.sleep(max(0.0, 1.0 / args.fps - (time.monotonic() - t0)))
        time.sleep(2.5)
        diags = client.diagnostics()

    rows = [d for d in diags if float(d.get("output_rate_hz", 0)) > 0]
    keys = ("convert_ms", "publish_ms", "inference_ms", "convert_cpu_ms", "publish_cpu_ms", "geometry_ms",
            "geometry_cpu_ms")
    mean = {key: float(np.mean([float(d[key]) for d in rows])) for key in keys}
    paired = [float(d["depth_paired_rate"]) for d in rows if d.get("depth_paired_rate", "n/a") != "n/a"]
    with lock:
        last = "masks" if args.masks_only else "overlay"
        done = {s: arrivals[last][s] for s in arrivals[last] if s in sent}
        sizes = [mask_bytes[s] for s in done if s in mask_bytes]
        last_topic = {s: max(arrivals[t].get(s, 0.0) for t in arrivals) for s in done}
    e2e = np.array([last_topic[s] - sent[s] for s in done]) * 1e3
    overhead = mean["convert_ms"] + mean["publish_ms"] + mean["geometry_ms"]
    result = {
        "image": "640x480 rgb8" + (" + 16UC1 depth" if args.depth else ""), "objects": args.objects,
        "mask_resolution": args.mask_resolution, "outputs": "masks" if args.masks_only else "all 2-D",
        "masks_bytes_per_frame": int(np.median(sizes)) if sizes else None,
        "model": f"{args.model_config}@{args.image_size}", "weights": args.checkpoint or "random",
        "threads": args.threads, "qos": args.qos, "depth_order": args.depth_order if args.depth else None,
        "frames_sent": len(sent), "frames_out": len(done),
        "convert_ms": round(mean["convert_ms"], 3), "publish_all_outputs_ms": round(mean["publish_ms"], 3),
        "node_overhead_ms": round(overhead, 3), "tracker_ms": round(mean["inference_ms"], 1),
        "convert_cpu_ms": round(mean["convert_cpu_ms"], 3), "publish_cpu_ms": round(mean["publish_cpu_ms"], 3),
        "geometry_ms": round(mean["geometry_ms"], 3), "geometry_cpu_ms": round(mean["geometry_cpu_ms"], 3),
        "depth_paired_rate": round(float(np.mean(paired)), 3) if paired else None,
        "frames_with_3d": len(arrivals["points"]) if args.depth else None,
        "node_overhead_cpu_ms": round(mean["convert_cpu_ms"] + mean["publish_cpu_ms"] + mean["geometry_cpu_ms"], 3),
        "end_to_end_ms_median": round(float(np.median(e2e)), 1) if e2e.size else None,
    }
    name = "node_overhead" + ("_depth" if args.depth else "") + (f"_{args.objects}obj" if args.objects != 2 else "") \
        + ("_low" if args.mask_resolution == "low" else "") + ("_masks" if args.masks_only else "")
    rep = Report(name, "Node overhead per frame at 640x480")
    rep.table("figure", "value")
    for key, value in result.items():
        rep.row(key, value)
    rep.print("", f"node overhead {overhead:.2f} ms per frame (convert {mean['convert_ms']:.2f} + publish "
              f"{mean['publish_ms']:.2f} + 3-D {mean['geometry_ms']:.2f}) wall, {result['node_overhead_cpu_ms']:.2f} "
              f"ms CPU, vs tracker {mean['inference_ms']:.0f} ms; goal <= 5 ms (wall): "
              f"{'met' if overhead <= 5.0 else 'NOT met'}")
    rep.data.update(args=vars(args), params=params, node_exit_code=proc.returncode, **result)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
