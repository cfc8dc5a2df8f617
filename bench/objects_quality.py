"""Detector-driven tracking with the shipped micro model on the synthetic camera, without ROS: objects created per
shape, duplicates, labels and mean J over a run, for several scene seeds and shape counts (and, with --hide, a shape
out of view for 40 frames: LOST then FOUND / REACQUIRED, or a duplicate).

    .venv/bin/python -m bench.objects_quality [--seeds 0 1 2 3 4 5] [--shapes 3 4] [--frames 40] [--hide] [--quick]
    .venv/bin/python -m bench.objects_quality --scenes   # id switches / duplicates on the sim.scripted scenes

Writes bench/out/objects_quality.json and .md (with --hide: objects_quality_hide.json and .md).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from bench.common import MICRO_CHECKPOINT, Report, description, parse_args
from sam2_ros.model.build import build_sam2
from sam2_ros.sim import HiddenShapeScene, SyntheticDetector, SyntheticScene, pick_hide_window, run_synthetic
from sam2_ros.tracking import StreamingTracker


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--shapes", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="240x320", help="H x W of the synthetic camera")
    parser.add_argument("--hide", action="store_true", help="hide shape 1 for 40 frames (window by pick_hide_window)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scenes", action="store_true", help="the scripted permanence scenes instead")
    args = parse_args(parser, quick={"seeds": [0], "shapes": [3], "frames": 10})
    torch.set_num_threads(args.threads)
    if args.scenes:
        return scenes()
    height, width = (int(v) for v in args.size.split("x"))
    model = build_sam2("sam2_micro", checkpoint=MICRO_CHECKPOINT).eval()
    rep = Report("objects_quality" + ("_hide" if args.hide else ""),
                 "Detector-driven tracking on the synthetic camera (micro model, no ROS)")
    rep.table("seed", "shapes", "objects", "duplicates", "labels right", "mean J", "events")
    all_j, rows = [], []
    for shapes in args.shapes:
        for seed in args.seeds:
            scene = SyntheticScene(height, width, num_objects=shapes, seed=seed)
            camera, frames, note = scene, args.frames, ""
            if args.hide:
                start, iou = pick_hide_window(scene, 1, frames=40, starts=range(5, 60))
                camera, frames = HiddenShapeScene(scene, {1: range(start, start + 40)}), start + 45
                note = f" (shape 1 hidden {start}..{start + 39}, box IoU {iou:.2f})"
            detector = SyntheticDetector(seed=seed)
            run = run_synthetic(StreamingTracker(model), camera, detector, frames)
            made = list(run.truth.values())
            duplicates = len(made) - len(set(made))
            right = sum(run.registry.get(o).label == detector.class_of(s) for o, s in run.truth.items()
                        if o in run.registry)
            events = ", ".join(f"{i}:{e.kind.name}({e.object_id})" for i, e in run.events if e.kind.name != "ADDED")
            all_j.append(run.mean_j)
            rows.append({"seed": seed, "shapes": shapes, "objects": len(run.truth), "duplicates": duplicates,
                         "labels_right": right, "mean_j": run.mean_j, "events": events, "note": note})
            rep.row(seed, shapes, len(run.truth), duplicates, f"{right}/{len(run.truth)}", f"{run.mean_j:.3f}",
                    f"{events or '-'}{note}")
    rep.print("", f"mean J over the runs: {np.mean(all_j):.3f}")
    rep.data.update(args=vars(args), rows=rows, mean_j=float(np.mean(all_j)))
    rep.write()
    return 0


def scenes() -> int:
    """Id switches (against the ground truth per frame), duplicates and events on the scripted scenes."""
    from sam2_ros.sim import crossing, leave_and_return

    model = build_sam2("sam2_micro", checkpoint=MICRO_CHECKPOINT).eval()
    rep = Report("objects_quality_scenes", "Object permanence on the scripted scenes (micro model, no ROS)")
    rep.table("scene", "detector", "frames", "id switches", "duplicates", "corrections", "mean J",
              "events (not ADDED)")
    rows = []
    for name, scene, kw in [("ball leaves 40 frames, back same side", leave_and_return("same"), {}),
                            ("ball leaves 40 frames, back opposite side", leave_and_return("opposite"), {}),
                            ("two cups crossing", crossing(), {}),
                            ("ball, same side", leave_and_return("same"), dict(detect_every=3, lag=1)),
                            ("two cups crossing", crossing(), dict(detect_every=3, lag=1))]:
        run = run_synthetic(StreamingTracker(model), scene, SyntheticDetector(class_names=scene.labels),
                            scene.frames, **kw)
        events = ", ".join(f"{i}:{e.kind.name}({e.object_id})" for i, e in run.events if e.kind.name != "ADDED")
        rate = "every frame" if not kw else "every 3rd frame, 1 frame late"
        rows.append({"scene": name, "detector": rate, "frames": scene.frames, "switches": run.identity.switches,
                     "duplicates": run.duplicates, "corrections": run.registry.corrections, "mean_j": run.mean_j,
                     "events": events})
        rep.row(name, rate, scene.frames, run.identity.switches, run.duplicates, run.registry.corrections,
                f"{run.mean_j:.3f}", events or "-")
    rep.data.update(rows=rows)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
