"""The inference interface the streaming tracker drives: SAM 2's four parts, the small glue around them, and the config.

A backend runs the four parts (image encoder, prompt encoder + mask decoder, memory attention, memory encoder) on
whatever engine it has (PyTorch, ONNX Runtime, TensorRT). The glue methods are a few tensor ops on learned
parameters (no-memory embedding, temporal encodings, pointer splitting, mask-as-output); an accelerated backend keeps
them in torch. Shapes: S = image side, s = S/4, h = w = S/16, C = hidden width, D = memory width, B = objects.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:  # only for annotations: a backend may return any object with these fields
    from sam2_ros.model.config import Sam2Config
    from sam2_ros.model.sam2 import DecoderOutput


@runtime_checkable
class InferenceBackend(Protocol):
    """What StreamingTracker needs from a model. Every method is batch-first and stateless."""

    name: str  # what runs the parts: torch | onnxruntime | tensorrt (after any fallback)
    config: "Sam2Config"  # tracking settings (num_maskmem, multimask rules, pointer settings, image_size, ...)
    device: torch.device  # where inputs are placed

    # ------------------------------------------------------------------ the four parts
    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """image [1, 3, S, S] normalised -> (feat_s0 [1, C/8, s, s], feat_s1 [1, C/4, S/8, S/8],
        image_embed [1, C, h, w], image_pos [1, C, h, w])."""
        ...

    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> "DecoderOutput":
        """Prompt encoder + mask decoder: points [B, N, 2] in S x S pixels, labels [B, N] int32, mask_input
        [B, 1, s, s] logits -> DecoderOutput (low_res_masks [B, 1, s, s], high_res_masks [B, 1, S, S], iou [B, 1],
        obj_ptr [B, C], object_score_logits [B, 1])."""
        ...

    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """curr/curr_pos [B, C, h, w], memory/memory_pos [B, Ms, D], obj_ptrs/obj_ptr_pos [B, P, D] -> [B, C, h, w]."""
        ...

    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat [B, C, h, w], high_res_masks [B, 1, S, S] logits, object_score_logits [B, 1]
        -> (maskmem_features [B, D, h, w], maskmem_pos [B, D, h, w])."""
        ...

    # ------------------------------------------------------------------ glue
    def mask_as_output(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
                       mask: torch.Tensor) -> "DecoderOutput":
        """A mask prompt [B, 1, S, S] taken as the output itself (logits +-10, pointer from the decoder)."""
        ...

    def add_no_memory(self, curr: torch.Tensor) -> torch.Tensor:
        """First prompted frame of an object: curr [B, C, h, w] + the learned no-memory embedding."""
        ...

    def memory_pos(self, maskmem_pos: torch.Tensor, t_pos: int) -> torch.Tensor:
        """maskmem_pos [B, D, h, w] + temporal slot encoding of slot t_pos (0 = prompted frame) -> [B, hw, D]."""
        ...

    def pointer_pos(self, rel_t: torch.Tensor | Sequence[float], max_rel: float) -> torch.Tensor:
        """Temporal encoding of object pointers at frame distances rel_t [P] -> [P, D]."""
        ...

    def pointer_tokens(self, obj_ptrs: torch.Tensor, ptr_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pointers [B, P, C] and positions [P, D] -> (tokens, positions) [B, P*C/D, D]."""
        ...


__all__ = ["InferenceBackend"]
