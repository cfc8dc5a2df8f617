"""Timing steps of bench/gpu_check.py: the tiny model per precision, the compiled path (opt-in), a long stream, and
the other sizes; ms per part and per tracked frame."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from gpu_check.common import (TARGETS_MS, Context, build_model, camera_frames, part_ms, prompt_points,
                              tracked_frame_ms)
from gpu_check.plan import COMPILE_BUDGETS_S, PARTS


def _time_backend(ctx: Context, backend: Any, config: str, mode: str, precision: str,
                  frames: list[np.ndarray]) -> None:
    """One timing row per object count (parts + tracked frame), skipping what the time left cannot hold."""
    plan = ctx.plan
    rows = ctx.data.setdefault("rows", [])
    for objects in plan.objects:
        if ctx.left() < 10:
            ctx.data.setdefault("skipped", []).append(f"{config} {mode} {precision} B={objects}: no time left")
            continue
        if plan.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row = {"config": config, "image_size": plan.image_size, "mode": mode, "precision": precision,
               "objects": objects, **part_ms(backend, objects, plan.iters, plan.device),
               **tracked_frame_ms(backend, objects, plan, frames)}
        row["fps"] = round(1000.0 / row["frame_ms"], 1)
        if plan.device == "cuda":
            row["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        target = TARGETS_MS.get((config, objects)) if plan.image_size == 1024 else None
        if target is not None:
            row["target_ms"] = target
        rows.append(row)
        ctx.log(f"{config}@{plan.image_size} {mode} {precision} B={objects}: "
                + " ".join(f"{p} {row[p]:.2f}" for p in PARTS)
                + f" | tracked frame {row['frame_ms']:.2f} ms ({row['fps']} FPS)"
                + (f", target {target} ms" if target else ""))


def step_timing_tiny(ctx: Context) -> None:
    """The tiny model at the plan's size: every precision eagerly, then the shipped GPU path (bf16 + CUDA graphs,
    warmed up), 1 and 8 objects: ms per part and per tracked frame."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    model = build_model(plan.tiny, plan.image_size, plan.device)
    frames = camera_frames(24)
    order = [p for p in ("bf16", "fp16", "fp32") if p in plan.precisions]  # the shipped precision first
    for precision in order:
        _time_backend(ctx, TorchBackend(model, precision=precision), plan.tiny, "eager", precision, frames)


def step_compile_tiny(ctx: Context) -> None:
    """Opt-in: the shipped fast path (bf16 + CUDA graphs) of tiny at the plan's size; cold Inductor compilation is
    measured against its own budget (COMPILE_BUDGETS_S), then timed; the stream step reuses it."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    model = build_model(plan.tiny, plan.image_size, plan.device)
    compiled = TorchBackend(model, precision="bf16" if plan.device == "cuda" else "fp32",
                            compile="reduce-overhead" if plan.compile else False)
    t0 = time.perf_counter()
    compiled.warm_up(max(plan.objects))
    ctx.data["compile_s"] = round(time.perf_counter() - t0, 1)
    ctx.data["compile_budget_s"] = COMPILE_BUDGETS_S["compile_tiny"]
    ctx.log(f"compiled warm-up {ctx.data['compile_s']} s (budget {ctx.data['compile_budget_s']:.0f} s)")
    ctx.shared["tiny_fast"] = compiled
    _time_backend(ctx, compiled, plan.tiny, "compiled", compiled.precision, camera_frames(24))
    if ctx.data["compile_s"] > ctx.data["compile_budget_s"]:
        raise AssertionError(f"compilation took {ctx.data['compile_s']} s, over its budget")


def step_stream(ctx: Context) -> None:
    """A long stream (2 objects): GPU memory and the tracker's own bytes must stay flat; ms per frame."""
    from sam2_ros.backends.torch_backend import TorchBackend
    from sam2_ros.tracking import StreamingTracker

    plan, d = ctx.plan, ctx.data
    backend = ctx.shared.get("tiny_fast")
    if backend is None:
        backend = TorchBackend(build_model(plan.tiny, plan.image_size, plan.device),
                               precision="bf16" if plan.device == "cuda" else "fp32")
    d["backend"] = f"{backend.precision} compile={backend.compile}"
    frames = camera_frames(32)
    tracker = StreamingTracker(backend)
    tracker.track(frames[0])
    for k, (x, y) in enumerate(prompt_points(2), 1):
        tracker.add_prompt(k, points=np.array([[x, y]]), labels=np.array([1]))
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    samples, times = [], []
    # From frame 20 on the bank is full (16 pointer frames, 15 history frames): nothing may grow after it.
    first = min(max(plan.stream_frames // 6, 20), plan.stream_frames)
    checkpoints = {first, (first + plan.stream_frames) // 2, plan.stream_frames}
    for i in range(1, plan.stream_frames + 1):
        t0 = time.perf_counter()
        tracker.track(frames[i % len(frames)])
        times.append(1e3 * (time.perf_counter() - t0))
        if i in checkpoints:
            sample = {"frame": i, "tracker_mib": round(tracker.memory_bytes() / 2**20, 2)}
            if plan.device == "cuda":
                sample["allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
                sample["max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            samples.append(sample)
            ctx.log(f"frame {i}: {sample}")
        if ctx.left() < 3:
            d["stopped_at_frame"] = i
            break
    d.update(samples=samples, frame_ms_mean=round(float(np.mean(times)), 2),
             frame_ms_p95=round(float(np.percentile(times, 95)), 2), frames=len(times))
    key = "max_allocated_mib" if plan.device == "cuda" else "tracker_mib"
    d["growth_mib"] = round(samples[-1][key] - samples[0][key], 2) if len(samples) > 1 else None
    if d["growth_mib"] is not None and d["growth_mib"] > 1.0:
        raise AssertionError(f"memory grew by {d['growth_mib']} MiB between frame {samples[0]['frame']} and "
                             f"{samples[-1]['frame']}")


def step_timing_sizes(ctx: Context) -> None:
    """The other configs eagerly (bf16 first, then fp32 and fp16), as far as the budget goes."""
    from sam2_ros.backends.torch_backend import TorchBackend

    plan = ctx.plan
    frames = camera_frames(24)
    order = [p for p in ("bf16", "fp32", "fp16") if p in plan.precisions][:1 if plan.device == "cuda" else None]
    for config in plan.sizes:
        if ctx.left() < 20:
            ctx.data.setdefault("skipped", []).append(f"{config}: no time left")
            continue
        model = build_model(config, plan.image_size, plan.device)
        for precision in order:
            _time_backend(ctx, TorchBackend(model, precision=precision), config, "eager", precision, frames)
        del model
        if plan.device == "cuda":
            torch.cuda.empty_cache()
