"""Cost and quality of segment everything (sam2_ros.tracking.everything) on CPU.

Usage: .venv/bin/python bench/segment_everything.py [--configs micro tiny] [--grids 16 32] [--runs 5] [--quality]
Cost: the demo scene (640x480, 4 shapes), from an RGB image (image encoder included) and from a tracker's history
frame (no encoder), split into encoder / decoder / the rest (filtering, suppression, upsampling the survivors).
micro = the shipped models/sam2_micro.pt at 256; tiny = sam2.1_hiera_t at 1024 with random weights (speed does not
depend on the weights; random weights pass almost no candidate, so its "rest" is a lower bound). Wall time is the
minimum over runs (the machine is shared), CPU time is the process's (all threads) for the same run.
--quality: the micro model on 80 frames of 3- and 4-shape scenes (seeds 0-7, frames 0-80 step 20): shapes found at
J >= 0.7, shapes returned twice, masks matching no shape, frames where every shape is found exactly once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from sam2_ros.backends.torch_backend import TorchBackend  # noqa: E402
from sam2_ros.model import build_sam2  # noqa: E402
from sam2_ros.synthetic import SyntheticScene, jaccard  # noqa: E402
from sam2_ros.tracking import StreamingTracker, segment_everything  # noqa: E402

CHECKPOINT = ROOT / "models" / "sam2_micro.pt"


class TimedBackend(TorchBackend):
    """TorchBackend adding the wall time of encode_image and decode to a table."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.spent = {"encode_image": 0.0, "decode": 0.0}

    def encode_image(self, *a):
        start = time.perf_counter()
        out = super().encode_image(*a)
        self.spent["encode_image"] += time.perf_counter() - start
        return out

    def decode(self, *a):
        start = time.perf_counter()
        out = super().decode(*a)
        self.spent["decode"] += time.perf_counter() - start
        return out


def build(name: str) -> TorchBackend:
    if name == "micro":
        return TimedBackend(build_sam2("sam2_micro", checkpoint=CHECKPOINT))
    return TimedBackend(build_sam2("sam2.1_hiera_t", image_size=1024))


def timed(backend: TimedBackend, runs: int, call) -> dict:
    """Best-of-runs wall time of call() with its parts, and the process CPU time of that run."""
    best = None
    for _ in range(runs):
        backend.spent = dict.fromkeys(backend.spent, 0.0)
        cpu, start = time.process_time(), time.perf_counter()
        found = call()
        row = {"total": time.perf_counter() - start, "cpu": time.process_time() - cpu, **backend.spent,
               "masks": len(found)}
        if best is None or row["total"] < best["total"]:
            best = row
    best["rest"] = best["total"] - best["encode_image"] - best["decode"]
    return best


def cost(configs: list[str], grids: list[int], runs: int, batch: int | None) -> None:
    rgb = SyntheticScene(480, 640, num_objects=4, seed=0).frame(80).rgb
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}, best of {runs}, points_per_batch {batch or "default"}")
    print("| model | grid | input | total wall | encoder | decoder | rest | CPU time (all threads) | masks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in configs:
        backend = build(name)
        tracker = StreamingTracker(backend)
        tracker.track(rgb, stamp=0)
        label = "micro@256 (trained)" if name == "micro" else "sam2.1_hiera_t@1024 (random)"
        with torch.inference_mode():
            for grid in grids:
                for source, call in (("RGB image", lambda: segment_everything(backend, rgb, points_per_side=grid,
                                                                              points_per_batch=batch)),
                                     ("history frame", lambda: segment_everything(tracker, 0, points_per_side=grid,
                                                                                  points_per_batch=batch))):
                    r = timed(backend, runs, call)
                    print(f"| {label} | {grid}x{grid} | {source} | **{r['total']:.3f} s** | {r['encode_image']:.3f} | "
                          f"{r['decode']:.3f} | {r['rest']:.3f} | {r['cpu']:.3f} s | {r['masks']} |", flush=True)


def quality() -> None:
    model = build_sam2("sam2_micro", checkpoint=CHECKPOINT)
    shapes = found = twice = unmatched = perfect = frames = 0
    for num_objects in (3, 4):
        for seed in range(8):
            scene = SyntheticScene(480, 640, num_objects=num_objects, seed=seed)
            for index in range(0, 100, 20):
                frame = scene.frame(index)
                result = segment_everything(model, frame.rgb)
                visible = [m for m in frame.masks if m.sum() >= 0.005 * m.size]
                j = np.array([[jaccard(a, m) for m in visible] for a in result.masks]).reshape(len(result),
                                                                                              len(visible))
                hits = (j.max(axis=0) >= 0.7) if len(result) else np.zeros(len(visible), bool)
                dups = int(np.maximum((j >= 0.5).sum(axis=0) - 1, 0).sum())
                shapes += len(visible)
                found += int(hits.sum())
                twice += dups
                unmatched += int((j.max(axis=1) < 0.5).sum()) if len(visible) else len(result)
                perfect += bool(hits.all() and dups == 0 and len(result) == len(visible))
                frames += 1
    print(f"micro@256, 16x16, defaults: {frames} frames, {shapes} visible shapes; found at J >= 0.7: {found} "
          f"({found / shapes:.0%}); returned twice: {twice}; masks matching no shape (J < 0.5): {unmatched}; "
          f"frames with every shape found once and nothing else: {perfect} ({perfect / frames:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["micro", "tiny"], choices=["micro", "tiny"])
    parser.add_argument("--grids", type=int, nargs="+", default=[16])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="points_per_batch (default: segment_everything's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared machine 2 threads spin)")
    parser.add_argument("--quality", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cost(args.configs, args.grids, args.runs, args.batch)
    if args.quality:
        quality()


if __name__ == "__main__":
    main()
