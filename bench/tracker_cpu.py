"""Per-frame cost of StreamingTracker on CPU, split by part, for 1 / 4 / 8 objects, against Meta's video predictor.

    .venv/bin/python -m bench.tracker_cpu [--sizes 1024 512] [--objects 1 4 8] [--frames 8] [--timed 3] [--quick]

Both sides get the same generated frames (JPEG quality 100, already at the model size), the same random weights
(Meta's tiny config) and one click per object on frame 0. The first frames fill the memory bank; the last `timed`
frames are averaged (so memory attention reads min(frames-1, 6) past frames + the prompted one). The reference is
the test oracle (test/oracle.py, PyPI `sam2`). Writes bench/out/tracker_cpu.json and .md.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import Report, description, load_test_module, parse_args, time_parts
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker

PARTS = ("encode_image", "attend_memory", "decode", "encode_memory")


def clicks(n: int, size: int) -> list[list[float]]:
    """One click per object on a grid."""
    side = int(np.ceil(np.sqrt(n)))
    return [[size * (0.5 + i % side) / side, size * (0.5 + i // side) / side] for i in range(n)]


def run_ours(model, frames, n_obj: int, timed: int) -> dict:
    backend = TorchBackend(model)
    spent = time_parts(backend, PARTS)
    tracker = StreamingTracker(backend)
    size = frames[0].shape[0]
    tracker.track(frames[0], 0)
    for i, xy in enumerate(clicks(n_obj, size)):
        tracker.add_prompt(i + 1, points=[xy], labels=[1])
    rows = []
    for f in range(1, len(frames)):
        spent.update(dict.fromkeys(PARTS, 0.0))
        start = time.perf_counter()
        tracker.track(frames[f], f)
        rows.append({**spent, "total": time.perf_counter() - start})
    return {k: float(np.mean([r[k] for r in rows[-timed:]])) for k in rows[0]}


def run_reference(reference, folder: str, n_frames: int, n_obj: int, timed: int) -> float:
    import sam2.sam2_video_predictor as meta_video
    import sam2.utils.misc as meta_misc

    meta_video.tqdm = meta_misc.tqdm = lambda iterable, **_: iterable
    size = reference.image_size
    with torch.inference_mode():
        state = reference.init_state(folder)
        for i, xy in enumerate(clicks(n_obj, size)):
            reference.add_new_points_or_box(state, 0, i + 1, points=[xy], labels=[1])
        list(reference.propagate_in_video(state, start_frame_idx=0, max_frame_num_to_track=0))
        spent = []
        for f in range(1, n_frames):
            start = time.perf_counter()
            list(reference.propagate_in_video(state, start_frame_idx=f, max_frame_num_to_track=0))
            spent.append(time.perf_counter() - start)
    return float(np.mean(spent[-timed:]))


def main() -> None:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--frames", type=int, default=8, help="frames per run (frame 0 is the prompted one)")
    parser.add_argument("--timed", type=int, default=3, help="last frames averaged")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip Meta's predictor")
    args = parse_args(parser, quick={"sizes": [256], "objects": [1, 2], "frames": 3, "timed": 1})
    torch.set_num_threads(args.threads)
    oracle, make_video = load_test_module("oracle"), load_test_module("oracle_backend").make_video
    rep = Report("tracker_cpu", "StreamingTracker on CPU vs Meta's video predictor (seconds per tracked frame)")
    rep.print(f"{args.threads} threads, sam2.1_hiera_t, random weights, {args.frames} frames, mean of the last "
              f"{args.timed}", "")
    rep.table("image", "objects", "encoder", "memory attention", "decoder", "memory encoder", "total ours",
              "reference", "reference / ours")
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            frames = make_video(tmp, args.frames, size)
            reference = oracle.build_reference("sam2.1_hiera_t", image_size=size)
            ckpt = oracle.save_meta_checkpoint(reference, Path(tmp) / "ref.pt")
            model = build_sam2("sam2.1_hiera_t", checkpoint=ckpt, image_size=size)
            for n_obj in args.objects:
                with torch.inference_mode():
                    ours = run_ours(model, frames, n_obj, args.timed)
                ref = float("nan") if args.no_reference else run_reference(reference, tmp, args.frames, n_obj,
                                                                           args.timed)
                rows.append({"image_size": size, "objects": n_obj, **{f"{k}_s": v for k, v in ours.items()},
                             "reference_s": ref})
                rep.row(size, n_obj, *(f"{ours[p]:.3f}" for p in PARTS), f"{ours['total']:.3f}", f"{ref:.3f}",
                        f"{ref / ours['total']:.2f}")
    rep.data.update(args=vars(args), rows=rows)
    rep.write()


if __name__ == "__main__":
    main()
