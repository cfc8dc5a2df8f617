"""bench/gpu_check.py (the GPU check, `make gpu-check`; the package bench/gpu_check/) without a GPU: the dry run
prints a plan of at most 300 s and needs no torch (also as `make gpu-check --dry-run`); without a GPU it says so
(exit 2); its steps run end to end on the CPU in smoke mode and write the JSON + markdown; a step over its budget is
stopped, recorded, and the results are still written; a comparison that misses its threshold fails its step."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"
STEPS = ["environment", "cpu_vs_cuda", "cuda_graphs", "precision", "timing_tiny", "tensorrt", "stream", "timing_sizes",
         "compile_tiny", "pytest_cuda"]
DEFAULT = STEPS[:-2]  # compile_tiny and pytest_cuda are opt-in


def _run(*args: str, timeout: float = 300, block_torch: bool = False) -> subprocess.CompletedProcess:
    code = ["import runpy, sys"]
    if block_torch:  # `import torch` fails in this child, as on a machine without torch
        code.append("sys.modules['torch'] = None")
    code.append(f"sys.argv = [{str(SCRIPT)!r}, *{list(args)!r}]")
    code.append(f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", "; ".join(code)], capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT))


def test_dry_run_prints_the_plan_and_needs_no_torch():
    done = _run("--dry-run", block_torch=True)
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    budgets = {m[1]: float(m[2]) for m in re.finditer(r"^  (\w+)\s+(\d+) s  ", done.stdout, re.M)}
    assert list(budgets) == DEFAULT
    assert sum(budgets.values()) <= 290 and "hard stop at 300 s" in done.stdout  # fits a 5-minute lease
    assert "compile_tiny" in done.stdout.splitlines()[-1] and "pytest_cuda" in done.stdout.splitlines()[-1]


def test_make_dry_run_prints_the_plan():
    """`make gpu-check --dry-run`: make's own -n flag reaches the check, which prints its plan (and runs nothing)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "--no-print-directory", "gpu-check", "--dry-run", "GPU_PYTHON=" + sys.executable],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    total = float(re.search(r"budgets sum (\d+) s", done.stdout)[1])
    assert total <= 300 and "hard stop at 300 s" in done.stdout and "--dry-run" in done.stdout


def test_a_missed_threshold_fails_and_is_recorded():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gpu_check.common import Context, require
        from gpu_check.plan import SMOKE_PLAN
        from gpu_check.steps_tensorrt import engine_cache_dir
    finally:
        sys.path.remove(str(ROOT / "bench"))
    ctx = Context(SMOKE_PLAN, {}, lambda: 10.0, print)
    require(ctx, {"fp16.features_rel": (1e-3, 2e-2, "max"), "fp16.mask_iou": (0.99, 0.95, "min")})
    assert all(c["ok"] for c in ctx.data["checks"].values())
    with pytest.raises(AssertionError, match="features_rel"):
        require(ctx, {"fp16.features_rel": (0.5, 2e-2, "max")})
    with pytest.raises(AssertionError, match="mask_iou"):
        require(ctx, {"tiny.mask_iou": (0.5, 0.98, "min")})
    assert ctx.data["checks"]["tiny.mask_iou"]["ok"] is False
    assert "gpu_check" in str(engine_cache_dir())  # engines are kept out of --out (the device returns few files)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run for real")
def test_without_a_gpu_it_says_so(tmp_path):
    done = _run("--out", str(tmp_path), timeout=120)
    assert done.returncode == 2 and "no CUDA GPU" in done.stdout
    assert "no CUDA GPU" in json.loads((tmp_path / "gpu_check.json").read_text())["error"]


@pytest.mark.slow
def test_smoke_runs_every_step_on_the_cpu(tmp_path):
    done = _run("--smoke", "--out", str(tmp_path))
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {name: rec["status"] for name, rec in doc["steps"].items()}
    assert list(status) == STEPS and doc["finished"]
    assert all(s == "ok" for name, s in status.items() if name in DEFAULT and name != "tensorrt"), status
    assert status["compile_tiny"] == status["pytest_cuda"] == "skipped"
    assert doc["steps"]["cpu_vs_cuda"]["data"]["checks"]["tiny.features_rel"]["ok"]
    assert status["tensorrt"] == "skipped" and "no TensorRT" in doc["steps"]["tensorrt"]["data"]["skipped"]
    rows = doc["steps"]["timing_tiny"]["data"]["rows"]
    assert {(r["precision"], r["objects"]) for r in rows} == {("fp32", 1), ("fp32", 2), ("bf16", 1), ("bf16", 2)}
    assert all(r["frame_ms"] > 0 and r["encode_image"] > 0 for r in rows)
    graphs = doc["steps"]["cuda_graphs"]["data"]
    assert graphs["tracker_min_mask_iou"] == 1.0 and graphs["graphs_compiled_after_warmup"] == 0
    assert doc["steps"]["stream"]["data"]["growth_mib"] <= 1.0
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "| timing_tiny | ok |" in markdown and "| sam2_micro | 128 | eager | bf16 | 2 |" in markdown


def test_a_step_over_its_budget_is_stopped_and_the_run_goes_on(tmp_path):
    done = _run("--smoke", "--out", str(tmp_path), "--steps", "environment", "cuda_graphs", "precision",
                "--step-budget", "cuda_graphs=0.01", timeout=180)  # the step takes >= 0.1 s
    print(done.stdout[-2000:])
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {name: rec["status"] for name, rec in doc["steps"].items()}
    assert done.returncode == 1 and doc["finished"], done.stdout + done.stderr
    assert status["environment"] == "ok" and status["cuda_graphs"] == "timeout" and status["precision"] == "ok"
    assert all(status[name] == "skipped" for name in STEPS if name not in ("environment", "cuda_graphs",
                                                                             "precision")), status
    assert doc["steps"]["cuda_graphs"]["seconds"] < 5 and "| cuda_graphs | timeout |" in (
        tmp_path / "gpu_check.md").read_text()
