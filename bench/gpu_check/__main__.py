"""GPU check: the first thing to run when a GPU is at hand. Time-boxed (5 minutes in all), it proves the GPU path
and measures it, writing results after every step so a stopped run still leaves them.

    python3 bench/gpu_check.py [--out bench/out] [--budget 290] [--dry-run] [--smoke] [--steps ...]

Needs only Python >= 3.10 with torch (CUDA) and numpy: no ROS, no venv; onnx, TensorRT and pytest are used where
they import. Steps (each in its own time budget, each failure recorded and the run going on): environment, CUDA
fp32 vs CPU fp32, CUDA graphs vs eager (outputs that outlive a call, a late prompt, recompiles after warm-up),
half precision vs fp32, timing of the tiny model, TensorRT fp16, a stream (memory flat), timing of s/b+/l; opt-in:
the compiled tiny model and `pytest -m cuda`. Comparisons fail their step when they miss a threshold (plan.py).
Writes DIR/gpu_check.json and DIR/gpu_check.md (engines are cached elsewhere: steps_tensorrt.engine_cache_dir).
--dry-run prints the plan and its budgets (no GPU needed); --smoke runs the same steps on the CPU with the micro
model at 128 px (used by the test suite). Exit code: 0 all steps passed or skipped, 1 a step failed or timed out,
2 no CUDA GPU (nothing checked), 3 stopped by the overall time box.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

START = time.monotonic()
HERE = Path(__file__).resolve().parent  # bench/gpu_check
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]  # the checkout's sam2_ros, and this package as gpu_check

from gpu_check.plan import (DEFAULT_BUDGET_S, DEFAULT_STEPS, GPU_PLAN, OPT_IN, PARTS, SMOKE_PLAN, STEPS,  # noqa: E402
                            TOTAL_S, Plan)


class StepTimeout(Exception):
    """Raised in the main thread when a step's budget is spent."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise StepTimeout()


def elapsed() -> float:
    return time.monotonic() - START


def log(line: str) -> None:
    """A progress line with the wall clock and the seconds since start."""
    print(f"[{datetime.datetime.now():%H:%M:%S} +{elapsed():6.1f}s] {line}", flush=True)


class Results:
    """gpu_check.json + gpu_check.md, rewritten after every step (and by the watchdog at the hard box)."""

    def __init__(self, out: Path, plan: Plan, budget: float) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.doc: dict[str, Any] = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
                                    "plan": plan.__dict__, "budget_s": budget, "finished": False, "steps": {}}

    def step(self, name: str) -> dict[str, Any]:
        with self.lock:
            record = self.doc["steps"][name] = {"status": "running", "data": {}}
        return record

    def write(self) -> None:
        with self.lock:
            self.doc["elapsed_s"] = round(elapsed(), 1)
            text = json.dumps(self.doc, indent=1, default=str)
            markdown = to_markdown(self.doc)
        self.out.mkdir(parents=True, exist_ok=True)
        for name, content in (("gpu_check.json", text), ("gpu_check.md", markdown)):
            tmp = self.out / (name + ".tmp")
            tmp.write_text(content)
            os.replace(tmp, self.out / name)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Markdown table of the given columns (missing values blank)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def to_markdown(doc: dict[str, Any]) -> str:
    """The results as the tables docs/BENCHMARKS.md takes."""
    env = doc["steps"].get("environment", {}).get("data", {})
    out = [f"# GPU check {doc['started']} ({'finished' if doc['finished'] else 'not finished'}, "
           f"{doc.get('elapsed_s', 0)} s)", "",
           ", ".join(f"{k} {env.get(k)}" for k in ("gpu", "capability", "driver", "cuda", "torch", "triton",
                                                    "tensorrt") if k in env), "",
           "| step | status | seconds | budget | note |", "|---|---|---|---|---|"]
    for name, rec in doc["steps"].items():
        note = rec.get("error") or rec.get("data", {}).get("skipped") or ""
        out.append(f"| {name} | {rec['status']} | {rec.get('seconds', '')} | {rec.get('budget_s', '')} | "
                   f"{str(note).splitlines()[0][:160] if note else ''} |")
    timing = doc["steps"].get("timing_tiny", {}).get("data", {}).get("rows", []) + \
        doc["steps"].get("timing_sizes", {}).get("data", {}).get("rows", [])
    if timing:
        out += ["", "## Milliseconds per part and per tracked frame (tracker.track: image in, masks out)", ""]
        out += _table(timing, ["config", "image_size", "mode", "precision", "objects", *PARTS, "frame_ms",
                               "frame_p95_ms", "fps", "target_ms", "peak_mib"])
    precision = doc["steps"].get("precision", {}).get("data", {}).get("rows", [])
    if precision:
        out += ["", "## Half precision vs fp32 (same inputs)", ""]
        out += _table(precision, list(precision[0]))
    for name in ("cuda_graphs", "stream", "tensorrt"):
        data = {k: v for k, v in doc["steps"].get(name, {}).get("data", {}).items() if k not in ("rows",)}
        if data:
            out += ["", f"## {name}", "", "```", json.dumps(data, default=str)[:3000], "```"]
    trt = doc["steps"].get("tensorrt", {}).get("data", {}).get("rows", [])
    if trt:
        out += [""] + _table(trt, list(trt[0]))
    return "\n".join(out) + "\n"


def print_plan(plan: Plan, budget: float, budgets: dict[str, float]) -> None:
    """The selected steps, what each does and its share of the time box; the opt-in steps after them."""
    print(f"gpu_check plan: {len(budgets)} steps, budgets sum {sum(budgets.values()):.0f} s, steps stop at "
          f"{budget:.0f} s, hard stop at {TOTAL_S:.0f} s (results are written after every step)")
    print(f"sizes: {plan}")
    for name, _, what in STEPS:
        if name in budgets:
            print(f"  {name:<13} {budgets[name]:5.0f} s  {what}")
    print(f"  ({list(budgets)[-1]} also gets the time the steps before it leave)")
    others = [f"{name} ({seconds:.0f} s)" for name, seconds, _ in STEPS if name not in budgets]
    if others:
        print("not selected (--steps NAME ... to run): " + ", ".join(others))


def run(plan: Plan, out: Path, budget: float, budgets: dict[str, float], overrides: set[str]) -> int:
    """Every step in turn within its budget and the overall box; returns the exit code."""
    import torch
    import torch._dynamo
    from gpu_check import steps_check, steps_tensorrt, steps_timing
    from gpu_check.common import Context, strict_fp32

    functions = {name: fn for module in (steps_check, steps_timing, steps_tensorrt)
                 for name, fn in vars(module).items() if name.startswith("step_")}
    strict_fp32()  # one fp32 definition for every comparison (torch's cuDNN would use TF32)
    if plan.device == "cpu":  # the smoke run: one thread is fastest on a CPU shared with other work
        torch.set_num_threads(1)
    for limit in ("recompile_limit", "cache_size_limit"):  # one process compiles several models' methods here
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, 64)
    results = Results(out, plan, budget)
    shared: dict[str, Any] = {"out": str(out)}

    def hard_stop() -> None:  # a step stuck in native code (a compile, an engine build) ignores the alarm
        results.doc["aborted"] = f"hard time box of {TOTAL_S:.0f} s reached"
        try:
            results.write()
        finally:
            log(f"hard time box reached: results in {out}")
            os._exit(3)

    watchdog = threading.Timer(max(TOTAL_S - elapsed(), 1.0), hard_stop)
    watchdog.daemon = True
    watchdog.start()
    signal.signal(signal.SIGALRM, _on_alarm)
    failed = False
    selected = list(budgets)
    for name, _, _ in STEPS:
        fn = functions[f"step_{name}"]
        record = results.step(name)
        last = bool(selected) and name == selected[-1] and name not in overrides  # takes what the others left
        seconds = budget - elapsed() if last else min(budgets.get(name, 0.0), budget - elapsed())
        record["budget_s"] = round(seconds, 2)
        if name not in budgets or budget - elapsed() < 1:
            record["status"] = "skipped"
            record["data"]["skipped"] = ("not selected (--steps)" if name not in budgets else
                                         "no time left in the box")
            results.write()
            continue
        log(f"step {name} (budget {seconds:.0f} s)")
        begin = time.monotonic()
        ctx = Context(plan, record["data"], lambda b=begin, s=seconds: s - (time.monotonic() - b), log, shared)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            fn(ctx)
            record["status"] = "skipped" if "skipped" in record["data"] and not record["data"].get("rows") else "ok"
        except StepTimeout:
            record["status"], record["error"] = "timeout", f"stopped after its budget of {seconds:.0f} s"
            failed = True
        except Exception as err:  # one failing step must not lose the others
            timed_out = "StepTimeout" in traceback.format_exc()  # the alarm fired inside a library that wrapped it
            record["status"] = "timeout" if timed_out else "failed"
            record["error"] = f"{type(err).__name__}: {err}"[:2000]
            record["traceback"] = traceback.format_exc(limit=8)
            failed = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            record["seconds"] = round(time.monotonic() - begin, 1)
            if plan.device == "cuda":
                torch.cuda.empty_cache()
            results.write()
        log(f"step {name}: {record['status']} in {record['seconds']} s" +
            (f" ({record['error']})" if record.get("error") else ""))
    results.doc["finished"] = True
    results.write()
    watchdog.cancel()
    log(f"done: {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "out"), help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                   help=f"seconds for all steps (at most {TOTAL_S:.0f} - 10)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and budgets; run nothing")
    p.add_argument("--smoke", action="store_true", help="the same steps on the CPU, micro model at 128 px")
    p.add_argument("--steps", nargs="+", choices=[name for name, _, _ in STEPS], metavar="STEP",
                   help=f"run only these steps (default: all but the opt-in {', '.join(OPT_IN)})")
    p.add_argument("--step-budget", action="append", default=[], metavar="STEP=SECONDS",
                   help="another budget for a step (repeatable)")
    args = p.parse_args(argv)
    budget = min(args.budget, TOTAL_S - 10)
    chosen = DEFAULT_STEPS if args.steps is None else args.steps
    budgets = {name: seconds for name, seconds, _ in STEPS if name in chosen}
    for item in args.step_budget:
        name, _, seconds = item.partition("=")
        if name not in budgets:
            p.error(f"--step-budget {item}: {name!r} is not a selected step")
        budgets[name] = float(seconds)
    plan = SMOKE_PLAN if args.smoke else GPU_PLAN
    if args.dry_run:
        print_plan(plan, budget, budgets)
        return 0
    out = Path(args.out)
    import torch

    if plan.device == "cuda" and not torch.cuda.is_available():
        log("no CUDA GPU is visible to torch: nothing to check here (--dry-run shows the plan, --smoke runs it "
            "on the CPU)")
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps({"error": "no CUDA GPU visible to torch",
                                                        "torch": torch.__version__}, indent=1))
        return 2
    log(f"gpu_check: torch {torch.__version__}, plan {plan.device} {plan.image_size} px, budget {budget:.0f} s, "
        f"results in {out}")
    return run(plan, out, budget, budgets, {item.partition("=")[0] for item in args.step_budget})


if __name__ == "__main__":  # python3 bench/gpu_check (the folder) works too
    sys.exit(main())
