"""Cost and quality of segment everything (sam2_ros.tracking.everything) on CPU.

Usage: .venv/bin/python bench/segment_everything.py [--configs micro tiny] [--grids 16 32] [--runs 5] [--quality]
Cost: the demo scene (640x480, 4 shapes), from an RGB image (image encoder included) and from a tracker's history
frame (no encoder), split into encoder / decoder / the rest (filtering, suppression, upsampling the survivors).
micro = the shipped models/sam2_micro.pt at 256; tiny = sam2.1_hiera_t at 1024 with random weights (speed does not
depend on the weights; random weights pass almost no candidate, so its "rest" is a lower bound). Wall time is the
minimum over runs (the machine is shared), CPU time is the process's (all threads) for the same run.
--quality: the micro model (each grid of --grids) on 80 frames of 3- and 4-shape scenes (seeds 0-7, frames 0-80
step 20): shapes found at J >= 0.7, shapes returned twice, masks matching no shape, frames where every shape is
found exactly once.
--sweep: threshold / suppression settings on 24 frames of 4-shape scenes (how the defaults were chosen).
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
from sam2_ros.sim import SyntheticScene, jaccard  # noqa: E402
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
          f"{os.getloadavg()[0]:.1f}, best of {runs}, points_per_batch {batch or 'default'}")
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


def score(model, frames: list, **kwargs) -> dict:
    """Segment each frame; count visible shapes (>= 0.5 % of the image), shapes found at J >= 0.7, shapes returned
    twice (a second mask at J >= 0.5), masks matching no shape (J < 0.5 with all), and perfect frames."""
    tally = dict.fromkeys(("frames", "shapes", "found", "twice", "unmatched", "masks", "perfect"), 0)
    for frame in frames:
        result = segment_everything(model, frame.rgb, **kwargs)
        visible = [m for m in frame.masks if m.sum() >= 0.005 * m.size]
        j = np.array([[jaccard(a, m) for m in visible] for a in result.masks]).reshape(len(result), len(visible))
        hits = (j.max(axis=0) >= 0.7) if len(result) else np.zeros(len(visible), bool)
        dups = int(np.maximum((j >= 0.5).sum(axis=0) - 1, 0).sum())
        unmatched = int((j.max(axis=1) < 0.5).sum()) if len(visible) else len(result)
        tally["frames"] += 1
        tally["shapes"] += len(visible)
        tally["found"] += int(hits.sum())
        tally["twice"] += dups
        tally["unmatched"] += unmatched
        tally["masks"] += len(result)
        tally["perfect"] += bool(hits.all() and dups == 0 and unmatched == 0)
    return tally


def scene_frames(objects: tuple[int, ...], seeds: range, indices: range) -> list:
    return [SyntheticScene(480, 640, num_objects=n, seed=s).frame(i) for n in objects for s in seeds for i in indices]


def quality(grid: int) -> None:
    """The micro model with default thresholds on 80 frames of 3- and 4-shape scenes."""
    t = score(build_sam2("sam2_micro", checkpoint=CHECKPOINT), scene_frames((3, 4), range(8), range(0, 100, 20)),
              points_per_side=grid)
    print(f"micro@256, {grid}x{grid}, default thresholds: {t['frames']} frames, {t['shapes']} visible shapes; "
          f"found at J >= 0.7: {t['found']} ({t['found'] / t['shapes']:.0%}); returned twice: {t['twice']}; "
          f"masks matching no shape (J < 0.5): {t['unmatched']}; frames with every shape found once and nothing "
          f"else: {t['perfect']} ({t['perfect'] / t['frames']:.0%})")


SWEEP = [  # (min_iou, min_stability, nms_iou, containment)
    (0.88, 0.95, 0.7, None),  # SAM's automatic mask generator
    (0.8, 0.95, 0.7, None),  # SAM 2's
    (0.6, 0.6, 0.7, None),
    (0.6, 0.6, 0.5, None),
    (0.6, 0.6, 0.5, 0.7),  # the defaults
    (0.5, 0.5, 0.5, 0.7),
    (0.4, 0.6, 0.5, 0.7),
    (0.6, 0.6, 0.5, 0.9),
]


def sweep() -> None:
    """How the thresholds were chosen: 24 frames of 4-shape scenes (seeds 0-7, frames 0, 25, 50), 16x16 grid."""
    model = build_sam2("sam2_micro", checkpoint=CHECKPOINT)
    frames = scene_frames((4,), range(8), range(0, 75, 25))
    print("| min IoU | min stability | NMS IoU | containment | found at J >= 0.7 | returned twice | "
          "masks matching no shape | masks |")
    print("|---|---|---|---|---|---|---|---|")
    for min_iou, min_stability, nms_iou, containment in SWEEP:
        t = score(model, frames, min_iou=min_iou, min_stability=min_stability, nms_iou=nms_iou,
                  containment=containment)
        print(f"| {min_iou} | {min_stability} | {nms_iou} | {containment or 'off'} | {t['found']} of {t['shapes']} | "
              f"{t['twice']} | {t['unmatched']} | {t['masks']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["micro", "tiny"], choices=["micro", "tiny"])
    parser.add_argument("--grids", type=int, nargs="+", default=[16])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="points_per_batch (default: segment_everything's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared machine 2 threads spin)")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="thresholds on 24 frames (how the defaults were chosen)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.runs:
        cost(args.configs, args.grids, args.runs, args.batch)
    if args.quality:
        for grid in args.grids:
            quality(grid)
    if args.sweep:
        sweep()


if __name__ == "__main__":
    main()
