"""What the steps of bench/gpu_check.py share: the step context, timing, error measures, models and inputs.

Each step fills `ctx.data` as it goes, so a step stopped by its time budget still leaves what it measured. Imports
only torch, numpy and sam2_ros (ROS-free core). Sizes come from a Plan: the GPU plan (1024 px, t/s/b+/l, 1 and 8
objects, fp32/bf16/fp16) or the CPU smoke plan (micro model at 128 px, a few frames; `make test` runs it).
"""
from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gpu_check.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
MICRO_CHECKPOINT = ROOT / "models" / "sam2_micro.pt"
TARGETS_MS = {("sam2.1_hiera_t", 1): 5.0, ("sam2.1_hiera_t", 8): 8.0}  # per tracked frame at 1024 px on an H100
CAMERA = (480, 640)  # frames the tracker gets (H, W): masks come back at this size


@dataclass
class Context:
    """What a step gets: the plan, its record, time left, a progress printer, and objects shared between steps."""

    plan: Plan
    data: dict[str, Any]
    left: Callable[[], float]  # seconds left in this step
    log: Callable[[str], None]
    shared: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- helpers
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], iters: int, device: str) -> float:
    """Mean milliseconds of fn() after one warm-up call (CUDA events on a GPU, wall clock on the CPU)."""
    fn()
    _sync(device)
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return 1e3 * (time.perf_counter() - t0) / iters


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b is the reference)."""
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12)) if b.numel() else 0.0


def mask_iou(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """IoU of the masks logits > 0 of a and b (1.0 when both are empty)."""
    a, b = np.asarray(torch.as_tensor(a).float().cpu()) > 0, np.asarray(torch.as_tensor(b).float().cpu()) > 0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def build_model(config: str, size: int, device: str, checkpoint: Path | None = None) -> Any:
    """A model with seeded random weights (speed and agreement do not depend on them), or a checkpoint's."""
    from sam2_ros.model import build_sam2

    torch.manual_seed(0)
    return build_sam2(config, checkpoint=str(checkpoint) if checkpoint else None, image_size=size, device=device)


def camera_frames(count: int, objects: int = 4) -> list[np.ndarray]:
    """Synthetic camera frames (moving shapes), [H, W, 3] uint8."""
    from sam2_ros.sim import SyntheticScene

    scene = SyntheticScene(*CAMERA, num_objects=objects, seed=0)
    return [scene.frame(i).rgb for i in range(count)]


def prompt_points(objects: int) -> list[tuple[float, float]]:
    """One click per object on a 4 x 2 grid over the camera frame."""
    h, w = CAMERA
    return [((k % 4 + 0.5) * w / 4, (k // 4 % 2 + 0.5) * h / 2) for k in range(objects)]


def full_bank_inputs(backend: Any, objects: int) -> dict[str, torch.Tensor]:
    """Inputs of every part for B objects with a full memory bank (7 frames, 16 pointers), as a tracked frame."""
    cfg = backend.config
    s, h, d, dev = cfg.image_size, cfg.feat_size, cfg.mem_dim, backend.device
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    image = rand(1, 3, s, s)
    with torch.inference_mode():
        s0, s1, embed, pos = (t.clone() for t in backend.encode_image(image))
    ms, ptrs = cfg.num_maskmem * h * h, 16 * (cfg.hidden_dim // d)
    b = objects
    return {"image": image, "s0": s0.expand(b, -1, -1, -1), "s1": s1.expand(b, -1, -1, -1),
            "embed": embed.expand(b, -1, -1, -1), "pos": pos.expand(b, -1, -1, -1), "memory": rand(b, ms, d),
            "memory_pos": rand(b, ms, d), "ptrs": rand(b, ptrs, d), "ptr_pos": rand(b, ptrs, d),
            "high_res": rand(b, 1, s, s) * 8, "score": torch.ones(b, 1, device=dev)}


def part_ms(backend: Any, objects: int, iters: int, device: str) -> dict[str, float]:
    """Milliseconds of each part on full-bank inputs for B objects (tracked-frame shapes)."""
    x = full_bank_inputs(backend, objects)
    calls = {
        "encode_image": lambda: backend.encode_image(x["image"]),
        "attend_memory": lambda: backend.attend_memory(x["embed"], x["pos"], x["memory"], x["memory_pos"],
                                                       x["ptrs"], x["ptr_pos"]),
        "decode": lambda: backend.decode(x["embed"], x["s0"], x["s1"], None, None, None, True),
        "encode_memory": lambda: backend.encode_memory(x["embed"], x["high_res"], x["score"], False),
    }
    with torch.inference_mode():
        return {name: round(time_ms(fn, iters, device), 3) for name, fn in calls.items()}


def tracked_frame_ms(backend: Any, objects: int, plan: Plan, frames: list[np.ndarray]) -> dict[str, float]:
    """Wall milliseconds of StreamingTracker.track (image in, numpy masks out) with B objects and a full bank."""
    from sam2_ros.tracking import StreamingTracker

    tracker = StreamingTracker(backend)
    tracker.track(frames[0])
    for k, (x, y) in enumerate(prompt_points(objects), 1):
        tracker.add_prompt(k, points=np.array([[x, y]]), labels=np.array([1]))
    for i in range(1, plan.warm_frames + 1):
        tracker.track(frames[i % len(frames)])
    times = []
    for i in range(plan.iters):
        _sync(plan.device)
        t0 = time.perf_counter()
        tracker.track(frames[(plan.warm_frames + 1 + i) % len(frames)])  # returns numpy: synchronised
        times.append(1e3 * (time.perf_counter() - t0))
    return {"frame_ms": round(float(np.mean(times)), 3), "frame_p95_ms": round(float(np.percentile(times, 95)), 3)}


def version_of(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # not installed, or broken: either way not usable here
        return None


def strict_fp32() -> None:
    """One fp32 definition for every comparison: IEEE fp32 matmuls and convolutions in torch (cuDNN's TF32 is on by
    default), as TensorRT's fp32 engines are built (TF32 cleared)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def graph_count() -> int:
    """Graphs torch.compile has made in this process so far."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(counters["stats"]["unique_graphs"])


def require(ctx: Context, checks: dict[str, tuple[float, float, str]]) -> None:
    """Record each (value, limit, 'max'|'min') under data['checks'] and fail the step when any is missed."""
    failed = []
    for name, (value, limit, kind) in checks.items():
        ok = value <= limit if kind == "max" else value >= limit
        ctx.data.setdefault("checks", {})[name] = {"value": value, "limit": limit, "kind": kind, "ok": ok}
        if not ok:
            failed.append(f"{name} {value:.3g} ({'>' if kind == 'max' else '<'} {limit:g})")
    if failed:
        raise AssertionError("thresholds missed: " + ", ".join(failed))


def track_run(backend: Any, frames: list[np.ndarray], objects: int = 2) -> list[Any]:
    """TrackResults of a short stream: frame 0 prompted with one click per object, then tracked frames."""
    from sam2_ros.tracking import StreamingTracker

    tracker = StreamingTracker(backend)
    out = [tracker.track(frames[0], stamp=0)]
    for k, (x, y) in enumerate(prompt_points(objects), 1):
        out.append(tracker.add_prompt(k, points=np.array([[x, y]]), labels=np.array([1])))
    out += [tracker.track(f, stamp=i) for i, f in enumerate(frames[1:], 1)]
    return out
