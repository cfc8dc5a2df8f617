"""Export Sam2Model's inference parts to ONNX (legacy TorchScript exporter) plus a metadata file describing them."""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from sam2_ros.export.parts import PART_SPECS, PartModule, PartSpec, example_inputs
from sam2_ros.model.checkpoint import weights_hash as file_sha256
from sam2_ros.model.sam2 import Sam2Model

DEFAULT_OPSET = 17
EXPORT_FORMAT = 3  # bump when the exported graphs change (cache keys include it); 2: rotary tables as constants,
# each graph's real inputs recorded; 3: LayerNorm2d as LayerNormalization, "precision" recorded (fp16/bf16 parts)
METADATA_FILE = "metadata.json"


def state_hash(model: torch.nn.Module) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes, bytes): identifies weights without a file."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)  # 1-D: a 0-dim tensor (BatchNorm counter) cannot view
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def config_fingerprint(model: Sam2Model) -> str:
    """Hash of the full config (a custom config with a registered name still gets its own exports)."""
    return hashlib.sha256(repr(model.config).encode()).hexdigest()[:16]


def _export_one(model: Sam2Model, spec: PartSpec, path: Path, opset: int) -> None:
    """Trace one part and write it to path (a single .onnx file with weights inside)."""
    module = PartModule(model, spec).eval()  # eval() first: the legacy exporter would otherwise trace dropout
    inputs = example_inputs(model, spec)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-level shape checks are expected
        torch.onnx.export(module, inputs, str(path), input_names=list(spec.inputs),
                          output_names=list(spec.outputs), dynamic_axes=spec.dynamic_axes or None,
                          opset_version=opset, do_constant_folding=True, dynamo=False)


def graph_inputs(path: str | os.PathLike) -> list[str] | None:
    """Names of an ONNX file's run-time inputs (the exporter drops unused ones); None when onnx is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    return [i.name for i in graph.input if i.name not in weights]


def _convert_precision(path: Path, precision: str) -> None:
    """Rewrite an fp32 graph file as strongly typed mixed precision (sam2_ros.export.precision)."""
    import onnx

    from sam2_ros.export.precision import to_mixed_precision

    onnx.save(to_mixed_precision(onnx.load(str(path)), precision), str(path))


def export_parts(model: Sam2Model, out_dir: str | os.PathLike, weights_hash: str | None = None,
                 parts: Iterable[str] | None = None, opset: int = DEFAULT_OPSET,
                 progress: Callable[[str], None] | None = print, precision: str = "fp32") -> dict[str, Any]:
    """Write each part's ONNX graph and metadata.json into out_dir; returns the metadata.

    weights_hash: sha256 of the checkpoint file the model was loaded from (None: hash of the state dict).
    parts: graph names from PART_SPECS (None: all). progress: called with one line per part (None: silent).
    precision: fp32, or fp16 / bf16 for strongly typed mixed-precision graphs (half weights and matmuls /
    convolutions, the rest fp32; graph inputs and outputs stay float32 / int32).
    """
    from sam2_ros.export.precision import PRECISIONS, RECIPE

    if opset < 17:
        raise ValueError(f"opset must be >= 17 (LayerNormalization), got {opset}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    names = list(PART_SPECS) if parts is None else list(parts)
    unknown = [n for n in names if n not in PART_SPECS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; known: {', '.join(PART_SPECS)}")
    try:  # only recorded: the legacy exporter writes the protobuf itself
        import onnx
        onnx_version = onnx.__version__
    except ImportError:
        onnx_version = None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    cfg = model.config
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT, "config": cfg.name, "config_fingerprint": config_fingerprint(model),
        "image_size": cfg.image_size, "hidden_dim": cfg.hidden_dim, "mem_dim": cfg.mem_dim,
        "weights_hash": weights_hash or state_hash(model), "torch": torch.__version__, "onnx": onnx_version,
        "opset": opset, "exporter": "torch.onnx legacy (TorchScript)", "precision": precision,
        "precision_recipe": None if precision == "fp32" else RECIPE, "parts": {}}
    try:
        for i, name in enumerate(names, 1):
            spec = PART_SPECS[name]
            start = time.perf_counter()
            path = out / spec.filename
            _export_one(model, spec, path, opset)
            if precision != "fp32":
                _convert_precision(path, precision)
            real = graph_inputs(path)
            meta["parts"][name] = {"file": spec.filename, "part": spec.part,
                                   "inputs": list(spec.inputs) if real is None else real,
                                   "outputs": list(spec.outputs), "dynamic_axes": spec.dynamic_axes,
                                   "multimask": spec.multimask, "with_mask": spec.with_mask,
                                   "binarize": spec.binarize, "sha256": file_sha256(path),
                                   "bytes": path.stat().st_size}
            if progress is not None:
                progress(f"[{i}/{len(names)}] {name}: {path.stat().st_size / 2**20:.1f} MiB in "
                         f"{time.perf_counter() - start:.1f} s -> {path}")
    finally:
        model.train(was_training)
    tmp = out / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, out / METADATA_FILE)
    return meta


def read_metadata(export_dir: str | os.PathLike) -> dict[str, Any]:
    """metadata.json of an export directory (ValueError when absent or unreadable)."""
    path = Path(export_dir) / METADATA_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable export metadata file: {err}") from err
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path} has export format {meta.get('format')}, this code reads {EXPORT_FORMAT}; re-export")
    return meta


def verify_export(export_dir: str | os.PathLike, parts: Iterable[str] | None = None) -> str | None:
    """None when every listed part's file exists with the recorded sha256, else what is wrong."""
    try:
        meta = read_metadata(export_dir)
    except ValueError as err:
        return str(err)
    for name in (meta["parts"] if parts is None else parts):
        info = meta["parts"].get(name)
        if info is None:
            return f"part {name!r} was not exported"
        path = Path(export_dir) / info["file"]
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != info["bytes"] or file_sha256(path) != info["sha256"]:
            return f"{path} does not match its recorded checksum"
    return None


__all__ = ["DEFAULT_OPSET", "EXPORT_FORMAT", "METADATA_FILE", "config_fingerprint", "export_parts", "graph_inputs",
           "read_metadata", "state_hash", "verify_export"]
