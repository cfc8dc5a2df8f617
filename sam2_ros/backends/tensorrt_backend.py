"""TensorRT backend (TensorRT 10 and 11 Python API): engines built from the exported ONNX graphs, run on torch CUDA
tensors.

- Precision: fp16 (default), bf16 or fp32; graph I/O stays float32/int32 as exported. `precision_plan` picks how:
  TensorRT >= 10.12 (and 11, where it is the only mode) builds the strongly typed mixed-precision export
  (`python -m sam2_ros.export --precision fp16|bf16`: half weights and matmuls/convolutions, the rest fp32);
  TensorRT < 10.12 (Jetson's JetPack) builds the fp32 export with the FP16/BF16 builder flag. fp32 engines are
  built with TF32 off (true fp32, comparable with torch's fp32 matmuls when TF32 is off there too).
- Addresses: TensorRT needs >= 256-byte aligned tensor addresses; an input view that is not (a chunk of objects,
  a row slice) is copied to aligned memory, and a refused `set_tensor_address` raises with the tensor's name.
- Memory: all execution contexts share one device-memory allocation (the largest engine's need), since the parts
  run one after another on one stream.
- Inputs are bound by the graph's own list (`num_io_tensors` / `get_tensor_mode`; the exporter drops unused
  inputs), and profiles are made for the network's own inputs (`network.get_input`).
- Optimisation profiles (`profile_shapes`) cover 1..max objects, 1..max points, 1..max memory frames and
  0..max pointer tokens, tuned for a tracked frame (1 object, 1 point); a batch larger than max objects is run in
  chunks.
- Engines live in an ArtifactCache keyed by ONNX hash + build recipe + TensorRT version + GPU name/capability +
  precision + profile; a stale key builds a new engine, a corrupt file (checksum, or deserialisation fails) is
  rebuilt. One timing cache per TensorRT version + GPU speeds up rebuilds. Builds log their phases.
- Inference: engines run on the backend's own CUDA stream (TensorRT synchronises on the legacy default stream),
  ordered after the caller's stream and back, with torch-allocated inputs/outputs marked as used there; parts
  chain on the GPU with no host round trip.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sam2_ros.backends.cache import ArtifactCache, atomic_write, cache_key
from sam2_ros.backends.exported import ExportedBackend, bind_inputs
from sam2_ros.backends.tensorrt_plan import (ALIGNMENT, PRECISIONS, PrecisionPlan, aligned, bind_address, is_aligned,
                                             precision_plan, tensorrt_version_problem)
from sam2_ros.export.onnx_export import read_metadata
from sam2_ros.export.parts import PART_SPECS, PartSpec
from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import Sam2Model

logger = logging.getLogger(__name__)
BUILD_RECIPE = 3  # bump when _build changes what an engine is (cache keys include it); 2: TF32 off for fp32;
# 3: precision plan (strongly typed mixed-precision graphs or the weak-typing flag)
Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeLimits:
    """Largest sizes the engines accept; `opt_*` are the sizes TensorRT tunes kernels for."""

    max_objects: int = 8  # B per call (bigger batches are chunked)
    max_points: int = 16  # clicks (+ box corners) of one prompt
    max_cond_frames: int = 8  # prompted frames kept per object (TrackerOptions.max_cond_frames)
    opt_objects: int = 1  # a tracked frame of one object ...
    opt_points: int = 1  # ... has one (padding) point

    def __post_init__(self) -> None:
        if min(self.max_objects, self.max_points, self.max_cond_frames, self.opt_objects, self.opt_points) < 1:
            raise ValueError(f"shape limits must be >= 1: {self}")
        if self.opt_objects > self.max_objects or self.opt_points > self.max_points:
            raise ValueError(f"opt sizes must not exceed max sizes: {self}")


def memory_limits(config: Sam2Config, limits: ShapeLimits) -> tuple[int, int, int, int]:
    """(max memory frames, opt memory frames, max pointer tokens, opt pointer tokens) for the tracker's memory.

    A frame attends to all kept prompted frames + num_maskmem-1 previous frames, and to the pointers of the
    prompted frames + max_obj_ptrs_in_encoder-1 previous frames, each split into C/D tokens.
    """
    split = config.hidden_dim // config.mem_dim
    max_frames = limits.max_cond_frames + config.num_maskmem - 1
    max_ptrs = (limits.max_cond_frames + config.max_obj_ptrs_in_encoder - 1) * split
    opt_ptrs = config.max_obj_ptrs_in_encoder * split if config.use_obj_ptrs_in_encoder else 0
    return max_frames, config.num_maskmem, max_ptrs, opt_ptrs


def profile_shapes(spec: PartSpec, config: Sam2Config, limits: ShapeLimits) -> dict[str, tuple[Shape, Shape, Shape]]:
    """(min, opt, max) shape of every input of a graph with dynamic axes; {} for a fully static graph."""
    if not spec.dynamic_axes:
        return {}
    s, h, c, d = config.image_size, config.feat_size, config.hidden_dim, config.mem_dim
    hw = config.memory_tokens  # tokens per memory frame: h*h (SAM 2), 512 (EdgeTAM)
    max_frames, opt_frames, max_ptrs, opt_ptrs = memory_limits(config, limits)
    # Per axis name: (min, opt, max).
    axis = {"objects": (1, limits.opt_objects, limits.max_objects), "points": (1, limits.opt_points, limits.max_points),
            "memory_tokens": (hw, opt_frames * hw, max_frames * hw), "pointer_tokens": (0, opt_ptrs, max_ptrs)}
    static = {"image_embed": (c, h, h), "feat_s0": (c // 8, 4 * h, 4 * h), "feat_s1": (c // 4, 2 * h, 2 * h),
              "point_coords": (None, 2), "point_labels": (None,), "mask_input": (1, 4 * h, 4 * h),
              "curr": (c, h, h), "curr_pos": (c, h, h), "memory": (None, d), "memory_pos": (None, d),
              "obj_ptrs": (None, d), "obj_ptr_pos": (None, d), "pix_feat": (c, h, h),
              "high_res_masks": (1, s, s), "object_score_logits": (1,)}
    shapes = {}
    for name in spec.inputs:
        axes = spec.dynamic_axes.get(name, {})
        dims = [None] + list(static[name])  # axis 0 is always the object batch here
        triple = []
        for k in range(3):
            triple.append(tuple(axis[axes[i]][k] if i in axes else dims[i] for i in range(len(dims))))
        shapes[name] = tuple(triple)  # type: ignore[assignment]
    return shapes


def tensorrt_unavailable(device: torch.device | str = "cuda") -> str | None:
    """None when TensorRT >= 10 and a CUDA device are usable, else why not."""
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    if torch.device(device).type != "cuda":
        return f"device is {device}, TensorRT needs a CUDA device"
    try:
        import tensorrt as trt
    except ImportError as err:
        return f"the tensorrt Python package (10.x or 11.x) is not installed ({err})"
    return tensorrt_version_problem(trt.__version__)


def engine_key_parts(onnx_sha256: str, identity: dict[str, Any], plan: PrecisionPlan,
                     profile: dict[str, tuple[Shape, Shape, Shape]], workspace_gib: float | None) -> dict[str, Any]:
    """Everything an engine depends on (its cache key): the graph, the build recipe, TensorRT + GPU, the precision
    recipe (plan), optimisation profile and workspace."""
    return {"onnx_sha256": onnx_sha256, "recipe": BUILD_RECIPE, **identity, "precision": plan.precision,
            "precision_plan": asdict(plan), "profile": profile, "workspace_gib": workspace_gib}


def gpu_identity(device: torch.device) -> dict[str, Any]:
    """What an engine is specific to: the GPU model and its compute capability."""
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def _keep_sensitive_layers_fp32(trt: Any, network: Any, config: Any) -> None:
    """Weak typing (TensorRT < 10.12 with FP16/BF16): normalization and softmax layers computed and written in
    fp32, as the strongly typed graphs have them (half LayerNorm statistics overflow)."""
    sensitive = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in sensitive:
            layer.precision = trt.float32
            for k in range(layer.num_outputs):
                layer.set_output_type(k, trt.float32)
    config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)


def _device_memory_size(engine: Any) -> int:
    """Activation memory one execution context of an engine needs (TensorRT 10.1+: the _v2 name; 11 only has it)."""
    size = getattr(engine, "device_memory_size_v2", None)
    return int(engine.device_memory_size if size is None else size)


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int8: torch.int8,
             trt.bool: torch.bool, trt.int64: torch.int64, trt.bfloat16: torch.bfloat16}
    return table[dtype]


def _progress_monitor(trt: Any, label: str) -> Any:
    """An IProgressMonitor that logs top-level build phases and a step count (throttled to one line per 5 s)."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}
            self.last = 0.0

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            if parent_phase is None:
                logger.info("TensorRT %s: %s (%d steps)", label, phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            now = time.monotonic()
            if now - self.last > 5.0:
                self.last = now
                logger.info("TensorRT %s: %s %d/%d", label, phase_name, step + 1, self.steps.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return Monitor()


class TensorRTBackend(ExportedBackend):
    """InferenceBackend running TensorRT engines on one CUDA device; glue in torch on the same device."""

    name = "tensorrt"

    def __init__(self, export_dir: str | os.PathLike, glue: Sam2Model, device: torch.device | str = "cuda",
                 precision: str = "fp16", cache_dir: str | os.PathLike | None = None,
                 limits: ShapeLimits | None = None, workspace_gib: float | None = None) -> None:
        reason = tensorrt_unavailable(device)
        if reason:
            raise RuntimeError(f"TensorRT backend unavailable: {reason}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        import tensorrt as trt

        device = torch.device(device)
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        meta = read_metadata(export_dir)
        self.plan = precision_plan(trt.__version__, precision)
        exported = meta.get("precision", "fp32")
        if exported != self.plan.onnx_precision:
            raise ValueError(f"TensorRT {trt.__version__} builds {precision} engines from a {self.plan.onnx_precision} "
                             f"export, but {export_dir} is {exported}: export with --precision "
                             f"{self.plan.onnx_precision}")
        super().__init__(glue.to(device), meta, device)
        self.trt = trt
        self.export_dir = Path(export_dir)
        self.precision = precision
        self.limits = limits or ShapeLimits()
        self.workspace_gib = workspace_gib
        self.trt_logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.trt_logger)
        root = Path(cache_dir) if cache_dir is not None else self.export_dir / "tensorrt"
        self.cache = ArtifactCache(root)
        self.identity = {"tensorrt": trt.__version__, **gpu_identity(device)}
        self.timing_cache_path = root / f"timing-{cache_key(self.identity)}.cache"
        self._dummy: torch.Tensor | None = None
        self.engines: dict[str, Any] = {}
        self.contexts: dict[str, Any] = {}
        self.inputs: dict[str, list[str]] = {}  # graph -> the engine's input tensor names
        self.dtypes: dict[str, dict[str, torch.dtype]] = {}  # graph -> tensor name -> dtype (asked once)
        with torch.cuda.device(device):
            self.stream = torch.cuda.Stream(device)  # TensorRT's own: it synchronises on the legacy default one
            for graph in PART_SPECS:
                engine = self.engines[graph] = self._engine(graph)
                names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
                self.inputs[graph] = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
                self.dtypes[graph] = {n: _torch_dtype(trt, engine.get_tensor_dtype(n)) for n in names}
            self.shared_memory_bytes = self._create_contexts()

    def _create_contexts(self) -> int:
        """One execution context per engine, all on one device-memory block sized for the largest (the parts run
        one at a time on self.stream); returns its bytes, 0 where this TensorRT cannot share (own memory each)."""
        trt = self.trt
        size = max(_device_memory_size(e) for e in self.engines.values())
        try:
            strategy = trt.ExecutionContextAllocationStrategy.USER_MANAGED
            self._activations = torch.empty(max(size, 1), dtype=torch.uint8, device=self.device)
            for graph, engine in self.engines.items():
                context = self.contexts[graph] = engine.create_execution_context(strategy)
                setter = getattr(context, "set_device_memory", None)  # (address, size): TensorRT 10.1+
                if setter is not None:
                    setter(self._activations.data_ptr(), self._activations.numel())
                else:  # the property of every 10.x/11.x binding
                    context.device_memory = self._activations.data_ptr()
            return size
        except (AttributeError, TypeError) as err:  # a TensorRT 10.0 binding without these: one block each
            logger.info("TensorRT: contexts get their own device memory (%s)", err)
            self._activations = None
            self.contexts = {graph: e.create_execution_context() for graph, e in self.engines.items()}
            return 0

    # ------------------------------------------------------------------ building
    def engine_parts(self, graph: str) -> dict[str, Any]:
        """Key parts of a graph's engine."""
        return engine_key_parts(self.meta["parts"][graph]["sha256"], self.identity, self.plan,
                                profile_shapes(PART_SPECS[graph], self.config, self.limits), self.workspace_gib)

    def _engine(self, graph: str) -> Any:
        def load(path: Path) -> Any:
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise RuntimeError("TensorRT could not deserialize the engine")
            return engine

        return self.cache.get_or_build("trt", self.engine_parts(graph), ".engine",
                                       lambda tmp: self._build(graph, tmp), load, what=f"TensorRT engine {graph}")

    def _build(self, graph: str, out_path: Path) -> None:
        """Parse the ONNX graph, set precision/profile/timing cache, build and write the serialized engine."""
        trt = self.trt
        spec = PART_SPECS[graph]
        onnx_path = self.export_dir / self.meta["parts"][graph]["file"]
        label = f"{graph} ({self.precision})"
        logger.warning("building TensorRT engine %s from %s: this takes a while once, then it is cached",
                       label, onnx_path)
        start = time.perf_counter()
        builder = trt.Builder(self.trt_logger)
        flags = 0  # explicit batch: the only mode since TensorRT 10
        if self.plan.strongly_typed:  # types come from the graph (TensorRT 11 accepts the flag and implies it)
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.trt_logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        if self.workspace_gib:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.workspace_gib * 2**30))
        if self.plan.builder_flag:  # TensorRT < 10.12: weak typing on the fp32 graph
            config.set_flag(getattr(trt.BuilderFlag, self.plan.builder_flag))
            _keep_sensitive_layers_fp32(trt, network, config)
        if not self.plan.tf32 and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32 (TF32 rounds matmul inputs to 10 bits)
        shapes = profile_shapes(spec, self.config, self.limits)
        if shapes:
            profile = builder.create_optimization_profile()
            for i in range(network.num_inputs):  # the network's own inputs: the exporter drops unused ones
                name = network.get_input(i).name
                if name not in shapes:
                    raise RuntimeError(f"{onnx_path} has input {name!r} that part {graph} does not provide")
                profile.set_shape(name, *shapes[name])
            config.add_optimization_profile(profile)
        timing = self.timing_cache_path.read_bytes() if self.timing_cache_path.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(timing), False)
        monitor = _progress_monitor(trt, label)  # must outlive the build (it does: local to this call)
        try:
            config.progress_monitor = monitor
        except AttributeError:  # a TensorRT 10.0 build without the progress-monitor binding: build silently
            logger.info("TensorRT %s: no progress monitor in this TensorRT build", label)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build {label} (see the TensorRT log above)")
        with open(out_path, "wb") as f:
            f.write(serialized)
        atomic_write(self.timing_cache_path, bytes(config.get_timing_cache().serialize()))
        logger.warning("built TensorRT engine %s in %.0f s", label, time.perf_counter() - start)

    # ------------------------------------------------------------------ running
    def _run(self, graph: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        spec = PART_SPECS[graph]
        batch = inputs[0].shape[0]
        if spec.dynamic_axes and batch > self.limits.max_objects:  # chunk over objects (axis 0 of every tensor)
            step = self.limits.max_objects
            chunks = [self._run(graph, [t[i:i + step] for t in inputs]) for i in range(0, batch, step)]
            return [torch.cat(parts) for parts in zip(*chunks)]
        context, dtypes = self.contexts[graph], self.dtypes[graph]
        with torch.cuda.device(self.device):
            caller = torch.cuda.current_stream(self.device)
            used = []  # every tensor the engine reads or writes (allocated on the caller's stream)
            for name, tensor in bind_inputs(graph, inputs, self.inputs[graph]).items():
                t = aligned(tensor.to(device=self.device, dtype=dtypes[name]))
                used.append(t)
                if not context.set_input_shape(name, tuple(t.shape)):
                    raise ValueError(f"{graph}: input {name} shape {tuple(t.shape)} is outside the engine's "
                                     f"profile {profile_shapes(spec, self.config, self.limits).get(name)}; "
                                     "raise the ShapeLimits")
                bind_address(context, name, self._address(t))
            outputs = []
            for name in spec.outputs:
                shape = tuple(context.get_tensor_shape(name))
                out = torch.empty(shape, dtype=dtypes[name], device=self.device)
                bind_address(context, name, self._address(out))
                outputs.append(out)
            used += outputs
            self.stream.wait_stream(caller)  # inputs are ready, output memory is free
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution of {graph} failed")
            for t in used:  # freed by the caller: not reused before the engine is done with it
                t.record_stream(self.stream)
            caller.wait_stream(self.stream)  # the caller reads the outputs after the engine wrote them
        return outputs

    def _address(self, t: torch.Tensor) -> int:
        """Device address for a binding; an empty tensor (e.g. 0 pointer tokens) gets a valid dummy address."""
        if t.numel():
            return t.data_ptr()
        if self._dummy is None:
            self._dummy = torch.empty(256, dtype=torch.uint8, device=self.device)
        return self._dummy.data_ptr()

    def describe(self) -> dict[str, Any]:
        """Versions, GPU, precision and limits (for logs and benchmarks)."""
        return {**self.identity, "precision": self.precision, "precision_plan": asdict(self.plan),
                "limits": asdict(self.limits), "shared_memory_bytes": self.shared_memory_bytes}


__all__ = ["ALIGNMENT", "BUILD_RECIPE", "PRECISIONS", "PrecisionPlan", "ShapeLimits", "TensorRTBackend", "aligned",
           "bind_address", "engine_key_parts", "gpu_identity", "is_aligned", "memory_limits", "precision_plan",
           "profile_shapes", "tensorrt_unavailable", "tensorrt_version_problem"]
