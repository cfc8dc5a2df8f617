"""What writing id + label next to each object costs in ~/overlay: conversions.overlay with and without captions, on
a 640x480 frame with N objects (SyntheticScene shapes, labels of 3-8 characters), median / p99 over many frames with
the caption cache warm (the steady state: one label per object), and the one-off render of a caption not yet cached.

    .venv/bin/python -m bench.overlay_captions [--objects 1 4 16] [--repeats 300] [--image 480x640] [--quick]

Writes bench/out/overlay_captions.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.common import Report, description, parse_args, stats, times
from sam2_ros.ros import conversions as conv
from sam2_ros.ros.overlay_text import caption_mask
from sam2_ros.sim import CLASS_NAMES, SyntheticScene


class _Result:
    """A TrackResult-shaped record of the scene's ground-truth masks."""

    def __init__(self, masks: np.ndarray) -> None:
        n = masks.shape[0]
        self.object_ids = list(range(1, n + 1))
        self.masks = masks
        self.mask_logits = np.where(masks, 5.0, -5.0).astype(np.float32)
        self.iou = np.full(n, 0.9, np.float32)
        self.presence = np.full(n, 0.9, np.float32)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median / p99 wall milliseconds of fn()."""
    s = stats(times(fn, repeats, warmup=0), 1e3)
    return s["median"], s["p99"]


def main() -> int:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--image", default="480x640", help="H x W")
    args = parse_args(parser, quick={"objects": [1, 4], "repeats": 20})
    height, width = (int(v) for v in args.image.split("x"))
    rep = Report("overlay_captions", "Captions (id + label) in ~/overlay")
    rep.print(f"{height}x{width}, median / p99 of {args.repeats} frames, caption cache warm", "")
    rep.table("objects", "overlay without captions median / p99", "with captions median / p99", "captions add")
    rows = []
    for n in args.objects:
        frame = SyntheticScene(height, width, num_objects=n, seed=0).frame(3)
        labels = [CLASS_NAMES[k % len(CLASS_NAMES)] for k in range(n)]
        out = conv.frame_outputs(_Result(frame.masks), columns=lambda ids: (labels, np.zeros(len(ids)),
                                                                            np.zeros(len(ids))))
        conv.overlay(frame.rgb, out)  # warm the caption cache
        plain = timed(lambda: conv.overlay(frame.rgb, out, captions=False), args.repeats)
        captioned = timed(lambda: conv.overlay(frame.rgb, out), args.repeats)
        rows.append({"objects": n, "plain_median_ms": plain[0], "plain_p99_ms": plain[1],
                     "captioned_median_ms": captioned[0], "captioned_p99_ms": captioned[1]})
        rep.row(n, f"{plain[0]:.3f} / {plain[1]:.3f} ms", f"{captioned[0]:.3f} / {captioned[1]:.3f} ms",
                f"{captioned[0] - plain[0]:.3f} ms")
    texts = [f"{k} label{k}" for k in range(200)]
    t0 = time.perf_counter()
    for text in texts:
        caption_mask(text)
    miss_ms = (time.perf_counter() - t0) * 1e3 / len(texts)
    rep.print("", f"first render of a caption (cache miss): {miss_ms:.3f} ms each")
    rep.data.update(args=vars(args), rows=rows, caption_miss_ms=miss_ms)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
