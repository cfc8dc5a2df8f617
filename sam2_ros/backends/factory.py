"""create_backend: one call from settings to a ready InferenceBackend, with a logged fallback when one is missing.

Fallback: `tensorrt` without TensorRT or without a CUDA GPU -> torch on CUDA when there is a GPU, else ONNX Runtime on
CPU (faster than torch on CPU, see docs/BENCHMARKS.md) when installed, else torch. `onnxruntime` without the package
-> torch. A CUDA device without a GPU -> CPU. Each fallback is logged once per process (logging.warning).
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sam2_ros.backends.cache import atomic_write, cache_key, default_cache_dir
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.export.onnx_export import (DEFAULT_OPSET, EXPORT_FORMAT, METADATA_FILE, config_fingerprint,
                                         export_parts, read_metadata, state_hash, verify_export)
from sam2_ros.export.parts import PART_SPECS
from sam2_ros.model.build import build_sam2
from sam2_ros.model.checkpoint import weights_hash
from sam2_ros.model.sam2 import Sam2Model

logger = logging.getLogger(__name__)
BACKENDS = ("torch", "onnxruntime", "tensorrt")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """logging.warning, at most once per distinct message per process."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def resolve_backend(name: str, device: str | torch.device) -> tuple[str, torch.device]:
    """The backend and device that will actually run for the wanted ones (warns once about each fallback)."""
    from sam2_ros.backends.onnxruntime_backend import onnxruntime_unavailable
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    device = torch.device("cuda" if str(device) == "auto" and torch.cuda.is_available() else
                          "cpu" if str(device) == "auto" else device)
    if device.type == "cuda" and not torch.cuda.is_available():
        warn_once(f"device {device} requested but torch sees no CUDA GPU; running on cpu")
        device = torch.device("cpu")
    if name == "tensorrt" and device.type != "cuda" and torch.cuda.is_available():
        device = torch.device("cuda")  # TensorRT implies the GPU
    if name == "tensorrt":
        reason = tensorrt_unavailable(device)
        if reason:
            if device.type == "cuda":
                fallback = "torch"
            else:
                fallback = "onnxruntime" if onnxruntime_unavailable() is None else "torch"
            warn_once(f"backend 'tensorrt' is not available: {reason}; using {fallback} on {device} instead")
            name = fallback
    if name == "onnxruntime":
        reason = onnxruntime_unavailable()
        if reason:
            warn_once(f"backend 'onnxruntime' is not available: {reason}; using torch on {device} instead")
            name = "torch"
    return name, device


def ensure_export(model: Sam2Model, weights: str, cache_root: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """ONNX export of every part for this model, cached under cache_root/onnx keyed by config, image size, weights
    hash, torch version and opset; a directory whose files fail their checksums is exported again."""
    cfg = model.config
    key = cache_key({"config": cfg.name, "fingerprint": config_fingerprint(model), "image_size": cfg.image_size,
                     "weights": weights, "torch": torch.__version__, "opset": opset, "format": EXPORT_FORMAT})
    target = Path(cache_root) / "onnx" / f"{cfg.name}-{cfg.image_size}-{key}"
    problem = verify_export(target) if target.exists() else "not exported yet"
    if problem is None:
        logger.info("using cached ONNX export %s", target)
        return target
    if target.exists() and _repair_export(model, target, weights, opset, problem):
        return target
    logger.warning("exporting %s@%d to ONNX (%s); cached afterwards in %s", cfg.name, cfg.image_size, problem, target)
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_parts(model, tmp, weights_hash=weights, opset=opset, progress=logger.warning)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished the same export first: use theirs if it is sound
        shutil.rmtree(tmp, ignore_errors=True)
        if verify_export(target) is not None:
            raise
    return target


def _repair_export(model: Sam2Model, target: Path, weights: str, opset: int, problem: str) -> bool:
    """Re-export only the parts of a cached export whose files fail their checksum; False if that cannot help."""
    try:
        meta = read_metadata(target)
    except ValueError:
        return False
    broken = [name for name in PART_SPECS if verify_export(target, [name]) is not None]
    if not broken or meta.get("weights_hash") != weights:
        return False
    logger.warning("cached ONNX export %s: %s; re-exporting %s", target, problem, ", ".join(broken))
    tmp = target.with_name(f"{target.name}.{os.getpid()}.repair")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh = export_parts(model, tmp, weights_hash=weights, parts=broken, opset=opset, progress=logger.warning)
    for name in broken:
        os.replace(tmp / fresh["parts"][name]["file"], target / fresh["parts"][name]["file"])
        meta["parts"][name] = fresh["parts"][name]
    atomic_write(target / METADATA_FILE, json.dumps(meta, indent=1, sort_keys=True).encode())
    shutil.rmtree(tmp, ignore_errors=True)
    return verify_export(target) is None


def _torch_backend(model: Sam2Model, precision: str, device: torch.device, **options: Any) -> Any:
    """TorchBackend, passing precision/compile options when it accepts them (the CUDA fast path)."""
    from sam2_ros.backends.torch_backend import TorchBackend

    accepted = inspect.signature(TorchBackend).parameters
    kwargs = {k: v for k, v in {"precision": precision, **options}.items() if k in accepted}
    if precision != "fp32" and "precision" not in accepted:
        warn_once(f"precision {precision} is not supported by the torch backend; running fp32")
    return TorchBackend(model, **kwargs)


def create_backend(name: str = "torch", model_config: str = "sam2.1_hiera_t", checkpoint: str | None = None,
                   image_size: int | None = None, device: str | torch.device = "cpu", precision: str | None = None,
                   cache_dir: str | os.PathLike | None = None, export_dir: str | os.PathLike | None = None,
                   max_objects: int = 8, compile: bool = False, threads: int | None = None) -> Any:
    """Build the model and wrap it in the wanted backend (or the best available one; see the module doc).

    name: torch | onnxruntime | tensorrt. precision: fp32 | fp16 | bf16 | None/"auto" (the backend's default:
    fp16 for TensorRT, fp32 otherwise; ONNX Runtime runs fp32 only). cache_dir: ONNX exports, ONNX Runtime graphs
    and TensorRT engines (default: $SAM2_ROS_CACHE or ~/.cache/sam2_ros). export_dir: use this `python -m sam2_ros.export` output instead of exporting.
    max_objects: objects per TensorRT call (its profile). compile: torch.compile in the torch backend (CUDA).
    The returned object has `.name` set to the backend that actually runs.
    """
    from sam2_ros.backends.tensorrt_backend import PRECISIONS

    if precision == "auto":
        precision = None
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} or 'auto', got {precision!r}")
    name, dev = resolve_backend(name, device)
    if name == "torch":
        model = build_sam2(model_config, checkpoint=checkpoint, image_size=image_size, device=dev)
        backend = _torch_backend(model, precision or "fp32", dev, compile=compile)
        backend.name = "torch"
        return backend
    model = build_sam2(model_config, checkpoint=checkpoint, image_size=image_size, device="cpu")
    weights = weights_hash(checkpoint) if checkpoint else state_hash(model)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if export_dir is None:
        export_dir = ensure_export(model, weights, root)
    else:
        problem = verify_export(export_dir)
        if problem:
            raise ValueError(f"export directory {export_dir}: {problem}")
        if read_metadata(export_dir).get("weights_hash") != weights:
            raise ValueError(f"export directory {export_dir} was made from other weights than {checkpoint or 'these'}")
    glue = strip_for_glue(model).to(dev)  # the exported graphs replace the big submodules
    if name == "onnxruntime":
        from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        if precision not in (None, "fp32"):
            warn_once(f"precision {precision} is not supported by the onnxruntime backend; running fp32")
        return OnnxRuntimeBackend(export_dir, glue, dev, cache_dir=root / "onnxruntime", threads=threads)
    from sam2_ros.backends.tensorrt_backend import ShapeLimits, TensorRTBackend

    return TensorRTBackend(export_dir, glue, dev, precision=precision or "fp16", cache_dir=root / "tensorrt",
                           limits=ShapeLimits(max_objects=max_objects))


__all__ = ["BACKENDS", "create_backend", "ensure_export", "resolve_backend", "warn_once"]
