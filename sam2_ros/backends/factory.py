"""create_backend: one call from settings to a ready InferenceBackend, with a logged fallback when one is missing.

`auto` (the default) picks the fastest backend this machine has: TensorRT where it and a CUDA GPU exist, else torch
on the GPU with its fast path (half precision, torch.compile + CUDA graphs, warmed up here), else ONNX Runtime on
the CPU (faster than torch there, see docs/BENCHMARKS.md), else torch. An exported backend exports the model to ONNX
once into the cache; later starts reuse it.
Fallback of a named backend: `tensorrt` without TensorRT or without a CUDA GPU -> torch on CUDA when there is a GPU,
else ONNX Runtime on CPU when installed, else torch. `onnxruntime` without the package -> torch. A CUDA device
without a GPU -> CPU (the node refuses that instead, see missing_device); a GPU ordinal the machine lacks is a
ValueError. Each fallback is logged once per process (logging.warning).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from sam2_ros.backends.base import InferenceBackend
from sam2_ros.backends.cache import atomic_write, cache_key, default_cache_dir
from sam2_ros.backends.exported import strip_for_glue
from sam2_ros.export.onnx_export import (DEFAULT_OPSET, EXPORT_FORMAT, METADATA_FILE, config_fingerprint,
                                         export_parts, read_metadata, state_hash, verify_export)
from sam2_ros.export.parts import PART_SPECS
from sam2_ros.model.build import build_sam2
from sam2_ros.model.checkpoint import weights_hash
from sam2_ros.model.sam2 import Sam2Model

logger = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
RANDOM_SEED = 0  # random weights (no checkpoint) are seeded, so a cached export fits the next start too
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """logging.warning, at most once per distinct message per process."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _auto_backend(device: torch.device) -> str:
    """What `auto` runs on this device: tensorrt, torch (CUDA) or onnxruntime (CPU), whichever is there."""
    from sam2_ros.backends.onnxruntime_backend import onnxruntime_unavailable
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    if device.type == "cuda":
        reason = tensorrt_unavailable(device)
        choice, why = ("tensorrt", "TensorRT and a CUDA GPU") if reason is None else ("torch", reason)
    else:
        reason = onnxruntime_unavailable()
        choice, why = ("onnxruntime", "faster than torch on a CPU") if reason is None else ("torch", reason)
    logger.info("backend auto: %s on %s (%s)", choice, device, why)
    return choice


def missing_device(device: str | torch.device) -> str | None:
    """Why a named torch device is not on this machine, or None when it is (always for auto and cpu). The node
    refuses to configure on such a device rather than run elsewhere than it was told."""
    if str(device) in ("auto", "cpu"):
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        return f"device {device!r} is not a torch device ({err})"
    if dev.type != "cuda":
        return None
    if not torch.cuda.is_available():
        return (f"device {dev} was requested but torch sees no CUDA GPU (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda or 'none'})")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        return f"device {dev} was requested but this machine has {count} CUDA device(s): cuda:0..cuda:{count - 1}"
    return None


def resolve_backend(name: str, device: str | torch.device) -> tuple[str, torch.device]:
    """The backend and device that will actually run for the wanted ones (warns once about each fallback; a GPU
    ordinal this machine does not have is a ValueError)."""
    from sam2_ros.backends.onnxruntime_backend import onnxruntime_unavailable
    from sam2_ros.backends.tensorrt_backend import tensorrt_unavailable

    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    device = torch.device("cuda" if str(device) == "auto" and torch.cuda.is_available() else
                          "cpu" if str(device) == "auto" else device)
    if device.type == "cuda" and torch.cuda.is_available() and missing_device(device):
        raise ValueError(missing_device(device))  # no fallback can mean the GPU the caller named
    if device.type == "cuda" and not torch.cuda.is_available():
        warn_once(f"device {device} requested but torch sees no CUDA GPU; running on cpu")
        device = torch.device("cpu")
    if name == "auto":
        return _auto_backend(device), device
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


def ensure_export(model: Sam2Model, weights: str, cache_root: str | os.PathLike, opset: int = DEFAULT_OPSET,
                  precision: str = "fp32") -> Path:
    """ONNX export of every part for this model, cached under cache_root/onnx keyed by config, image size, weights
    hash, torch version, opset and precision (fp16/bf16: mixed-precision graphs, with the pass's recipe); a
    directory whose files fail their checksums is exported again."""
    from sam2_ros.export.precision import RECIPE

    cfg = model.config
    parts = {"config": cfg.name, "fingerprint": config_fingerprint(model), "image_size": cfg.image_size,
             "weights": weights, "torch": torch.__version__, "opset": opset, "format": EXPORT_FORMAT}
    if precision != "fp32":  # fp32 keys are unchanged by the precision option
        parts.update(precision=precision, precision_recipe=RECIPE)
    key = cache_key(parts)
    suffix = "" if precision == "fp32" else f"-{precision}"
    target = Path(cache_root) / "onnx" / f"{cfg.name}-{cfg.image_size}{suffix}-{key}"
    problem = verify_export(target) if target.exists() else "not exported yet"
    if problem is None:
        logger.info("using cached ONNX export %s", target)
        return target
    if target.exists() and _repair_export(model, target, weights, opset, problem, precision):
        return target
    logger.warning("exporting %s@%d to ONNX (%s); cached afterwards in %s", cfg.name, cfg.image_size, problem, target)
    start = time.perf_counter()
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_parts(model, tmp, weights_hash=weights, opset=opset, progress=logger.info, precision=precision)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished the same export first: use theirs if it is sound
        shutil.rmtree(tmp, ignore_errors=True)
        if verify_export(target) is not None:
            raise
    logger.warning("exported %s@%d to ONNX in %.1f s; later starts reuse %s", cfg.name, cfg.image_size,
                   time.perf_counter() - start, target)
    return target


def _repair_export(model: Sam2Model, target: Path, weights: str, opset: int, problem: str,
                   precision: str = "fp32") -> bool:
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
    fresh = export_parts(model, tmp, weights_hash=weights, parts=broken, opset=opset, progress=logger.warning,
                         precision=precision)
    for name in broken:
        os.replace(tmp / fresh["parts"][name]["file"], target / fresh["parts"][name]["file"])
        meta["parts"][name] = fresh["parts"][name]
    atomic_write(target / METADATA_FILE, json.dumps(meta, indent=1, sort_keys=True).encode())
    shutil.rmtree(tmp, ignore_errors=True)
    return verify_export(target) is None


def default_precision(name: str, device: torch.device) -> str:
    """precision "auto": fp16 for TensorRT, bf16 (fp16 where the GPU lacks bf16) for torch on CUDA, fp32 else."""
    if name == "tensorrt":
        return "fp16"
    if name == "torch" and device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _torch_backend(model: Sam2Model, precision: str, compile: bool | str, max_objects: int) -> InferenceBackend:
    """TorchBackend; a compiled one is warmed up here (every shape that occurs), or run eagerly if that fails."""
    from sam2_ros.backends.torch_backend import TorchBackend

    if not compile:
        return TorchBackend(model, precision=precision)
    backend = TorchBackend(model, precision=precision, compile=compile)
    start = time.perf_counter()
    try:
        backend.warm_up(max_objects)
    except Exception as err:  # a compiler problem must not stop the node: the eager model computes the same
        warn_once(f"torch.compile warm-up failed ({type(err).__name__}: {err}); running the torch backend eagerly")
        return TorchBackend(model, precision=precision)
    logger.warning("torch.compile(%s) warm-up took %.1f s", compile, time.perf_counter() - start)
    return backend


def _build_model(model_config: str, checkpoint: str | None, image_size: int | None,
                 device: torch.device | str) -> Sam2Model:
    """build_sam2; random weights (no checkpoint) are seeded, so every start gets the same ones."""
    if checkpoint is not None:
        return build_sam2(model_config, checkpoint=checkpoint, image_size=image_size, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return build_sam2(model_config, checkpoint=None, image_size=image_size, device=device)


def create_backend(name: str = "auto", model_config: str = "sam2.1_hiera_t", checkpoint: str | None = None,
                   image_size: int | None = None, device: str | torch.device = "auto", precision: str | None = None,
                   cache_dir: str | os.PathLike | None = None, export_dir: str | os.PathLike | None = None,
                   max_objects: int = 8, compile: bool | str | None = None,
                   threads: int | None = None) -> InferenceBackend:
    """Build the model and wrap it in the wanted backend (or the best available one; see the module doc).

    name: auto | torch | onnxruntime | tensorrt. device: auto | cpu | cuda | cuda:N. precision: fp32 | fp16 |
    bf16 | None/"auto" (`default_precision`; ONNX Runtime runs fp32 only). cache_dir: ONNX exports, ONNX
    Runtime graphs and TensorRT engines (default: $SAM2_ROS_CACHE or ~/.cache/sam2_ros). export_dir: use this
    `python -m sam2_ros.export` output instead of exporting. max_objects: objects per TensorRT call (its
    profile; more are run in chunks) and the largest batch a compiled torch backend is warmed up for.
    compile: torch.compile mode of the torch backend on CUDA (True = default mode, "reduce-overhead" = CUDA
    graphs); None = "reduce-overhead" when `auto` chose torch on CUDA, else off. threads: ONNX Runtime
    intra-op threads (None: torch's thread count). The returned backend's `.name` is the one that runs.
    """
    from sam2_ros.backends.tensorrt_backend import PRECISIONS

    if precision == "auto":
        precision = None
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} or 'auto', got {precision!r}")
    wanted = name
    name, dev = resolve_backend(name, device)
    precision = precision or default_precision(name, dev)
    if name == "torch":
        if compile is None:
            compile = "reduce-overhead" if wanted == "auto" and dev.type == "cuda" else False
        model = _build_model(model_config, checkpoint, image_size, dev)
        return _torch_backend(model, precision, compile, max_objects)
    model = _build_model(model_config, checkpoint, image_size, "cpu")
    weights = weights_hash(checkpoint) if checkpoint else state_hash(model)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    onnx_precision = "fp32"
    if name == "tensorrt":  # TensorRT >= 10.12 / 11 builds half engines from a mixed-precision export
        from sam2_ros.backends.tensorrt_plan import precision_plan, tensorrt_version

        version = tensorrt_version()  # None: TensorRTBackend says why it cannot run
        onnx_precision = precision_plan(version, precision).onnx_precision if version else "fp32"
    if export_dir is None:
        export_dir = ensure_export(model, weights, root, precision=onnx_precision)
    else:
        problem = verify_export(export_dir)
        if problem:
            raise ValueError(f"export directory {export_dir}: {problem}")
        if read_metadata(export_dir).get("weights_hash") != weights:
            raise ValueError(f"export directory {export_dir} was made from other weights than {checkpoint or 'these'}")
    glue = strip_for_glue(model).to(dev)  # the exported graphs replace the big submodules
    if name == "onnxruntime":
        from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        if precision != "fp32":
            warn_once(f"precision {precision} is not supported by the onnxruntime backend; running fp32")
        backend = OnnxRuntimeBackend(export_dir, glue, dev, cache_dir=root / "onnxruntime", threads=threads)
        start = time.perf_counter()
        backend.warm_up()  # sessions now (optimised graphs cached too), not on the first frames of a stream
        logger.info("ONNX Runtime sessions ready in %.1f s", time.perf_counter() - start)
        return backend
    from sam2_ros.backends.tensorrt_backend import ShapeLimits, TensorRTBackend

    return TensorRTBackend(export_dir, glue, dev, precision=precision, cache_dir=root / "tensorrt",
                           limits=ShapeLimits(max_objects=max_objects))


__all__ = ["BACKENDS", "create_backend", "default_precision", "ensure_export", "missing_device", "resolve_backend",
           "warn_once"]
