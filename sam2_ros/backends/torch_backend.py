"""PyTorch backend: runs our Sam2Model's four parts and glue directly (CPU or CUDA).

The CUDA fast path is two options: `precision` runs the four parts under autocast (fp16/bf16; outputs come back as
float32 so the tracker's memory and results keep one dtype), and `compile` wraps the two heavy parts (image encoder,
memory attention) in `torch.compile` — `compile="reduce-overhead"` also captures CUDA graphs for the fixed-shape
image encoder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import DecoderOutput, Sam2Model


class TorchBackend:
    """InferenceBackend over a Sam2Model: every call is the model's own method, so results are the model's."""

    name = "torch"
    PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}

    def __init__(self, model: Sam2Model, precision: str = "fp32", compile: bool | str = False) -> None:
        if not isinstance(model, Sam2Model):
            raise ValueError(f"TorchBackend needs a Sam2Model, got {type(model).__name__}")
        if precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(self.PRECISIONS)}, got {precision!r}")
        self.model = model.eval()
        self.config: Sam2Config = model.config
        self.device = next(model.parameters()).device
        self.precision = precision
        self._dtype = self.PRECISIONS[precision]
        self._encode_image: Callable[..., Any] = model.encode_image
        self._attend_memory: Callable[..., Any] = model.attend_memory
        if compile:
            mode = compile if isinstance(compile, str) else None
            self._encode_image = torch.compile(model.encode_image, mode=mode, dynamic=False)
            self._attend_memory = torch.compile(model.attend_memory, dynamic=True)

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call one part, under autocast when a half precision is set, with float32 results."""
        if self._dtype is None:
            return fn(*args)
        with torch.autocast(self.device.type, dtype=self._dtype):
            return _as_float32(fn(*args))

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trunk + neck (+ the decoder's skip projections) for one normalised frame [1, 3, S, S]."""
        return self._run(self._encode_image, image)

    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> DecoderOutput:
        """Prompt encoder + mask decoder on B rows."""
        return self._run(self.model.decode, image_embed, feat_s0, feat_s1, point_coords, point_labels, mask_input,
                         multimask)

    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """Memory attention on B rows sharing one memory layout."""
        return self._run(self._attend_memory, curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos)

    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory encoder on B rows."""
        return self._run(self.model.encode_memory, pix_feat, high_res_masks, object_score_logits, binarize)

    def mask_as_output(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
                       mask: torch.Tensor) -> DecoderOutput:
        """A mask prompt used as the output (Meta's mask-as-output path)."""
        return self.model.mask_as_output(image_embed, feat_s0, feat_s1, mask)

    def add_no_memory(self, curr: torch.Tensor) -> torch.Tensor:
        """Features of a first prompted frame (no memory yet)."""
        return self.model.add_no_memory(curr)

    def memory_pos(self, maskmem_pos: torch.Tensor, t_pos: int) -> torch.Tensor:
        """Spatial + temporal position of one memory frame's tokens."""
        return self.model.memory_pos(maskmem_pos, t_pos)

    def pointer_pos(self, rel_t: torch.Tensor | Sequence[float], max_rel: float) -> torch.Tensor:
        """Temporal encoding of pointers."""
        return self.model.pointer_pos(rel_t, max_rel)

    def pointer_tokens(self, obj_ptrs: torch.Tensor, ptr_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split pointers into memory-width tokens."""
        return self.model.pointer_tokens(obj_ptrs, ptr_pos)


def _as_float32(value: Any) -> Any:
    """Half-precision tensors (also inside tuples and DecoderOutput) back to float32; other values unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, tuple):
        return tuple(_as_float32(v) for v in value)
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _as_float32(getattr(value, f.name))
                                             for f in dataclasses.fields(value)})
    return value


__all__ = ["TorchBackend"]
