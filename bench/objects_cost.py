"""Per-frame cost of detector-driven tracking's bookkeeping (sam2_ros.objects), without the model: checking a
detection array, matching it to the objects, and updating every object's status (goal: < 1 ms for 16 x 50).

Each frame: N objects drift a little; the detector reports each (jittered, about a third of them on LOST objects'
last boxes) plus M - N other boxes (half of another class, half unmatched and over max_objects = N); a quarter of the
objects are occluded in turns, so TRACKED / OCCLUDED / LOST / FOUND / REACQUIRED transitions keep happening.
Timed per frame: expire + update + parse_detections + plan_detections (issue 24: Hungarian assignment on mask and
motion-predicted boxes, correction decisions, re-acquisition scores) + commits (apply_action for re-acquisitions,
corrected for corrections, commit: confirmations, motion filters, unconfirmed counts) + columns.
Wall time (perf_counter) and the thread's CPU time (thread_time: without the time other processes took the core).
Separately: mask_boxes (the mask -> box step of track_frame) for N masks of the image size, wall time.

    .venv/bin/python -m bench.objects_cost [--sizes 16x50 1x5 4x10 64x200] [--frames 3000] [--image 480x640] [--quick]

Writes bench/out/objects_cost.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import Report, description, parse_args
from sam2_ros.objects import EventKind, ObjectOptions, ObjectRegistry, RawDetection, mask_boxes, parse_detections


def scenario(n: int, m: int, frames: int, size: tuple[int, int], seed: int = 0):
    """Pre-built inputs per frame (so only the bookkeeping is timed): raw detections, presence [N], boxes [N, 4]."""
    rng = np.random.default_rng(seed)
    height, width = size
    centres = rng.uniform([40, 40], [width - 40, height - 40], (n, 2))
    half = rng.uniform(10, 35, (n, 2))
    others = rng.uniform([0, 0], [width - 60, height - 60], (m - n, 2))
    for t in range(frames):
        moved = centres + 8 * np.sin(0.05 * t + np.arange(n))[:, None]  # [N, 2] drift
        boxes = np.concatenate([moved - half, moved + half], axis=1)  # [N, 4]
        occluded = (np.arange(n) + t // 20) % 4 == 0  # each object hidden 20 frames out of 80
        presence = np.where(occluded, 0.1, 0.9)
        boxes[occluded] = np.nan
        raw = [RawDetection(*(moved[k] + rng.normal(0, 1.5, 2)), *(2 * half[k]), 0.0, (("thing", 0.9),))
               for k in range(n)]
        raw += [RawDetection(x + 30, y + 30, 50.0, 40.0, 0.1 * (j % 3),
                             (("other" if j % 2 else "thing", 0.6 + 0.3 * rng.random()),))
                for j, (x, y) in enumerate(others)]
        yield raw, presence, boxes


def measure(n: int, m: int, frames: int, size: tuple[int, int]) -> dict[str, float]:
    """Median / p99 microseconds per frame and the transitions seen."""
    options = ObjectOptions(detection_classes=("thing",), lost_after=15, max_objects=n, remove_lost_after=0.0)
    registry = ObjectRegistry(options)
    ids = list(range(1, n + 1))
    inputs = list(scenario(n, m, frames, size))
    for k, object_id in enumerate(ids):
        registry.add(object_id, 0.0, "thing", 0.9, box=inputs[0][2][k])
        registry._objects[object_id] = registry.get(object_id).__class__(  # detector-made: every rule applies
            **{**registry.get(object_id).__dict__, "by_detector": True})
    times, cpu, kinds = [], [], []
    for t, (raw, presence, boxes) in enumerate(inputs):
        stamp = t / 30
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        events = registry.expire(stamp)
        events += registry.update(stamp, ids, presence, boxes)
        plan = registry.plan_detections(parse_detections(raw, size), stamp)
        for action in plan.reacquired:  # what apply_detections commits once the tracker took the box
            event = registry.apply_action(action, stamp)
            if event is not None:
                events.append(event)
        for action in plan.corrections:
            registry.corrected(action, stamp, action.box)
        events += registry.commit(plan, stamp)
        registry.columns(ids)
        times.append(time.perf_counter_ns() - start)
        cpu.append(time.thread_time_ns() - start_cpu)
        kinds += [e.kind for e in events]
    warm = np.array(times[100:]) / 1e3  # microseconds, after warm-up
    warm_cpu = np.array(cpu[100:]) / 1e3
    return dict(median=float(np.median(warm)), p99=float(np.percentile(warm, 99)), mean=float(warm.mean()),
                cpu_median=float(np.median(warm_cpu)), cpu_p99=float(np.percentile(warm_cpu, 99)),
                lost=kinds.count(EventKind.LOST), found=kinds.count(EventKind.FOUND),
                reacquired=kinds.count(EventKind.REACQUIRED))


def mask_box_cost(n: int, size: tuple[int, int], repeats: int = 200) -> tuple[float, float]:
    """Median / p99 microseconds of mask_boxes on N random masks of the image size."""
    rng = np.random.default_rng(1)
    masks = np.zeros((n, *size), bool)
    for k in range(n):
        y, x = rng.integers(0, size[0] - 50), rng.integers(0, size[1] - 50)
        masks[k, y:y + 50, x:x + 50] = True
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        mask_boxes(masks)
        times.append(time.perf_counter_ns() - start)
    warm = np.array(times[10:]) / 1e3
    return float(np.median(warm)), float(np.percentile(warm, 99))


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--sizes", nargs="+", default=["16x50", "1x5", "4x10", "64x200"],
                        help="objects x detections per frame")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--image", default="480x640", help="H x W (for clipping and mask_boxes)")
    args = parse_args(parser, quick={"sizes": ["16x50", "1x5"], "frames": 300})
    size = tuple(int(v) for v in args.image.split("x"))
    rep = Report("objects_cost", "Detector-driven tracking's bookkeeping per frame (sam2_ros.objects)")
    rep.print(f"{args.frames} frames, image {size[1]}x{size[0]}", "")
    rep.table("objects x detections", "median", "p99", "mean", "thread CPU median / p99",
              "LOST / FOUND / REACQUIRED events", "mask_boxes median / p99")
    rows = []
    for spec in args.sizes:
        n, m = (int(v) for v in spec.split("x"))
        r = measure(n, m, args.frames, size)
        mb = mask_box_cost(n, size)
        rows.append({"objects": n, "detections": m, **{f"{k}_us" if isinstance(v, float) else k: v
                                                        for k, v in r.items()},
                     "mask_boxes_median_us": mb[0], "mask_boxes_p99_us": mb[1]})
        rep.row(f"{n} x {m}", f"{r['median'] / 1e3:.3f} ms", f"{r['p99'] / 1e3:.3f} ms", f"{r['mean'] / 1e3:.3f} ms",
                f"{r['cpu_median'] / 1e3:.3f} / {r['cpu_p99'] / 1e3:.3f} ms",
                f"{r['lost']} / {r['found']} / {r['reacquired']}", f"{mb[0] / 1e3:.3f} / {mb[1] / 1e3:.3f} ms")
    rep.data.update(args=vars(args), rows=rows)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
