"""TensorRT and pytest steps of bench/gpu_check.py."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from gpu_check.common import (MICRO_CHECKPOINT, ROOT, Context, build_model, camera_frames, full_bank_inputs,
                              mask_iou, rel_err, require, tracked_frame_ms)
from gpu_check.plan import TRT_VS_TORCH


def engine_cache_dir() -> Path:
    """Where the check keeps ONNX exports and TensorRT engines: $SAM2_ROS_GPU_CHECK_CACHE, else the user cache
    (never under --out: the device returns only a few files, and engines are tens of MB)."""
    from sam2_ros.backends.cache import default_cache_dir

    env = os.environ.get("SAM2_ROS_GPU_CHECK_CACHE")
    return Path(env) if env else default_cache_dir() / "gpu_check"


def step_tensorrt(ctx: Context) -> None:
    """TensorRT engines (micro model, real weights) against torch, and their tracked-frame time; only where
    `import tensorrt` works."""
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    plan = ctx.plan
    reason = tensorrt_unavailable(plan.device)
    if reason:
        ctx.data["skipped"] = f"no TensorRT: {reason}"
        ctx.log(ctx.data["skipped"])
        return
    from sam2_ros.backends.factory import create_backend
    from sam2_ros.backends.torch_backend import TorchBackend

    size = plan.graph_size
    cache = engine_cache_dir()
    ctx.data["cache_dir"] = str(cache)
    ref = TorchBackend(build_model("sam2_micro", size, plan.device, MICRO_CHECKPOINT))
    rows = ctx.data.setdefault("rows", [])
    frames = camera_frames(24)
    checks = {}
    for precision in plan.trt_precisions:
        t0 = time.perf_counter()
        engine = create_backend("tensorrt", "sam2_micro", checkpoint=str(MICRO_CHECKPOINT), image_size=size,
                                device="cuda", precision=precision, cache_dir=cache, max_objects=max(plan.objects))
        x = full_bank_inputs(ref, 2)
        with torch.inference_mode():
            err = max(rel_err(a, b) for a, b in zip(engine.encode_image(x["image"]), ref.encode_image(x["image"])))
            dec = [b.decode(x["embed"], x["s0"], x["s1"], None, None, None, True) for b in (engine, ref)]
        row = {"precision": precision, "build_or_load_s": round(time.perf_counter() - t0, 1),
               "encode_image_rel_err": round(err, 5),
               "mask_iou": round(mask_iou(dec[0].low_res_multimasks, dec[1].low_res_multimasks), 5)}
        row.update(engine.describe())
        row.update(tracked_frame_ms(engine, 1, plan, frames))
        rows.append(row)
        ctx.log(f"TensorRT {precision}: {row}")
        limit = TRT_VS_TORCH[precision]
        checks[f"{precision}.features_rel"] = (row["encode_image_rel_err"], limit["features_rel"], "max")
        checks[f"{precision}.mask_iou"] = (row["mask_iou"], limit["mask_iou"], "min")
    require(ctx, checks)


def step_pytest_cuda(ctx: Context) -> None:
    """The test suite's CUDA tests (`pytest -m cuda`) where pytest is installed; their files only."""
    if ctx.plan.device != "cuda":
        ctx.data["skipped"] = "smoke run: the CUDA tests skip on the CPU anyway"
        return
    if importlib.util.find_spec("pytest") is None:
        ctx.data["skipped"] = "pytest is not installed"
        return
    files, excluded = [], []
    oracle = importlib.util.find_spec("sam2") is not None  # Meta's reference package, a test-only dependency
    for path in sorted((ROOT / "test").glob("test_*.py")):
        text = path.read_text()
        if "mark.cuda" in text:
            needs_oracle = "backend_util" in text or "from oracle" in text
            (files if oracle or not needs_oracle else excluded).append(str(path.relative_to(ROOT)))
    ctx.data["excluded_need_sam2_oracle"] = excluded
    timeout = max(ctx.left() - 5, 5)
    try:
        # -o addopts=: pytest.ini's options need plugins (pytest-timeout) a GPU machine may lack
        done = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-m", "cuda", "-q", "-rs",
                               "-p", "no:cacheprovider", "--continue-on-collection-errors", *files], cwd=str(ROOT),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        ctx.data.update(files=files, timed_out_after_s=round(timeout), tail=str(err.stdout or "")[-2000:])
        raise TimeoutError(f"pytest -m cuda did not finish in {timeout:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    ctx.data.update(files=files, returncode=done.returncode, summary=lines[-1] if lines else "",
                    tail="\n".join(lines[-30:]))
    ctx.log(ctx.data["summary"])
    if done.returncode not in (0, 5):  # 5: nothing collected
        raise AssertionError(f"pytest -m cuda: {ctx.data['summary']}")
