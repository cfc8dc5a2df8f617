"""What every bench shares, so that each result says where and how it was measured: the checkout's paths (from the
imported `sam2_ros` package), the test oracle, timing statistics, `--quick`, and the one writer of results —
bench/out/<name>.json and <name>.md under a header (date, CPU model, cores, load average, torch / onnxruntime
versions, git commit, command line).

    rep = Report("geometry_cpu")
    rep.table("objects", "median")          # markdown printed as it comes and kept for the .md
    rep.row(8, f"{ms:.2f} ms")
    rep.data["rows"] = rows                 # the JSON payload
    rep.write()                             # bench/out/geometry_cpu.json + .md (may be called again: soak does)
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sam2_ros.ros.node_process import SOURCE_ROOT

ROOT = SOURCE_ROOT                                  # the checkout whose sam2_ros runs (python -m bench.x from it)
OUT = ROOT / "bench" / "out"
MICRO_CHECKPOINT = ROOT / "models" / "sam2_micro.pt"   # the shipped micro model (models/MODEL_CARD.md)


def load_test_module(name: str) -> ModuleType:
    """test/<name>.py (the reference oracle: `oracle`, `oracle_backend`) loaded by its path, once: the test folder is
    not a package (and `test` is a stdlib one), and nothing is put on sys.path."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "test" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# ------------------------------------------------------------------------------------------------------ timing
def times(fn: Callable[[], Any], runs: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
          ) -> list[float]:
    """Seconds (of `clock`: wall by default, time.thread_time for CPU) of `runs` calls of fn() after `warmup` calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = clock()
        fn()
        out.append(clock() - start)
    return out


def paired(fn_a: Callable[[], Any], fn_b: Callable[[], Any], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds of fn_a() and fn_b() called alternately `runs` times each after one warm-up each, so load from
    other processes hits both alike."""
    fn_a(), fn_b()
    a, b = [], []
    for _ in range(runs):
        for fn, out in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return a, b


def stats(values: Sequence[float], scale: float = 1.0) -> dict[str, float | None]:
    """median / p95 / p99 / min / mean of `values` times `scale` (1e3: seconds -> ms); None for no values."""
    if len(values) == 0:
        return dict.fromkeys(("median", "p95", "p99", "min", "mean"))
    v = np.asarray(values, np.float64) * scale
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95)), "p99": float(np.percentile(v, 99)),
            "min": float(v.min()), "mean": float(v.mean())}


def time_parts(backend: Any, parts: Sequence[str]) -> dict[str, float]:
    """Make the backend's methods `parts` (e.g. encode_image, decode) add their wall seconds to the returned dict
    (on this instance only; zero the dict between frames)."""
    spent = dict.fromkeys(parts, 0.0)
    for name in parts:
        def timed(*args: Any, _method: Callable = getattr(backend, name), _name: str = name, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = _method(*args, **kwargs)
            spent[_name] += time.perf_counter() - start
            return out
        setattr(backend, name, timed)
    return spent


# ------------------------------------------------------------------------------------------------------ arguments
def parse_args(parser: argparse.ArgumentParser, quick: dict[str, Any]) -> argparse.Namespace:
    """The parser's arguments plus `--quick`: the defaults in `quick` (small sizes: a run that proves the bench
    works, not a figure to record); arguments given on the command line still win."""
    parser.add_argument("--quick", action="store_true", help="small sizes: " + ", ".join(
        f"{k.replace('_', '-')}={v}" for k, v in quick.items()))
    if "--quick" in sys.argv[1:]:
        parser.set_defaults(**quick)
    return parser.parse_args()


def description(doc: str) -> dict[str, Any]:
    """ArgumentParser keywords that show a bench's module docstring as its --help."""
    return {"description": doc, "formatter_class": argparse.RawDescriptionHelpFormatter}


# ------------------------------------------------------------------------------------------------------ results
def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def command_line() -> str:
    """How this bench was started: `python -m bench.<name> <arguments>`."""
    return shlex.join(["python", "-m", f"bench.{Path(sys.argv[0]).stem}", *sys.argv[1:]])


def machine_header() -> dict[str, Any]:
    """Which machine, when, what code, which command: the head of every result."""
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": _cpu_model(),
            "arch": platform.machine(), "cores": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "python": platform.python_version(),
            "torch": _version("torch"), "onnxruntime": _version("onnxruntime"), "numpy": _version("numpy"),
            "git_commit": _git_commit(), "command": command_line()}


def header_line(header: dict[str, Any]) -> str:
    """The header as one markdown line."""
    load = f"load average {header['load_average'][0]}"
    if "load_average_end" in header:
        load += f" -> {header['load_average_end'][0]}"
    versions = ", ".join(f"{k} {header[k]}" for k in ("torch", "onnxruntime", "numpy") if header.get(k))
    return (f"{header['date']}, {header['cpu']} ({header['arch']}, {header['cores']} cores, {load}), "
            f"Python {header['python']}, {versions}, commit {header['git_commit']}; command `{header['command']}`")


class Report:
    """A bench's result: markdown printed as it comes and kept, a JSON payload (`data`), and write(), which puts both
    under the machine header into <out>/<name>.json and <name>.md."""

    def __init__(self, name: str, title: str | None = None, out: str | os.PathLike = OUT) -> None:
        self.name, self.title, self.out = name, title or name, Path(out)
        self.header = machine_header()
        self.lines: list[str] = []
        self.data: dict[str, Any] = {}

    def print(self, *lines: str) -> None:
        """Print lines now (flushed) and keep them for the .md."""
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def table(self, *columns: str) -> None:
        self.print("| " + " | ".join(columns) + " |", "|" + "---|" * len(columns))

    def row(self, *cells: Any) -> None:
        self.print("| " + " | ".join(str(c) for c in cells) + " |")

    def write(self, body: str | None = None) -> Path:
        """Write <name>.json ({"header": ..., **data}) and <name>.md (title, header line, `body` or the printed
        lines); returns the .json path."""
        self.header["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{self.name}.json"
        path.write_text(json.dumps({"header": self.header, **self.data}, indent=1, default=str) + "\n")
        text = body if body is not None else "\n".join(self.lines) + "\n"
        (self.out / f"{self.name}.md").write_text(f"# {self.title}\n\n{header_line(self.header)}\n\n{text}")
        return path
