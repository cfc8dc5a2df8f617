"""PyTorch backend: runs our Sam2Model's four parts and glue directly (CPU or CUDA)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import DecoderOutput, Sam2Model


class TorchBackend:
    """InferenceBackend over a Sam2Model: every call is the model's own method, so results are the model's."""

    name = "torch"

    def __init__(self, model: Sam2Model) -> None:
        if not isinstance(model, Sam2Model):
            raise ValueError(f"TorchBackend needs a Sam2Model, got {type(model).__name__}")
        self.model = model.eval()
        self.config: Sam2Config = model.config
        self.device = next(model.parameters()).device

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trunk + neck (+ the decoder's skip projections) for one normalised frame [1, 3, S, S]."""
        return self.model.encode_image(image)

    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> DecoderOutput:
        """Prompt encoder + mask decoder on B rows."""
        return self.model.decode(image_embed, feat_s0, feat_s1, point_coords, point_labels, mask_input, multimask)

    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """Memory attention on B rows sharing one memory layout."""
        return self.model.attend_memory(curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos)

    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory encoder on B rows."""
        return self.model.encode_memory(pix_feat, high_res_masks, object_score_logits, binarize)

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


__all__ = ["TorchBackend"]
