"""What `backend: auto` costs at start: `make demo`'s run (the node with the shipped micro model) twice on a fresh
cache — the first start exports the model to ONNX, the second reuses it — and once with `backend: torch` to compare.

    .venv/bin/python -m bench.auto_start [--runs 2] [--image-size 256] [--seconds 8] [--quick]

Per run: the backend that ran, the node's configure time (`ready in`: model build + export or cache check), the
export time the node logged, the demo's frames per second, latency and J. Writes bench/out/auto_start.json and .md.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Report, description, parse_args
from sam2_ros.ros.node_process import child_env


def run_demo(out: Path, cache: Path, image_size: int, backend: str = "auto", seconds: float = 8.0) -> dict:
    """One `python -m sam2_ros.demo` with SAM2_ROS_CACHE=cache; the figures of its summary and node log."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sam2_ros.demo", "--out", str(out), "--image-size", str(image_size),
                           "--backend", backend, "--seconds", str(seconds)], cwd=str(ROOT),
                          env=child_env({"SAM2_ROS_CACHE": str(cache)}), capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"demo failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    summary = (out / "summary.txt").read_text()
    log = (out / "node.log").read_text(errors="replace")
    exported = re.search(r"exported \S+ to ONNX in ([\d.]+) s", log)
    return {"backend": re.search(r"backend=(\S+)", summary)[1],
            "start_s": float(re.search(r"start_s=([\d.]+)", summary)[1]),
            "export_s": float(exported[1]) if exported else None, "fps": float(re.search(r"fps=([\d.]+)", summary)[1]),
            "latency_ms": float(re.search(r"latency_ms=(\d+)", summary)[1]),
            "J": float(re.search(r" J=([\d.]+)", summary)[1]), "demo_wall_s": round(wall, 1)}


def main() -> int:
    p = argparse.ArgumentParser(**description(__doc__))
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--seconds", type=float, default=8.0, help="the demo's --seconds of tracking")
    args = parse_args(p, quick={"runs": 1, "seconds": 2.0})
    rows = []
    with tempfile.TemporaryDirectory(prefix="auto_start_") as tmp:
        cache = Path(tmp) / "cache"  # fresh: the first run exports
        runs = [("auto", i + 1) for i in range(args.runs)] + [("torch", 1)]
        for backend, i in runs:
            row = {"run": f"{backend} {i}", **run_demo(Path(tmp) / f"demo_{backend}{i}", cache, args.image_size,
                                                        backend, args.seconds)}
            rows.append(row)
            print(row, flush=True)
    rep = Report("auto_start", "backend: auto at start (CPU)")
    rep.print(f"demo: sam2_micro at {args.image_size} px, {args.seconds:g} s of tracking", "")
    rep.table("run (`backend`)", "what ran", "node start (s)", "ONNX export (s)", "demo fps", "latency (ms)", "J",
              "demo wall (s)")
    for r in rows:
        export = r["export_s"] or ("-" if r["backend"] == "torch" else "cached")
        rep.row(r["run"], r["backend"], r["start_s"], export, r["fps"], f"{r['latency_ms']:.0f}", f"{r['J']:.3f}",
                r["demo_wall_s"])
    rep.data.update(args=vars(args), rows=rows)
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
