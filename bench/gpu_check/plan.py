"""What bench/gpu_check.py runs: the sizes (GPU plan, CPU smoke plan) and the steps with their time budgets.

Plain Python (no torch), so `--dry-run` works on any machine. The default run fits a 5-minute lease (TOTAL_S, the
hard box) after the machine's 1-2 minute start, so a 15-minute session can run it twice. Steps that compile have a
compile budget of their own (measured, recorded, and a failure when exceeded) inside their step budget; TensorRT
builds fp16 engines only by default, in a cache outside the results folder.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """What a run measures."""

    device: str
    image_size: int
    tiny: str  # timed in every precision eagerly; also the precision, CPU-vs-CUDA and stream checks
    sizes: tuple[str, ...]  # the other configs, eager
    objects: tuple[int, ...]
    precisions: tuple[str, ...]
    compile: bool  # torch.compile (CUDA graphs) where the plan says compiled
    iters: int  # timed calls per measurement
    warm_frames: int  # tracked frames before timing (fills the memory bank)
    stream_frames: int
    graph_size: int  # image size of the CUDA-graph and TensorRT checks (micro model, real weights)
    compare_frames: int  # tracked frames compared CUDA vs CPU
    trt_precisions: tuple[str, ...]  # TensorRT engines built (each build is minutes at 1024 px: fp16 only)


GPU_PLAN = Plan("cuda", 1024, "sam2.1_hiera_t", ("sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"), (1, 8),
                ("fp32", "bf16", "fp16"), True, 10, 16, 120, 256, 10, ("fp16",))
SMOKE_PLAN = Plan("cpu", 128, "sam2_micro", ("sam2_micro",), (1, 2), ("fp32", "bf16"), False, 1, 2, 24, 128, 3,
                  ("fp16",))

PARTS = ("encode_image", "attend_memory", "decode", "encode_memory")  # the four inference parts, as timed
TOTAL_S = 300.0  # the hard box: the process ends here whatever it is doing, after writing its results
DEFAULT_BUDGET_S = 290.0  # the steps' share; the rest is for writing results and exiting

# Pass/fail thresholds (a step whose numbers miss one fails).
CPU_VS_CUDA = {"features_rel": 1e-4, "logits_rel": 1e-3, "mask_iou": 0.98}  # IEEE fp32 on both (TF32 off)
HALF_VS_FP32 = {"bf16": {"features_rel": 5e-2, "mask_iou": 0.90}, "fp16": {"features_rel": 2e-2, "mask_iou": 0.95}}
TRT_VS_TORCH = {"fp32": {"features_rel": 1e-3, "mask_iou": 0.98}, "fp16": {"features_rel": 5e-2, "mask_iou": 0.90},
                "bf16": {"features_rel": 8e-2, "mask_iou": 0.90}}
COMPILE_BUDGETS_S = {"cuda_graphs": 40.0, "compile_tiny": 150.0}  # warm-up (compilation) share of those steps

# (step, budget in seconds, what it does), in the order they run; `step_<name>` lives in steps_*.py. The last
# default step also gets whatever time the others leave. OPT_IN steps run only when named with --steps.
STEPS: list[tuple[str, float, str]] = [
    ("environment", 10, "GPU, driver, CUDA, torch, triton, TensorRT, onnx versions; fp32 = IEEE fp32 (TF32 off)"),
    ("cpu_vs_cuda", 55, "CUDA fp32 vs CPU fp32: micro (real weights) and random-weight tiny at 1024: encoder "
                        "features and tracked-frame logits over 10 frames; fails above the thresholds"),
    ("cuda_graphs", 60, "micro model compiled with CUDA graphs and warmed up (compile budget 40 s) vs eager, fp32: "
                        "each part called >= 3 times, every kept output compared afterwards; a tracker with a late "
                        "prompt on an older history frame; graphs compiled after warm-up (want 0)"),
    ("precision", 15, "tiny: bf16 / fp16 vs fp32 on the same inputs, part by part; fails above the thresholds"),
    ("timing_tiny", 45, "tiny at 1024 eager: ms per part and per tracked frame (tracker.track, 640x480 in, masks "
                        "out), 1 and 8 objects, bf16/fp16/fp32"),
    ("tensorrt", 70, "TensorRT fp16 engines (micro, real weights; cache outside --out) vs torch, tracked-frame "
                     "time; fails above the thresholds; 'skipped: no TensorRT' where it does not import"),
    ("stream", 20, "tiny, 2 objects, 120 frames: GPU memory and tracker bytes flat, ms per frame"),
    ("timing_sizes", 15, "s, b+, l at 1024 eager (bf16), as far as the time left goes"),
    ("compile_tiny", 180, "opt-in: tiny at 1024 bf16 + CUDA graphs (cold Inductor, compile budget 150 s), timed"),
    ("pytest_cuda", 120, "opt-in: pytest -m cuda on the test files that have CUDA tests"),
]
OPT_IN = ("compile_tiny", "pytest_cuda")
DEFAULT_STEPS = [name for name, _, _ in STEPS if name not in OPT_IN]
