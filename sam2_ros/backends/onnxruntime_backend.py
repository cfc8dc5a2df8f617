"""ONNX Runtime backend: the exported graphs run in ONNX Runtime sessions, the glue stays torch.

On CPU this is the plain accelerated path. With onnxruntime-gpu and device cuda the CUDA execution provider is used,
but tensors still pass through host memory between parts (numpy I/O); on a GPU prefer TensorRT or torch.
Each session's optimised graph is cached (ONNX Runtime's own offline-optimised model file), keyed by the ONNX file
hash + ONNX Runtime version + provider/device; a corrupt cached file is detected (checksum or load failure) and rebuilt.
"""
from __future__ import annotations

import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2_ros.backends.cache import ArtifactCache
from sam2_ros.backends.exported import ExportedBackend, bind_inputs
from sam2_ros.export.onnx_export import read_metadata
from sam2_ros.export.parts import PART_SPECS
from sam2_ros.model.sam2 import Sam2Model

logger = logging.getLogger(__name__)


def onnxruntime_unavailable() -> str | None:
    """None when onnxruntime imports, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        return f"onnxruntime is not installed ({err})"
    return None


def _providers(device: torch.device) -> list[str]:
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _device_name(device: torch.device) -> str:
    """What an optimised graph depends on besides the runtime: the CPU type, or the GPU model."""
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    model = platform.processor()
    try:  # Linux: the CPU model name (platform.processor() is often empty there)
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{platform.machine()}-{model or 'cpu'}"


class OnnxRuntimeBackend(ExportedBackend):
    """InferenceBackend running the exported graphs of `export_dir` in ONNX Runtime (fp32)."""

    name = "onnxruntime"

    def __init__(self, export_dir: str | os.PathLike, glue: Sam2Model, device: torch.device | str = "cpu",
                 cache_dir: str | os.PathLike | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(glue, read_metadata(export_dir), device)
        self.export_dir = Path(export_dir)
        self.providers = _providers(self.device)
        if self.device.type == "cuda" and self.providers[0] != "CUDAExecutionProvider":
            logger.warning("onnxruntime has no CUDA execution provider here; its graphs run on the CPU")
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.cache = ArtifactCache(cache_dir) if cache_dir is not None else None
        self.runtime_version = ort.__version__
        self._sessions: dict[str, Any] = {}
        self._inputs: dict[str, list[str]] = {}  # graph -> its session's input names

    def _options(self, optimized_path: Path | None = None) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        if optimized_path is not None:
            # Offline optimisation for the cache: extended level keeps the file free of hardware-specific layouts.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            opts.optimized_model_filepath = str(optimized_path)
        else:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return opts

    def cache_parts(self, graph: str) -> dict[str, Any]:
        """Key parts of a graph's cached optimised model."""
        return {"onnx_sha256": self.meta["parts"][graph]["sha256"], "onnxruntime": self.runtime_version,
                "providers": self.providers, "device": _device_name(self.device), "precision": "fp32"}

    def session(self, graph: str) -> Any:
        """The graph's InferenceSession, created on first use (from the optimised-model cache when there is one)."""
        found = self._sessions.get(graph)
        if found is not None:
            return found
        import onnxruntime as ort

        source = self.export_dir / self.meta["parts"][graph]["file"]
        if self.cache is None:
            sess = ort.InferenceSession(str(source), self._options(), providers=self.providers)
        else:
            def build(tmp: Path) -> None:
                ort.InferenceSession(str(source), self._options(tmp), providers=self.providers)

            def load(path: Path) -> Any:
                return ort.InferenceSession(str(path), self._options(), providers=self.providers)

            sess = self.cache.get_or_build("ort", self.cache_parts(graph), ".onnx", build, load,
                                           what=f"ONNX Runtime graph {graph}")
        self._sessions[graph] = sess
        self._inputs[graph] = [i.name for i in sess.get_inputs()]
        return sess

    def warm_up(self, graphs: Sequence[str] | None = None) -> None:
        """Create the sessions now (otherwise each is created when first used)."""
        for graph in graphs or list(PART_SPECS):
            self.session(graph)

    def _run(self, graph: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        session = self.session(graph)
        feed = {name: np.ascontiguousarray(t.detach().cpu().numpy())  # the graph's own inputs only
                for name, t in bind_inputs(graph, inputs, self._inputs[graph]).items()}
        outputs = session.run(list(PART_SPECS[graph].outputs), feed)
        return [torch.from_numpy(o).to(self.device) for o in outputs]


__all__ = ["OnnxRuntimeBackend", "onnxruntime_unavailable"]
