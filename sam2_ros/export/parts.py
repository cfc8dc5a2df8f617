"""The exported graphs: one small nn.Module per inference part (and per graph variant), with its I/O names and axes.

Each wrapper calls the Sam2Model method itself, so an exported graph computes exactly what the torch backend does.
Python-level switches of a part become separate graphs (variants) instead of graph inputs, because they change
output shapes (multimask: 3 candidates or 1) or would cost a second branch in every call:

| graph | Sam2Model call |
|---|---|
| `encode_image` | `encode_image(image)` |
| `decode`, `decode_multimask` | `decode(..., mask_input=None, multimask=False/True)` |
| `decode_mask`, `decode_multimask_mask` | `decode(..., mask_input=mask, multimask=False/True)` |
| `attend_memory` | `attend_memory(curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos)` |
| `encode_memory`, `encode_memory_binarize` | `encode_memory(..., binarize=False/True)` |

Dynamic axes: `objects` (B), `points` (N), `memory_tokens` (Ms = frames*h*w; EdgeTAM: frames*512, the
perceiver's tokens, made inside `encode_memory`), `pointer_tokens` (P). The image
encoder is static ([1, 3, S, S]): the tracker encodes one frame at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sam2_ros.model.sam2 import Sam2Model

OBJECTS, POINTS, MEMORY, POINTERS = "objects", "points", "memory_tokens", "pointer_tokens"
DECODER_OUTPUTS = ("low_res_masks", "high_res_masks", "iou", "obj_ptr", "object_score_logits",
                   "low_res_multimasks", "ious")


@dataclass(frozen=True)
class PartSpec:
    """One exported graph: its name (file stem), the Sam2Model part it runs, I/O names and dynamic axes."""

    name: str
    part: str  # encode_image | decode | attend_memory | encode_memory
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    multimask: bool = False  # decode variants
    with_mask: bool = False  # decode variants
    binarize: bool = False  # encode_memory variants

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


def _objects(*names: str) -> dict[str, dict[int, str]]:
    """Axis 0 of each named tensor is the object batch."""
    return {n: {0: OBJECTS} for n in names}


def _decode_spec(multimask: bool, with_mask: bool) -> PartSpec:
    inputs = ("image_embed", "feat_s0", "feat_s1", "point_coords", "point_labels") + (("mask_input",) if with_mask
                                                                                       else ())
    axes = _objects(*inputs, *DECODER_OUTPUTS)
    axes["point_coords"] = {0: OBJECTS, 1: POINTS}
    axes["point_labels"] = {0: OBJECTS, 1: POINTS}
    name = "decode" + ("_multimask" if multimask else "") + ("_mask" if with_mask else "")
    return PartSpec(name, "decode", inputs, DECODER_OUTPUTS, axes, multimask=multimask, with_mask=with_mask)


def _memory_spec(binarize: bool) -> PartSpec:
    inputs = ("pix_feat", "high_res_masks", "object_score_logits")
    outputs = ("maskmem_features", "maskmem_pos")
    return PartSpec("encode_memory_binarize" if binarize else "encode_memory", "encode_memory", inputs, outputs,
                    _objects(*inputs, *outputs), binarize=binarize)


_ATTEND_INPUTS = ("curr", "curr_pos", "memory", "memory_pos", "obj_ptrs", "obj_ptr_pos")
PART_SPECS: dict[str, PartSpec] = {s.name: s for s in [
    PartSpec("encode_image", "encode_image", ("image",), ("feat_s0", "feat_s1", "image_embed", "image_pos")),
    _decode_spec(False, False), _decode_spec(True, False), _decode_spec(False, True), _decode_spec(True, True),
    PartSpec("attend_memory", "attend_memory", _ATTEND_INPUTS, ("pix_feat",),
             {"curr": {0: OBJECTS}, "curr_pos": {0: OBJECTS}, "memory": {0: OBJECTS, 1: MEMORY},
              "memory_pos": {0: OBJECTS, 1: MEMORY}, "obj_ptrs": {0: OBJECTS, 1: POINTERS},
              "obj_ptr_pos": {0: OBJECTS, 1: POINTERS}, "pix_feat": {0: OBJECTS}}),
    _memory_spec(False), _memory_spec(True),
]}


def decode_graph_name(multimask: bool, with_mask: bool) -> str:
    """Name of the decoder variant for these switches."""
    return "decode" + ("_multimask" if multimask else "") + ("_mask" if with_mask else "")


def memory_graph_name(binarize: bool) -> str:
    """Name of the memory-encoder variant."""
    return "encode_memory_binarize" if binarize else "encode_memory"


class PartModule(nn.Module):
    """Runs one PartSpec's Sam2Model call with positional tensor inputs and a flat tuple of outputs (exportable)."""

    def __init__(self, model: Sam2Model, spec: PartSpec) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        if spec.part == "attend_memory":  # rotary tables enter the graph as float32 constants (no trig, no Tile)
            model.memory_attention.rotary.prepare(model.config.memory_attention.feat_size,
                                                  next(model.parameters()).device)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s, m = self.spec, self.model
        if s.part == "encode_image":
            return tuple(m.encode_image(*inputs))
        if s.part == "decode":
            embed, s0, s1, coords, labels = inputs[:5]
            mask = inputs[5] if s.with_mask else None
            out = m.decode(embed, s0, s1, coords, labels, mask, s.multimask)
            return tuple(getattr(out, name) for name in DECODER_OUTPUTS)
        if s.part == "attend_memory":
            return (m.attend_memory(*inputs),)
        if s.part == "encode_memory":
            return tuple(m.encode_memory(*inputs, binarize=s.binarize))
        raise ValueError(f"unknown part {s.part!r}")


def example_inputs(model: Sam2Model, spec: PartSpec, objects: int = 2, points: int = 3, memory_frames: int = 2,
                   pointers: int = 8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes/dtypes for a part (tracing and tests); sizes other than 1 on every dynamic
    axis, so no dynamic size gets specialised to a constant while tracing."""
    cfg = model.config
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    size, h, c, d = cfg.image_size, cfg.feat_size, cfg.hidden_dim, cfg.mem_dim
    b = objects

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dev)

    if spec.part == "encode_image":
        return (randn(1, 3, size, size),)
    if spec.part == "decode":
        coords = (torch.rand(b, points, 2, generator=gen) * size).to(dev)  # [B, N, 2] pixels
        labels = torch.randint(0, 2, (b, points), generator=gen, dtype=torch.int32).to(dev)  # [B, N]
        out = [randn(b, c, h, h), randn(b, c // 8, 4 * h, 4 * h), randn(b, c // 4, 2 * h, 2 * h), coords, labels]
        if spec.with_mask:
            out.append(randn(b, 1, 4 * h, 4 * h, scale=5.0))
        return tuple(out)
    if spec.part == "attend_memory":
        ms = memory_frames * cfg.memory_tokens  # h*h per frame (SAM 2), 512 (EdgeTAM's perceiver)
        return (randn(b, c, h, h), randn(b, c, h, h), randn(b, ms, d), randn(b, ms, d), randn(b, pointers, d),
                randn(b, pointers, d))
    if spec.part == "encode_memory":
        score = torch.linspace(-3.0, 3.0, b).reshape(b, 1).to(dev)  # [B, 1] absent and present objects
        return randn(b, c, h, h), randn(b, 1, size, size, scale=8.0), score
    raise ValueError(f"unknown part {spec.part!r}")
