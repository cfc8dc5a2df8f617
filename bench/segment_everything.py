"""Cost and quality of segment everything (sam2_ros.tracking.everything) on CPU.

    .venv/bin/python -m bench.segment_everything [--configs micro tiny] [--grids 16 32] [--runs 5] [--quality]
        [--sweep] [--quick]

Cost: the demo scene (640x480, 4 shapes), from an RGB image (image encoder included) and from a tracker's history
frame (no encoder), split into encoder / decoder / the rest (filtering, suppression, upsampling the survivors).
micro = the shipped models/sam2_micro.pt at 256; tiny = sam2.1_hiera_t at 1024 with random weights (speed does not
depend on the weights; random weights pass almost no candidate, so its "rest" is a lower bound). Wall time is the
minimum over runs (the machine is shared), CPU time is the process's (all threads) for the same run.
--quality: the micro model (each grid of --grids) on 80 frames of 3- and 4-shape scenes (seeds 0-7, frames 0-80
step 20): shapes found at J >= 0.7, shapes returned twice, masks matching no shape, frames where every shape is
found exactly once.
--sweep: threshold / suppression settings on 24 frames of 4-shape scenes (how the defaults were chosen).
Writes bench/out/segment_everything.json and .md (all the parts that ran).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import MICRO_CHECKPOINT as CHECKPOINT
from bench.common import Report, description, parse_args, time_parts
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.sim import SyntheticScene, jaccard
from sam2_ros.tracking import StreamingTracker, segment_everything


def build(name: str) -> tuple[TorchBackend, dict[str, float]]:
    """The backend of micro@256 or tiny@1024, and its table of encoder / decoder seconds."""
    backend = TorchBackend(build_sam2("sam2_micro", checkpoint=CHECKPOINT) if name == "micro"
                           else build_sam2("sam2.1_hiera_t", image_size=1024))
    return backend, time_parts(backend, ("encode_image", "decode"))


def timed(spent: dict[str, float], runs: int, call) -> dict:
    """Best-of-runs wall time of call() with its parts, and the process CPU time of that run."""
    best = None
    for _ in range(runs):
        spent.update(dict.fromkeys(spent, 0.0))
        cpu, start = time.process_time(), time.perf_counter()
        found = call()
        row = {"total": time.perf_counter() - start, "cpu": time.process_time() - cpu, **spent,
               "masks": len(found)}
        if best is None or row["total"] < best["total"]:
            best = row
    best["rest"] = best["total"] - best["encode_image"] - best["decode"]
    return best


def cost(rep: Report, configs: list[str], grids: list[int], runs: int, batch: int | None) -> None:
    rgb = SyntheticScene(480, 640, num_objects=4, seed=0).frame(80).rgb
    rep.print(f"{torch.get_num_threads()} threads, best of {runs}, points_per_batch {batch or 'default'}", "")
    rep.table("model", "grid", "input", "total wall", "encoder", "decoder", "rest", "CPU time (all threads)", "masks")
    rows = rep.data.setdefault("cost", [])
    for name in configs:
        backend, spent = build(name)
        tracker = StreamingTracker(backend)
        tracker.track(rgb, stamp=0)
        label = "micro@256 (trained)" if name == "micro" else "sam2.1_hiera_t@1024 (random)"
        with torch.inference_mode():
            for grid in grids:
                for source, call in (("RGB image", lambda: segment_everything(backend, rgb, points_per_side=grid,
                                                                              points_per_batch=batch)),
                                     ("history frame", lambda: segment_everything(tracker, 0, points_per_side=grid,
                                                                                  points_per_batch=batch))):
                    r = timed(spent, runs, call)
                    rows.append({"model": label, "grid": grid, "input": source, **r})
                    rep.row(label, f"{grid}x{grid}", source, f"**{r['total']:.3f} s**", f"{r['encode_image']:.3f}",
                            f"{r['decode']:.3f}", f"{r['rest']:.3f}", f"{r['cpu']:.3f} s", r["masks"])


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


def quality(rep: Report, grid: int, seeds: int) -> None:
    """The micro model with default thresholds on frames 0-80 step 20 of 3- and 4-shape scenes (seeds 0..seeds-1)."""
    t = score(build_sam2("sam2_micro", checkpoint=CHECKPOINT), scene_frames((3, 4), range(seeds), range(0, 100, 20)),
              points_per_side=grid)
    rep.data.setdefault("quality", []).append({"grid": grid, **t})
    rep.print("", f"micro@256, {grid}x{grid}, default thresholds: {t['frames']} frames, {t['shapes']} visible shapes; "
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


def sweep(rep: Report, seeds: int) -> None:
    """How the thresholds were chosen: 24 frames of 4-shape scenes (seeds 0-7, frames 0, 25, 50), 16x16 grid."""
    model = build_sam2("sam2_micro", checkpoint=CHECKPOINT)
    frames = scene_frames((4,), range(seeds), range(0, 75, 25))
    rep.print("")
    rep.table("min IoU", "min stability", "NMS IoU", "containment", "found at J >= 0.7", "returned twice",
              "masks matching no shape", "masks")
    for min_iou, min_stability, nms_iou, containment in SWEEP:
        t = score(model, frames, min_iou=min_iou, min_stability=min_stability, nms_iou=nms_iou,
                  containment=containment)
        rep.data.setdefault("sweep", []).append({"min_iou": min_iou, "min_stability": min_stability,
                                                 "nms_iou": nms_iou, "containment": containment, **t})
        rep.row(min_iou, min_stability, nms_iou, containment or "off", f"{t['found']} of {t['shapes']}", t["twice"],
                t["unmatched"], t["masks"])


def main() -> None:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--configs", nargs="+", default=["micro", "tiny"], choices=["micro", "tiny"])
    parser.add_argument("--grids", type=int, nargs="+", default=[16])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="points_per_batch (default: segment_everything's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared machine 2 threads spin)")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="thresholds on 24 frames (how the defaults were chosen)")
    parser.add_argument("--seeds", type=int, default=8, help="scene seeds of --quality and --sweep (0..seeds-1)")
    args = parse_args(parser, quick={"configs": ["micro"], "grids": [8], "runs": 1, "seeds": 1})
    torch.set_num_threads(args.threads)
    rep = Report("segment_everything", "Segment everything on CPU")
    if args.runs:
        cost(rep, args.configs, args.grids, args.runs, args.batch)
    if args.quality:
        for grid in args.grids:
            quality(rep, grid, args.seeds)
    if args.sweep:
        sweep(rep, args.seeds)
    rep.data["args"] = vars(args)
    rep.write()


if __name__ == "__main__":
    main()
