"""Rules of the TensorRT backend that need no TensorRT: which versions work, how a precision is built on each
(the precision plan, part of the engine cache key), and the address alignment TensorRT requires."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

PRECISIONS = ("fp16", "bf16", "fp32")
ALIGNMENT = 256  # bytes: TensorRT's required alignment of tensor addresses
STRONGLY_TYPED_SINCE = (10, 12)  # the first TensorRT that builds our mixed-precision graphs strongly typed


def _version(version: str) -> tuple[int, int]:
    major, _, rest = version.partition(".")
    return int(major), int(rest.partition(".")[0] or 0)


def tensorrt_version() -> str | None:
    """The installed tensorrt package's version, None when it does not import."""
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


def tensorrt_version_problem(version: str) -> str | None:
    """None for TensorRT 10.x and 11.x, else why this backend cannot use that version."""
    major = _version(version)[0]
    if major < 10:
        return f"TensorRT {version} is too old (this backend uses the TensorRT 10/11 API)"
    if major > 11:
        return f"TensorRT {version} is newer than this backend knows (10.x and 11.x are supported)"
    return None


@dataclass(frozen=True)
class PrecisionPlan:
    """How an engine of one precision is built on one TensorRT version (part of the engine cache key)."""

    precision: str  # what was asked: fp16 | bf16 | fp32
    onnx_precision: str  # which export the engine is built from (metadata "precision")
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (TensorRT 11: always, the flag is implied)
    builder_flag: str | None  # BuilderFlag name set on a weakly typed build (FP16 / BF16), None otherwise
    tf32: bool  # whether TF32 stays allowed (never for fp32: fp32 means fp32)


def precision_plan(version: str, precision: str) -> PrecisionPlan:
    """TensorRT >= 10.12 or 11: strongly typed, from the export of that precision; < 10.12: the fp32 export with the
    FP16/BF16 builder flag (weak typing, what JetPack's TensorRT 10 offers). fp32: the fp32 export, TF32 off."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    v = _version(version)
    strong = v >= STRONGLY_TYPED_SINCE
    if precision == "fp32":
        return PrecisionPlan("fp32", "fp32", v[0] >= 11, None, False)
    if strong:
        return PrecisionPlan(precision, precision, True, None, False)
    return PrecisionPlan(precision, "fp32", False, precision.upper(), False)


def is_aligned(t: torch.Tensor, alignment: int = ALIGNMENT) -> bool:
    """Whether a tensor's first element sits at an address TensorRT accepts (an empty tensor binds a dummy)."""
    return t.numel() == 0 or t.data_ptr() % alignment == 0


def aligned(t: torch.Tensor, alignment: int = ALIGNMENT) -> torch.Tensor:
    """t itself when contiguous and aligned, else a contiguous copy at an aligned address (a view such as
    `labels[8:16]` of a chunked batch starts 32 bytes into its storage)."""
    t = t.contiguous()
    if is_aligned(t, alignment):
        return t
    copy = t.clone()
    if is_aligned(copy, alignment):  # CUDA's caching allocator hands out 512-byte aligned blocks
        return copy
    nbytes = t.numel() * t.element_size()  # another allocator: carve an aligned window out of a larger buffer
    raw = torch.empty(nbytes + alignment, dtype=torch.uint8, device=t.device)
    start = (-raw.data_ptr()) % alignment
    out = raw[start:start + nbytes].view(t.dtype).view(t.shape)
    return out.copy_(t)


def bind_address(context: Any, name: str, address: int) -> None:
    """context.set_tensor_address, raising with the tensor's name when TensorRT refuses the address."""
    if address % ALIGNMENT:
        raise ValueError(f"tensor {name!r}: address {address:#x} is not {ALIGNMENT}-byte aligned")
    if not context.set_tensor_address(name, address):
        raise RuntimeError(f"TensorRT refused the address {address:#x} of tensor {name!r}")


__all__ = ["ALIGNMENT", "PRECISIONS", "STRONGLY_TYPED_SINCE", "PrecisionPlan", "aligned", "bind_address", "is_aligned",
           "precision_plan", "tensorrt_version", "tensorrt_version_problem"]
