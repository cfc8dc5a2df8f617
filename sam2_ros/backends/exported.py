"""Shared half of the ONNX Runtime and TensorRT backends: the four parts go to exported graphs, the glue stays torch.

A subclass implements `_run(graph, inputs) -> outputs` for the graphs of `sam2_ros.export.parts.PART_SPECS`. The
glue (no-memory embedding, temporal encodings, pointer tokens, mask-as-output) is computed by a Sam2Model whose
large submodules were dropped (`strip_for_glue`): only a few MB of parameters stay in torch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from sam2_ros.export.parts import PART_SPECS, decode_graph_name, memory_graph_name
from sam2_ros.model.config import Sam2Config
from sam2_ros.model.sam2 import DecoderOutput, Sam2Model

# Submodules only the exported parts use; the glue never touches them.
_HEAVY_PARTS = ("image_encoder", "memory_attention", "memory_encoder", "spatial_perceiver")  # EdgeTAM: in encode_memory


def strip_for_glue(model: Sam2Model) -> Sam2Model:
    """Drop the image encoder and memory modules in place (they run as graphs now); returns the model."""
    for name in _HEAVY_PARTS:
        setattr(model, name, None)
    return model


def check_metadata(meta: dict[str, Any], config: Sam2Config) -> None:
    """The export must have been made for this config and image size, and hold every graph the backend runs."""
    if meta.get("config") != config.name or meta.get("image_size") != config.image_size:
        raise ValueError(f"export is for {meta.get('config')}@{meta.get('image_size')}, "
                         f"the glue model is {config.name}@{config.image_size}")
    missing = [n for n in PART_SPECS if n not in meta.get("parts", {})]
    if missing:
        raise ValueError(f"export lacks graph(s) {missing}; re-export all parts")


def bind_inputs(graph: str, inputs: Sequence[torch.Tensor], graph_inputs: Sequence[str]) -> dict[str, torch.Tensor]:
    """The part's inputs (in PART_SPECS order) that the graph really has, by name.

    The exporter drops inputs a part does not use (SAM 2.0's memory encoder never reads object_score_logits), so
    a backend feeds what its graph / engine lists, never the spec's full list.
    """
    named = dict(zip(PART_SPECS[graph].inputs, inputs))
    unknown = [name for name in graph_inputs if name not in named]
    if unknown:
        raise ValueError(f"graph {graph} has input(s) {unknown} that the part does not provide; re-export")
    return {name: named[name] for name in graph_inputs}


class ExportedBackend:
    """InferenceBackend over exported graphs (subclasses provide `_run`) with torch glue."""

    name = "exported"

    def __init__(self, glue: Sam2Model, meta: dict[str, Any], device: torch.device | str) -> None:
        check_metadata(meta, glue.config)
        self.glue = glue.eval()
        self.meta = meta
        self.config: Sam2Config = glue.config
        self.device = torch.device(device)

    def _run(self, graph: str, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Run one exported graph on inputs in its declared order; outputs in declared order, on self.device."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the four parts
    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trunk + neck (+ skip projections) of one normalised frame [1, 3, S, S]."""
        size = self.config.image_size
        if tuple(image.shape) != (1, 3, size, size):
            raise ValueError(f"image must be [1, 3, {size}, {size}], got {tuple(image.shape)}")
        return tuple(self._run("encode_image", (image.float(),)))  # type: ignore[return-value]

    def decode(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
               point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
               mask_input: torch.Tensor | None = None, multimask: bool = False) -> DecoderOutput:
        """Prompt encoder + mask decoder; picks the graph variant for (multimask, mask given)."""
        b = image_embed.shape[0]
        if point_coords is None:  # no points: one padding point, as Sam2Model.decode does
            point_coords = image_embed.new_zeros(b, 1, 2)
            point_labels = torch.full((b, 1), -1, dtype=torch.int32, device=image_embed.device)
        elif point_labels is None or point_labels.shape != point_coords.shape[:2]:
            raise ValueError("point_labels must be given with point_coords, shaped [B, N]")
        inputs = [image_embed, feat_s0, feat_s1, point_coords.float(), point_labels.to(torch.int32)]
        if mask_input is not None:
            side = 4 * self.config.feat_size
            if mask_input.ndim != 4 or mask_input.shape[1] != 1:
                raise ValueError(f"mask_input must be [B, 1, H, W], got {tuple(mask_input.shape)}")
            if tuple(mask_input.shape[-2:]) != (side, side):  # same resize as Sam2Model.decode
                mask_input = F.interpolate(mask_input.float(), size=(side, side), mode="bilinear",
                                           align_corners=False, antialias=True)
            inputs.append(mask_input.float())
        outputs = self._run(decode_graph_name(multimask, mask_input is not None), inputs)
        return DecoderOutput(*outputs)

    def attend_memory(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor) -> torch.Tensor:
        """Memory attention on B rows sharing one memory layout."""
        return self._run("attend_memory", (curr, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos))[0]

    def encode_memory(self, pix_feat: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory encoder on B rows (graph variant per binarize)."""
        out = self._run(memory_graph_name(binarize), (pix_feat, high_res_masks.float(), object_score_logits.float()))
        return out[0], out[1]

    # ------------------------------------------------------------------ glue (torch)
    def mask_as_output(self, image_embed: torch.Tensor, feat_s0: torch.Tensor, feat_s1: torch.Tensor,
                       mask: torch.Tensor) -> DecoderOutput:
        """A mask prompt taken as the output (rare: runs the torch decoder kept in the glue model)."""
        return self.glue.mask_as_output(image_embed, feat_s0, feat_s1, mask)

    def add_no_memory(self, curr: torch.Tensor) -> torch.Tensor:
        return self.glue.add_no_memory(curr)

    def memory_pos(self, maskmem_pos: torch.Tensor, t_pos: int) -> torch.Tensor:
        return self.glue.memory_pos(maskmem_pos, t_pos)

    def pointer_pos(self, rel_t: torch.Tensor | Sequence[float], max_rel: float) -> torch.Tensor:
        return self.glue.pointer_pos(rel_t, max_rel)

    def pointer_tokens(self, obj_ptrs: torch.Tensor, ptr_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.glue.pointer_tokens(obj_ptrs, ptr_pos)


__all__ = ["ExportedBackend", "bind_inputs", "check_metadata", "strip_for_glue"]
