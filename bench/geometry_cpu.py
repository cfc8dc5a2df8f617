"""3-D extraction per frame on the CPU (issue 15): depth -> metres, then every object's points, centroid and box,
and the labelled point-cloud packing, at 640x480 with 1, 8 and 16 objects (goal <= 3 ms per frame for 8 objects).

Frames and masks come from the synthetic scene (its shapes are 12-25 % of the image height across, partly occluding
each other: realistic mask sizes), depth from its registered synthetic depth camera (noise, edges, dropouts), in
16UC1 at full resolution by default. Defaults of the node: erosion 2 px, MAD filter k = 3; voxel off and on.
Times are wall-clock per frame (median, p95) and the thread's CPU time (median), in one process, one thread.

    .venv/bin/python -m bench.geometry_cpu [--frames 20] [--repeats 5] [--voxel 0.01] [--encoding 16UC1] [--scale 1]
        [--quick]

Writes bench/out/geometry_cpu.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import Report, description, parse_args, stats
from sam2_ros.geometry import GeometryParams, depth_to_metres, extract_objects, pack_objects
from sam2_ros.sim import SyntheticDepthCamera, SyntheticScene


def bench(num_objects: int, voxel: float, args: argparse.Namespace) -> dict:
    """Time extraction and packing over `frames` frames x `repeats` passes; returns the figures."""
    scene = SyntheticScene(480, 640, num_objects=num_objects, seed=args.seed)
    camera = SyntheticDepthCamera(scene)
    frames = [scene.frame(i * 3) for i in range(args.frames)]
    depths = [camera.render(f, args.encoding, args.scale).depth for f in frames]
    params = GeometryParams(points_voxel=voxel)
    extract, cpu, pack, points, pixels = [], [], [], [], []
    for _ in range(args.repeats):
        for frame, raw in zip(frames, depths):
            c0, t0 = time.thread_time(), time.perf_counter()
            metres = depth_to_metres(raw, args.encoding)
            objects = extract_objects(frame.masks, frame.object_ids, metres, camera.intrinsics, params)
            t1, c1 = time.perf_counter(), time.thread_time()
            cloud = pack_objects(objects)
            t2 = time.perf_counter()
            extract.append(t1 - t0)
            cpu.append(c1 - c0)
            pack.append(t2 - t1)
            points.append(cloud.width)
            pixels.append(frame.masks.sum() / max(num_objects, 1))
    extract, cpu, pack = stats(extract, 1e3), stats(cpu, 1e3), stats(pack, 1e3)
    return dict(objects=num_objects, voxel=voxel, extract_median_ms=extract["median"], extract_p95_ms=extract["p95"],
                extract_cpu_median_ms=cpu["median"], pack_median_ms=pack["median"], pack_p95_ms=pack["p95"],
                points_per_frame=float(np.mean(points)), visible_pixels_per_object=float(np.mean(pixels)))


def voxel_text(voxel: float) -> str:
    """'off' or the voxel edge in cm."""
    return "off" if voxel == 0 else f"{voxel * 100:g} cm"


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--voxel", type=float, default=0.01, help="points_voxel (m) of the 'voxel on' rows")
    parser.add_argument("--encoding", default="16UC1", choices=["16UC1", "32FC1"])
    parser.add_argument("--scale", type=float, default=1.0, help="depth resolution / colour resolution")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, quick={"frames": 3, "repeats": 1, "objects": [1, 8]})
    rep = Report("geometry_cpu", "3-D extraction per frame on the CPU")
    rep.print(f"640x480 colour, depth {args.encoding} x{args.scale}, erosion 2 px, MAD k 3, "
              f"{args.frames} frames x {args.repeats}", "")
    rep.table("objects", "voxel", "visible px / object", "points / frame", "extract median", "p95", "CPU median",
              "pack median", "p95")
    rows = []
    for n in args.objects:
        for v in (0.0, args.voxel):
            r = bench(n, v, args)
            rows.append(r)
            rep.row(r["objects"], voxel_text(r["voxel"]), f"{r['visible_pixels_per_object']:.0f}",
                    f"{r['points_per_frame']:.0f}", *(f"{r[k]:.2f} ms" for k in (
                        "extract_median_ms", "extract_p95_ms", "extract_cpu_median_ms", "pack_median_ms",
                        "pack_p95_ms")))
    rep.data.update(args=vars(args), rows=rows)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
