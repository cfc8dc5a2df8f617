"""EdgeTAM vs SAM 2.1 tiny per tracked frame on CPU (torch and ONNX Runtime), and memory-bank bytes per object.

Usage: .venv/bin/python -m bench.edgetam_cpu [--sizes 1024 512] [--objects 1 8] [--backends torch onnxruntime]
       [--frames 9] [--timed 2] [--threads 2] [--quick]   (writes bench/out/edgetam_cpu.json and .md)
Random weights (seeded; speed does not depend on them), the same generated frames for both models, one click per
object on frame 0, then tracking: from frame 7 on the bank is full (the prompted frame + 6 previous frames), and
the last `timed` frames are averaged. For every (size, backend, objects) the reference (sam2.1_hiera_t) and
EdgeTAM run in the same process, alternating frame by frame, so both see the same machine load; wall and CPU time
are reported, and `uptime` after each row. ONNX exports are cached under --cache (the first run exports each model once).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time

import numpy as np
import torch

from bench.common import OUT, Report, description, load_test_module, parse_args
from sam2_ros.backends.factory import create_backend
from sam2_ros.tracking import StreamingTracker
from sam2_ros.tracking.state import tensor_bytes

MODELS = ("sam2.1_hiera_t", "edgetam")


def clicks(n: int, size: int) -> list[list[float]]:
    """One click per object on a grid."""
    side = int(np.ceil(np.sqrt(n)))
    return [[size * (0.5 + i % side) / side, size * (0.5 + i // side) / side] for i in range(n)]


def bank_bytes(tracker: StreamingTracker) -> tuple[float, float]:
    """(spatial memories, everything the object holds: memories, pointers, masks) in bytes per object."""
    objects = list(tracker._objects.values())
    maskmems = [m.maskmem for o in objects for m in [*o.recent.values(), *o.cond.values()] if m.maskmem is not None]
    spatial = sum(t.numel() * t.element_size() for t in maskmems)
    return spatial / len(objects), tensor_bytes(objects) / len(objects)


def cpu_seconds() -> float:
    """CPU time of this process (all threads): less sensitive than wall time to other jobs on shared cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(backends: dict, frames: list, n_obj: int, timed: int) -> dict:
    """Per model: wall and CPU seconds per tracked frame (mean of the last `timed`) and the bank's bytes per object.
    The models alternate frame by frame (A, B, A, B, ...), so slow phases of the shared machine hit both."""
    trackers = {m: StreamingTracker(b) for m, b in backends.items()}
    size = frames[0].shape[0]
    for tracker in trackers.values():
        tracker.track(frames[0], 0)
        for i, xy in enumerate(clicks(n_obj, size)):
            tracker.add_prompt(i + 1, points=[xy], labels=[1])
    wall: dict = {m: [] for m in trackers}
    cpu: dict = {m: [] for m in trackers}
    for f in range(1, len(frames)):
        for m, tracker in trackers.items():
            start, start_cpu = time.perf_counter(), cpu_seconds()
            tracker.track(frames[f], f)
            wall[m].append(time.perf_counter() - start)
            cpu[m].append(cpu_seconds() - start_cpu)
    out = {}
    for m, tracker in trackers.items():
        spatial, whole = bank_bytes(tracker)
        out[m] = {"s_per_frame": float(np.mean(wall[m][-timed:])), "cpu_s_per_frame": float(np.mean(cpu[m][-timed:])),
                  "bank_spatial_bytes_per_object": spatial, "bank_total_bytes_per_object": whole}
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--frames", type=int, default=9, help="frames per run (frame 0 is the prompted one)")
    parser.add_argument("--timed", type=int, default=2, help="last frames averaged")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(OUT / "cache"))
    args = parse_args(parser, quick={"sizes": [256], "objects": [1], "backends": ["torch"], "frames": 3, "timed": 1})
    torch.set_num_threads(args.threads)
    make_video = load_test_module("oracle_backend").make_video
    rep = Report("edgetam_cpu", "EdgeTAM vs sam2.1_hiera_t per tracked frame on the CPU")
    print = rep.print  # every line below goes to the .md too

    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, random weights, "
          f"{args.frames} frames, mean of the last {args.timed}; start: {uptime()}")
    print("| image | backend | objects | sam2.1_hiera_t s/frame | edgetam s/frame | speed-up | CPU s/frame (t / "
          "edgetam) | CPU speed-up | spatial memory per object (t / edgetam) | object state per object (t / edgetam) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    with torch.inference_mode():
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                frames = make_video(tmp, args.frames, size)
            for name in args.backends:
                backends = {m: create_backend(name, m, image_size=size, device="cpu", cache_dir=args.cache,
                                              threads=args.threads) for m in MODELS}
                for n_obj in args.objects:
                    result = run(backends, frames, n_obj, args.timed)
                    t, e = result["sam2.1_hiera_t"], result["edgetam"]
                    row = {"image_size": size, "backend": name, "objects": n_obj, "load": uptime(), **{
                        f"{m}_{k}": v for m in MODELS for k, v in result[m].items()}}
                    rows.append(row)
                    print(f"| {size} | {name} | {n_obj} | {t['s_per_frame']:.3f} | {e['s_per_frame']:.3f} | "
                          f"{t['s_per_frame'] / e['s_per_frame']:.2f}x | "
                          f"{t['cpu_s_per_frame']:.3f} / {e['cpu_s_per_frame']:.3f} | "
                          f"{t['cpu_s_per_frame'] / e['cpu_s_per_frame']:.2f}x | "
                          f"{t['bank_spatial_bytes_per_object'] / 2**20:.2f} / "
                          f"{e['bank_spatial_bytes_per_object'] / 2**20:.2f} MiB | "
                          f"{t['bank_total_bytes_per_object'] / 2**20:.2f} / "
                          f"{e['bank_total_bytes_per_object'] / 2**20:.2f} MiB |")
    print(f"end: {uptime()}")
    rep.data.update(rows=rows, threads=args.threads, frames=args.frames, timed=args.timed)
    rep.write()


if __name__ == "__main__":
    main()
