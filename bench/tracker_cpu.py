"""Per-frame cost of StreamingTracker on CPU, split by part, for 1 / 4 / 8 objects, against Meta's video predictor.

Usage: .venv/bin/python bench/tracker_cpu.py [--sizes 1024 512] [--objects 1 4 8] [--frames 8] [--timed 3]
Both sides get the same generated frames (JPEG quality 100, already at the model size), the same random weights
(Meta's tiny config) and one click per object on frame 0. The first frames fill the memory bank; the last `timed`
frames are averaged (so memory attention reads min(frames-1, 6) past frames + the prompted one).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test")]

from sam2_ros.backends.torch_backend import TorchBackend  # noqa: E402
from sam2_ros.model import build_sam2  # noqa: E402
from sam2_ros.tracking import StreamingTracker  # noqa: E402

PARTS = ("encode_image", "attend_memory", "decode", "encode_memory")


class TimedBackend(TorchBackend):
    """TorchBackend that adds each part's wall time to a per-frame table."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.spent = dict.fromkeys(PARTS, 0.0)

    def _timed(self, name, *args):
        start = time.perf_counter()
        out = getattr(super(), name)(*args)
        self.spent[name] += time.perf_counter() - start
        return out

    def encode_image(self, *a):
        return self._timed("encode_image", *a)

    def attend_memory(self, *a):
        return self._timed("attend_memory", *a)

    def decode(self, *a):
        return self._timed("decode", *a)

    def encode_memory(self, *a):
        return self._timed("encode_memory", *a)


def clicks(n: int, size: int) -> list[list[float]]:
    """One click per object on a grid."""
    side = int(np.ceil(np.sqrt(n)))
    return [[size * (0.5 + i % side) / side, size * (0.5 + i // side) / side] for i in range(n)]


def run_ours(model, frames, n_obj: int, timed: int) -> dict:
    backend = TimedBackend(model)
    tracker = StreamingTracker(backend)
    size = frames[0].shape[0]
    tracker.track(frames[0], 0)
    for i, xy in enumerate(clicks(n_obj, size)):
        tracker.add_prompt(i + 1, points=[xy], labels=[1])
    rows = []
    for f in range(1, len(frames)):
        backend.spent = dict.fromkeys(PARTS, 0.0)
        start = time.perf_counter()
        tracker.track(frames[f], f)
        rows.append({**backend.spent, "total": time.perf_counter() - start})
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--frames", type=int, default=8, help="frames per run (frame 0 is the prompted one)")
    parser.add_argument("--timed", type=int, default=3, help="last frames averaged")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip Meta's predictor")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from oracle import build_reference, save_meta_checkpoint
    from oracle_backend import make_video

    print(f"torch {torch.__version__}, {args.threads} threads, sam2.1_hiera_t, random weights, "
          f"{args.frames} frames, mean of the last {args.timed}")
    print("| image | objects | encoder | memory attention | decoder | memory encoder | total ours | reference | "
          "reference / ours |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            frames = make_video(tmp, args.frames, size)
            reference = build_reference("sam2.1_hiera_t", image_size=size)
            ckpt = save_meta_checkpoint(reference, Path(tmp) / "ref.pt")
            model = build_sam2("sam2.1_hiera_t", checkpoint=ckpt, image_size=size)
            for n_obj in args.objects:
                with torch.inference_mode():
                    ours = run_ours(model, frames, n_obj, args.timed)
                ref = float("nan") if args.no_reference else run_reference(reference, tmp, args.frames, n_obj,
                                                                           args.timed)
                cells = " | ".join(f"{ours[p]:.3f}" for p in PARTS)
                print(f"| {size} | {n_obj} | {cells} | {ours['total']:.3f} | {ref:.3f} | {ref / ours['total']:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
