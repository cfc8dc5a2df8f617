"""What bench/gpu_check.py runs: the sizes (GPU plan, CPU smoke plan) and the steps with their time budgets.

Plain Python (no torch), so `--dry-run` works on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """What a run measures."""

    device: str
    image_size: int
    tiny: str  # timed in every precision, eager and compiled; also the precision and stream checks
    sizes: tuple[str, ...]  # the other configs, eager
    objects: tuple[int, ...]
    precisions: tuple[str, ...]
    compile: bool  # torch.compile (CUDA graphs) where the plan says compiled
    iters: int  # timed calls per measurement
    warm_frames: int  # tracked frames before timing (fills the memory bank)
    stream_frames: int
    graph_size: int  # image size of the CUDA-graph and TensorRT checks (micro model, real weights)


GPU_PLAN = Plan("cuda", 1024, "sam2.1_hiera_t", ("sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"), (1, 8),
                ("fp32", "bf16", "fp16"), True, 10, 16, 300, 256)
SMOKE_PLAN = Plan("cpu", 128, "sam2_micro", ("sam2_micro",), (1, 2), ("fp32", "bf16"), False, 1, 2, 24, 128)

PARTS = ("encode_image", "attend_memory", "decode", "encode_memory")  # the four inference parts, as timed
TOTAL_S = 480.0  # the hard box: the process ends here whatever it is doing, after writing its results
DEFAULT_BUDGET_S = 470.0  # the steps' share; the rest is for writing results and exiting

# (step, budget in seconds, what it does), in the order they run; bench/gpu_check_steps.py has `step_<name>` for
# each. The last step also gets whatever time the others leave (it measures as far as its time goes).
STEPS: list[tuple[str, float, str]] = [
    ("environment", 15, "GPU, driver, CUDA, torch, triton, TensorRT, onnx versions; TF32 switches"),
    ("cuda_graphs", 75, "micro model (real weights) compiled with CUDA graphs and warmed up vs eager, fp32: each part "
                        "called >= 3 times with different inputs, every kept output compared afterwards; a tracker "
                        "with a late prompt on an older history frame; graphs compiled after warm-up (want 0)"),
    ("precision", 30, "tiny: bf16 / fp16 vs fp32 on the same inputs, part by part (features, IoU, mask agreement)"),
    ("timing_tiny", 150, "tiny at 1024: ms per part and per tracked frame (tracker.track, 640x480 in, masks out), "
                         "1 and 8 objects, fp32/bf16/fp16 eager, then the shipped path (bf16 + CUDA graphs)"),
    ("stream", 45, "tiny, 2 objects, 300 frames on the shipped path: GPU memory and tracker bytes flat, ms per frame"),
    ("tensorrt", 45, "TensorRT fp16/fp32 engines (micro, real weights) vs torch, tracked-frame time; "
                     "'skipped: no TensorRT' where it does not import"),
    ("pytest_cuda", 60, "pytest -m cuda on the test files that have CUDA tests, where pytest is installed"),
    ("timing_sizes", 50, "s, b+, l at 1024 eager (bf16 first, then fp32, fp16), as far as the time left goes"),
]
