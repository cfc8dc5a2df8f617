"""Low vs full resolution mask output: bytes per frame and the time to make the masks, 640x480 with 8 objects.

    .venv/bin/python -m bench.mask_resolution [--runs 20] [--objects 8] [--node] [--quick]

Decoder grids of 64 (micro at 256) and 256 (Meta's models at 1024) holding 8 synthetic shapes. Timed, best of runs,
one thread: "full" = what the tracker does for every TrackResult (bilinear upsampling of the N grids to 480 x 640,
threshold) + mono8 images; "low from grid" = low_res_masks() on TrackResult.low_res_logits + mono8 images; "low
from full" = area downsampling of the full masks (the alternative when full masks exist anyway). Bytes: the mono8
pixels, and the serialized sam2_ros/ObjectMaskArray when the generated messages are importable.
--node: the node's own ~/masks path (sam2_ros.ros: frame_outputs, low_res_outputs, to_mask_array, serialization) on
a real TrackResult of the shipped micro model at 256 with 8 tracked objects, thread CPU time per frame;
`python -m bench.node_overhead --masks-only` measures the same through DDS in the running node.
Writes bench/out/mask_resolution.json and .md (with --node: mask_resolution_node.json and .md).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import MICRO_CHECKPOINT, Report, description, parse_args, times
from sam2_ros.model.sam2 import postprocess_masks
from sam2_ros.sim import SyntheticScene
from sam2_ros.tracking.resolution import low_res_masks

H, W = 480, 640


def grid_logits(objects: int, side: int) -> torch.Tensor:
    """Decoder-like logits [N, 1, s, s]: the shapes of a synthetic frame squeezed to s x s, +-10 with soft edges."""
    masks = SyntheticScene(H, W, num_objects=objects, seed=3).frame(0).masks
    cover = F.interpolate(torch.from_numpy(masks.astype(np.float32))[:, None], size=(side, side), mode="area")
    return (cover - 0.5) * 20.0


def mono8(masks: np.ndarray) -> list[bytes]:
    """What the node puts in ObjectMask.mask.data: 255 = object."""
    return [np.multiply(m, 255, dtype=np.uint8).tobytes() for m in masks]


def serialized_bytes(images: list[bytes], size: tuple[int, int], scale: float) -> int | None:
    try:
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import Image

        from sam2_ros.msg import ObjectMask, ObjectMaskArray
    except ImportError:
        return None
    h, w = size
    msg = ObjectMaskArray(objects=[ObjectMask(object_id=i + 1, mask_scale=scale, mask=Image(
        height=h, width=w, encoding="mono8", step=w, data=data)) for i, data in enumerate(images)])
    return len(serialize_message(msg))


def node_path(runs: int) -> Report:
    """The node's ~/masks message at full and low resolution from one real 8-object TrackResult (CPU ms per frame)."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from sam2_ros.model import build_sam2
    from sam2_ros.ros import conversions as conv
    from sam2_ros.ros import decoder_outputs as dec
    from sam2_ros.tracking import StreamingTracker

    scene = SyntheticScene(H, W, num_objects=8, seed=1)  # all 8 visible on frames 8..17
    tracker = StreamingTracker(build_sam2("sam2_micro", checkpoint=MICRO_CHECKPOINT,
                                          image_size=256))
    tracker.track(scene.frame(8).rgb)
    for k in range(8):
        tracker.add_prompt(k + 1, points=[scene.frame(8).inner_point(k)], labels=[1])
    result = tracker.track(scene.frame(9).rgb)
    header = Header(frame_id="camera")

    out = conv.frame_outputs(result)
    low = dec.low_res_outputs(result, out, 0.0, 0.0)
    steps = {
        "frame_outputs (both: label image, full masks for bbox/area)": lambda: conv.frame_outputs(result),
        "low_res_outputs (low only)": lambda: dec.low_res_outputs(result, out, 0.0, 0.0),
        "to_mask_array full": lambda: conv.to_mask_array(out, header),
        "to_mask_array low": lambda: conv.to_mask_array(out, header, low),
        "whole path full: frame_outputs + to_mask_array + serialize": lambda: serialize_message(
            conv.to_mask_array(conv.frame_outputs(result), header)),
        "whole path low: frame_outputs + low_res_outputs + to_mask_array + serialize": lambda: serialize_message(
            conv.to_mask_array(out_ := conv.frame_outputs(result), header, dec.low_res_outputs(result, out_, 0.0, 0.0))),
    }
    rep = Report("mask_resolution_node", "The node's ~/masks path in-process, full vs low resolution")
    rep.print(f"{len(result)} objects, micro@256, thread CPU ms (best / median of {runs})", "")
    rep.table("step", "best (ms)", "median (ms)")
    rows = []
    for name, call in steps.items():
        spent = np.array(times(call, runs, warmup=0, clock=time.thread_time)) * 1e3
        rows.append({"step": name, "best_ms": float(spent.min()), "median_ms": float(np.median(spent))})
        rep.row(name, f"{spent.min():.2f}", f"{np.median(spent):.2f}")
    rep.print("")
    for name, extra in (("full", None), ("low", low)):
        size = len(serialize_message(conv.to_mask_array(out, header, extra)))
        rep.data[f"serialized_masks_bytes_{name}"] = size
        rep.print(f"{name}: serialized ~/masks {size:,} bytes")
    rep.data["rows"] = rows
    return rep


def best(runs: int, call) -> tuple[float, object]:
    """Best-of-runs wall seconds of call(), and its result."""
    return min(times(call, runs, warmup=0)), call()


def main() -> None:
    parser = argparse.ArgumentParser(**description(__doc__))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--node", action="store_true", help="only the node's ~/masks path (see the docstring)")
    args = parse_args(parser, quick={"runs": 2})
    torch.set_num_threads(1)
    if args.node:
        rep = node_path(args.runs)
        rep.data["args"] = vars(args)
        rep.write()
        return
    rep = Report("mask_resolution", "Low vs full resolution mask output")
    rep.print(f"1 thread, {W}x{H}, {args.objects} objects, best of {args.runs}", "")
    rep.table("grid", "output", "mask size", "time to make the masks", "mono8 bytes / frame",
              "serialized ObjectMaskArray")
    rows = []
    for side in (64, 256):
        logits = grid_logits(args.objects, side)

        def full():
            return mono8(postprocess_masks(logits, (H, W))[:, 0].numpy() > 0)

        def low_from_grid():
            low = low_res_masks(logits[:, 0].numpy(), (H, W))
            return mono8(low.masks), low

        full_masks = postprocess_masks(logits, (H, W))[:, 0].numpy() > 0
        low_size = low_res_masks(logits[:, 0].numpy(), (H, W)).size

        def low_from_full():
            area = F.interpolate(torch.from_numpy(full_masks.astype(np.float32))[:, None], size=low_size,
                                 mode="area")[:, 0]
            return mono8(area.numpy() >= 0.5)

        t_full, images_full = best(args.runs, full)
        t_low, (images_low, low) = best(args.runs, low_from_grid)
        t_down, _ = best(args.runs, low_from_full)
        for label, size, scale, spent, images, note in (
                ("full", (H, W), 1.0, t_full, images_full, ""),
                ("low from grid (`low_res_masks`)", low.size, low.scale, t_low, images_low, ""),
                ("low from full masks (area)", low.size, low.scale, t_down, images_low,
                 " (+ the full-size upsampling, already done for TrackResult)")):
            wire = serialized_bytes(images, size, scale)
            mono = sum(len(b) for b in images)
            rows.append({"grid": side, "output": label, "size": size, "scale": scale, "seconds": spent,
                         "mono8_bytes": mono, "serialized_bytes": wire})
            rep.row(f"{side}x{side}", label, f"{size[1]}x{size[0]} (scale {scale:.3g})", f"{spent * 1e3:.2f} ms{note}",
                    f"{mono:,}", "-" if wire is None else f"{wire:,}")
    rep.data.update(args=vars(args), rows=rows)
    rep.write()


if __name__ == "__main__":
    main()
