"""`make demo` / `python -m sam2_ros.demo`: the sam2 node on a synthetic camera, prompted automatically, recorded.

No camera, no download: the node runs as its own process (as in deployment); this process plays a synthetic camera
(moving shapes on a texture, with ground truth), clicks the most visible shape (object 1) and boxes the next most
visible one (object 2), as an operator would, records the overlay frames as PNGs and scores the masks against the
ground truth (J = IoU). It writes a one-line summary and exits. With --detector no one clicks: a synthetic detector
publishes each frame's boxes with class names and the node makes the objects (sam2_ros/demo_detector.py).

With --depth the camera is an RGB-D camera (sam2_ros.sim.depth: registered 16UC1 depth + camera_info), the node
runs with use_depth, and the summary adds each object's 3-D centroid error (~/detections_3d's centroid against the
ground truth of the shape it was prompted on).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from sam2_ros.ros.client import spinning_node, use_private_domain
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.sim import SyntheticDepthCamera

ROOT = Path(__file__).resolve().parents[1]
# models/sam2_micro.pt ships with the repository (trained here, see models/MODEL_CARD.md); Meta's files can be added.
CHECKPOINT_NAMES = {"sam2_micro": "sam2_micro.pt", "sam2.1_hiera_t": "sam2.1_hiera_tiny.pt", "sam2.1_hiera_s": "sam2.1_hiera_small.pt",
                    "sam2.1_hiera_b+": "sam2.1_hiera_base_plus.pt", "sam2.1_hiera_l": "sam2.1_hiera_large.pt"}


def find_checkpoint(config: str) -> str | None:
    """models/<Meta's file name> in the checkout, or $SAM2_CHECKPOINT; None when there is none."""
    env = os.environ.get("SAM2_CHECKPOINT")
    if env:
        return env
    candidate = ROOT / "models" / CHECKPOINT_NAMES.get(config, f"{config}.pt")
    return str(candidate) if candidate.is_file() else None


def _banner(lines: list[str]) -> None:
    bar = "!" * 78
    print("\n".join([bar] + [f"!! {line}" for line in lines] + [bar]), flush=True)


class Demo:
    """Camera + prompter + recorder in one rclpy node; the sam2 node is a child process."""

    def __init__(self, args: argparse.Namespace, out: Path, node_proc: subprocess.Popen) -> None:
        self.args, self.out, self.node_proc = args, out, node_proc
        self.scene = SyntheticScene(args.height, args.width, num_objects=4, seed=args.seed)
        self.depth_camera = SyntheticDepthCamera(self.scene) if args.depth else None
        self.truth_3d: dict[int, np.ndarray] = {}          # stamp -> [N, 3] ground-truth centroids (--depth)
        self.errors_3d: dict[int, list[np.ndarray]] = {1: [], 2: []}  # object id -> centroid errors (m)
        self.lock = threading.Lock()
        self.sent: dict[int, tuple[int, float]] = {}     # stamp -> (frame index, send time)
        self.outputs: list[tuple[int, float]] = []        # (stamp, arrival)
        self.scores: dict[int, list[float]] = {1: [], 2: []}
        self.prompt_stamp: int | None = None
        self.targets: dict[int, int] = {}  # object id -> index of the scene shape it was prompted on
        self.saved = 0
        self.first_output = threading.Event()

    def run(self) -> int:
        from geometry_msgs.msg import PointStamped
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from sam2_ros.msg import ObjectMaskArray, Prompt

        with spinning_node("sam2_demo") as node:
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            # Reliable, and the node told so: best-effort 640x480 frames between processes lose most of their UDP
            # fragments with Fast DDS's defaults here (measured: 6 of 139 frames delivered, vs 116 of 139 reliable).
            self.camera = node.create_publisher(Image, "/demo/camera/image", reliable)
            self.click = node.create_publisher(PointStamped, "/sam2/click", reliable)
            self.prompt = node.create_publisher(Prompt, "/sam2/prompt", reliable)
            node.create_subscription(Image, "/sam2/overlay", self._on_overlay, reliable)
            node.create_subscription(ObjectMaskArray, "/sam2/masks", self._on_masks, reliable)
            if self.depth_camera is not None:
                from sensor_msgs.msg import CameraInfo
                from vision_msgs.msg import Detection3DArray

                self.depth_pub = node.create_publisher(Image, "/demo/camera/depth", reliable)
                self.info_pub = node.create_publisher(CameraInfo, "/demo/camera/camera_info", reliable)
                node.create_subscription(Detection3DArray, "/sam2/detections_3d", self._on_detections_3d, reliable)
            return self._play(node)

    def _play(self, node) -> int:
        from geometry_msgs.msg import Point, PointStamped

        from sam2_ros.msg import Prompt

        period = 1.0 / self.args.fps
        index, deadline, prompted_at = 0, time.monotonic() + self.args.startup_timeout, None
        while True:
            now = time.monotonic()
            if prompted_at is None and self.first_output.is_set():
                # Prompt on the newest frame the node has answered: a click on the most visible shape (object 1),
                # a box around the next most visible one (object 2). A shape hidden behind others is left alone.
                with self.lock:
                    stamp = self.outputs[-1][0]
                    frame = self.scene.frame(self.sent[stamp][0])
                clicked, boxed = (int(k) for k in np.argsort(-frame.masks.sum(axis=(1, 2)), kind="stable")[:2])
                bounds = frame.box(boxed)
                self.targets = {1: clicked, 2: boxed}
                x, y = frame.inner_point(clicked)
                click = PointStamped(point=Point(x=x, y=y))
                click.header.stamp.sec, click.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                self.click.publish(click)
                box = Prompt(object_id=2, has_box=True, box=[float(v) for v in bounds])
                box.header.stamp = click.header.stamp
                self.prompt.publish(box)
                self.prompt_stamp, prompted_at = stamp, now
                print(f"prompted frame {self.sent[stamp][0]}: click ({x:.0f}, {y:.0f}) on shape {clicked} (object 1), "
                      f"box {bounds} on shape {boxed} (object 2)", flush=True)
            if prompted_at is None and self._startup_failed(now, deadline):
                return 1
            if prompted_at is not None and now - prompted_at > self.args.seconds:
                break
            self._send(node, index)
            index += 1
            time.sleep(max(0.0, period - (time.monotonic() - now)))
        time.sleep(1.0)  # let the last outputs arrive
        return 0

    def _startup_failed(self, now: float, deadline: float) -> bool:
        """True, saying why, when the node has exited or has produced no output by `deadline`."""
        exited = self.node_proc.poll() is not None
        if exited or now > deadline:
            print(f"the node produced no output ({'it exited' if exited else 'timeout'}); see {self.out / 'node.log'}",
                  flush=True)
        return exited or now > deadline

    def _send(self, node, index: int) -> None:
        """Publish scene frame `index` stamped now (camera_info and depth first, with depth on) and note when."""
        frame = self.scene.frame(index)
        msg = _image(frame.rgb, node.get_clock().now().nanoseconds)
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if self.depth_camera is not None:  # camera_info and the registered depth, the colour's header
            from sam2_ros.ros.conversions import array_to_image

            depth = self.depth_camera.render(frame, "16UC1")
            self.info_pub.publish(_camera_info(self.depth_camera.intrinsics, msg.header))
            self.depth_pub.publish(array_to_image(depth.depth, "16UC1", msg.header))
            with self.lock:
                self.truth_3d[stamp] = depth.centroids
        with self.lock:
            self.sent[stamp] = (index, time.monotonic())
        self.camera.publish(msg)
        self._after_frame(frame, msg)

    def _after_frame(self, frame, msg) -> None:
        """What goes out right after a camera frame (the detector demo's detections)."""

    def _on_masks(self, msg) -> None:
        from sam2_ros.ros.conversions import image_to_array
        from sam2_ros.ros.prompts import stamp_ns

        stamp = stamp_ns(msg.header.stamp)
        with self.lock:
            if stamp not in self.sent:
                return
            self.outputs.append((stamp, time.monotonic()))
            index = self.sent[stamp][0]
            scoring = self.prompt_stamp is not None and stamp >= self.prompt_stamp
        self.first_output.set()
        if not scoring:
            return
        truth = self.scene.frame(index).masks
        found = {o.object_id: image_to_array(o.mask)[:, :, 0] > 0 for o in msg.objects}
        for object_id in self.scores:
            if object_id in found:
                self.scores[object_id].append(jaccard(found[object_id], truth[self.targets[object_id]]))

    def _on_detections_3d(self, msg) -> None:
        from sam2_ros.ros.prompts import stamp_ns

        stamp = stamp_ns(msg.header.stamp)
        with self.lock:
            truth = self.truth_3d.get(stamp)
            if truth is None or self.prompt_stamp is None or stamp < self.prompt_stamp:
                return
            for d in msg.detections:
                object_id = int(d.id)
                if object_id in self.errors_3d and object_id in self.targets:
                    p = d.results[0].pose.pose.position
                    self.errors_3d[object_id].append(np.array([p.x, p.y, p.z]) - truth[self.targets[object_id]])

    def _on_overlay(self, msg) -> None:
        from PIL import Image as PilImage

        from sam2_ros.ros.conversions import image_to_array
        from sam2_ros.ros.prompts import stamp_ns

        with self.lock:  # only answers to our own frames (another run may share the DDS domain: ids are 1-100)
            ours = stamp_ns(msg.header.stamp) in self.sent
        if ours and self.saved < self.args.max_frames:
            PilImage.fromarray(image_to_array(msg)).save(self.out / f"overlay_{self.saved:04d}.png")
            self.saved += 1

    def node_start(self) -> str:
        """`backend=<what ran> start_s=<configure time>` from the node's log (export / warm-up included)."""
        try:
            text = (self.out / "node.log").read_text(errors="replace")
        except OSError:
            return "backend=? start_s=?"
        found = re.search(r"via (\w+) \(ready in ([\d.]+) s\)", text)
        return f"backend={found[1]} start_s={found[2]}" if found else "backend=? start_s=?"

    def summary(self, weights: str) -> str:
        with self.lock:
            outputs, sent = list(self.outputs), dict(self.sent)
        latency = [arrival - sent[s][1] for s, arrival in outputs]
        span = (outputs[-1][1] - outputs[0][1]) if len(outputs) > 1 else 0.0
        fps = (len(outputs) - 1) / span if span > 0 else 0.0
        j = {k: float(np.mean(v)) if v else float("nan") for k, v in self.scores.items()}
        j_all = float(np.mean([x for v in self.scores.values() for x in v])) if any(self.scores.values()) else \
            float("nan")
        return (f"frames_in={len(sent)} frames_out={len(outputs)} fps={fps:.2f} "
                f"latency_ms={1e3 * float(np.mean(latency)) if latency else float('nan'):.0f} "
                f"J={j_all:.3f} (click obj1 {j[1]:.3f}, box obj2 {j[2]:.3f}) weights={weights} "
                f"{self.node_start()} overlays={self.saved} {self.summary_3d()}folder={self.out}")

    def summary_3d(self) -> str:
        """'centroid_err_mm obj1 <median |error|> (x .. y .. z ..; n frames) obj2 ... ' with --depth, else ''."""
        if self.depth_camera is None:
            return ""
        parts = []
        with self.lock:
            errors = {k: np.array(v).reshape(-1, 3) for k, v in self.errors_3d.items()}
        for object_id, e in errors.items():
            if not len(e):
                parts.append(f"obj{object_id} nan (no 3-D output)")
                continue
            ax = np.median(np.abs(e), axis=0) * 1e3
            parts.append(f"obj{object_id} {np.median(np.linalg.norm(e, axis=1)) * 1e3:.1f} (x {ax[0]:.1f} "
                         f"y {ax[1]:.1f} z {ax[2]:.1f}; {len(e)} frames)")
        return "centroid_err_mm " + " ".join(parts) + " "


def _image(rgb: np.ndarray, stamp: int):
    from sam2_ros.ros.conversions import array_to_image

    msg = array_to_image(rgb, "rgb8")
    msg.header.frame_id = "demo_camera_optical"
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    return msg


def _camera_info(intrinsics, header):
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(header=header, width=intrinsics.width, height=intrinsics.height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[float(v) for v in intrinsics.k.reshape(-1)])


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when the node tracked and the summary was written."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for overlay PNGs, summary.txt, node.log "
                        "(default demo_output; with --detector demo_output/detector, with --depth demo_output/depth)")
    parser.add_argument("--depth", action="store_true",
                        help="RGB-D: also publish registered depth + camera_info; the node publishes 3-D outputs and "
                             "the summary adds each object's 3-D centroid error")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to track after prompting")
    parser.add_argument("--fps", type=float, default=None,
                        help="synthetic camera rate (default 15; with --detector 5, see docs/BENCHMARKS.md)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model-config", default="sam2_micro",
                        help="sam2_micro (shipped, trained here) or a Meta config with its checkpoint in models/")
    parser.add_argument("--image-size", type=int, default=None,
                        help="model input size (default: 256 for sam2_micro and on CPU; 1024 for Meta's models on a GPU)")
    parser.add_argument("--checkpoint", default=None, help="Meta's .pt (default: models/<name>.pt if present)")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime", "tensorrt"),
                        help="the node's backend (auto: ONNX Runtime on a CPU, exported once into the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-frames", type=int, default=200, help="most overlay PNGs written")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--detector", action="store_true",
                        help="objects from a synthetic detector's vision_msgs boxes (with class names), not clicks")
    args = parser.parse_args(argv)

    import torch

    on_gpu = torch.cuda.is_available()
    if args.fps is None:
        # The micro model on a CPU sees every 3rd frame of a 15 Hz camera; shapes then move so far between the
        # frames it gets that it loses some, and the detector's boxes of a lost shape make a new object.
        args.fps = 5.0 if args.detector and not on_gpu else 15.0
    if args.image_size is None:
        args.image_size = 1024 if on_gpu and args.model_config != "sam2_micro" else 256
    out = Path(args.out or ("demo_output/detector" if args.detector else
                            "demo_output/depth" if args.depth else "demo_output")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("overlay_*.png"):
        old.unlink()
    # --checkpoint "" forces random weights; no --checkpoint looks for one.
    checkpoint = args.checkpoint if args.checkpoint is not None else find_checkpoint(args.model_config)
    checkpoint = checkpoint or None
    if checkpoint is None:
        _banner(["NO CHECKPOINT FOUND: the model runs with RANDOM WEIGHTS.",
                 "The pipeline works end to end, but the masks are meaningless and J is near chance.",
                 f"Put Meta's {CHECKPOINT_NAMES.get(args.model_config, args.model_config + '.pt')} into "
                 f"{ROOT / 'models'} or pass --checkpoint / set SAM2_CHECKPOINT."])
    use_private_domain()  # shared only with our own node process
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    node_args = [sys.executable, "-m", "sam2_ros", "--ros-args", "-r", "__node:=sam2",
                 "-r", "image:=/demo/camera/image", "-p", f"model_config:={args.model_config}",
                 "-p", f"image_size:={args.image_size}", "-p", "prompt_history:=30", "-p", "image_reliability:=reliable",
                 "-p", f"backend:={args.backend}",
                 # On a CPU shared with other work one torch thread is several times faster than two that spin
                 # against each other (measured: 0.5 s vs 5 s per frame at 256 px under load).
                 "-p", f"cpu_threads:={0 if on_gpu else 1}"]
    if checkpoint:
        node_args += ["-p", f"checkpoint:={checkpoint}"]
    if args.depth:
        node_args += ["-p", "use_depth:=true", "-r", "depth:=/demo/camera/depth",
                      "-r", "camera_info:=/demo/camera/camera_info"]
    demo_class = Demo
    if args.detector:
        from sam2_ros.demo_detector import DETECTIONS_TOPIC, DetectorDemo

        demo_class = DetectorDemo
        node_args += ["-r", f"~/detections:={DETECTIONS_TOPIC}"]
    print(f"starting the sam2 node ({args.model_config} at {args.image_size} px); log: {out / 'node.log'}",
          flush=True)
    t0 = time.monotonic()
    with open(out / "node.log", "wb") as log:
        proc = subprocess.Popen(node_args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        try:
            demo = demo_class(args, out, proc)
            code = demo.run()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                node_code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                node_code = proc.wait()
    line = demo.summary("random" if checkpoint is None else checkpoint)
    (out / "summary.txt").write_text(line + "\n")
    print(line, flush=True)
    print(f"demo finished in {time.monotonic() - t0:.1f} s; node exit code {node_code}; results in {out}", flush=True)
    if checkpoint is None:
        _banner(["Reminder: RANDOM WEIGHTS were used (no checkpoint); the masks above are not segmentation."])
    return code if code else (0 if demo.outputs and node_code == 0 else 1)


if __name__ == "__main__":
    sys.exit(main())
