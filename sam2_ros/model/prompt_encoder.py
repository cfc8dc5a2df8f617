"""SAM prompt encoder: points, box corners and masks -> sparse tokens [B, N, C] and a dense map [B, C, h, w].

Attribute names equal Meta's checkpoint keys under `sam_prompt_encoder.` (`pe_layer`, `point_embeddings.{0..3}`,
`not_a_point_embed`, `mask_downscaling`, `no_mask_embed`).

Two ways to call it:
- `forward(points, boxes, masks)`: the flexible form with Meta's semantics (any of the three may be None; a padding
  point is appended when there is no box).
- The export form, free of data-dependent branches: `embed_points(coords, labels, pad=True)` with boxes given as two
  points labelled 2 (top-left) and 3 (bottom-right) — what Meta's predictors and `_forward_sam_heads` do — plus
  `embed_masks(mask)` or `no_mask_dense(batch_like)` chosen by the caller (whether a mask exists is a graph choice).
"""
from __future__ import annotations

import torch
from torch import nn

from sam2_ros.model.common import LayerNorm2d
from sam2_ros.model.position_encoding import PositionEmbeddingRandom

# Point labels understood by the encoder.
LABEL_PAD = -1  # not a point: position dropped, `not_a_point_embed` instead
LABEL_NEGATIVE = 0
LABEL_POSITIVE = 1
LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3


class PromptEncoder(nn.Module):
    """Encodes clicks, boxes and mask prompts for the mask decoder (SAM 2 builds it with mask_in_chans=16)."""

    def __init__(self, embed_dim: int, image_embedding_size: tuple[int, int], input_image_size: tuple[int, int],
                 mask_in_chans: int = 16, activation: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)  # (h, w) of the image embedding
        self.input_image_size = tuple(input_image_size)  # (H, W) pixels of the model input
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # One learned offset per label 0..3 (negative, positive, box top-left, box bottom-right).
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)

        self.mask_input_size = (4 * self.image_embedding_size[0], 4 * self.image_embedding_size[1])
        # Indices are part of the checkpoint keys (0, 1, 3, 4, 6 hold parameters).
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of every image-embedding cell, [1, C, h, w] (the decoder's image_pe)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _label_offsets(self, labels: torch.Tensor) -> torch.Tensor:
        """labels [B, N] -> [B, N, C]: the learned offset of labels 0..3, zero for any other label."""
        table = torch.cat([e.weight for e in self.point_embeddings], dim=0)  # [4, C]
        kinds = torch.arange(self.num_point_embeddings, device=labels.device)
        one_hot = (labels.unsqueeze(-1) == kinds).to(table.dtype)  # [B, N, 4]
        # Elementwise product + sum (not a matmul) keeps the selection exact, also under TF32 on GPUs.
        return (one_hot.unsqueeze(-1) * table).sum(dim=-2)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """Point tokens: coords [B, N, 2] pixel x, y of the input image, labels [B, N] -> [B, N(+1), C].

        Labels: 1 positive, 0 negative, 2/3 box corners, -1 padding (position replaced by `not_a_point_embed`).
        `pad` appends one padding point, as Meta does whenever no separate box is given. No data-dependent branch:
        this is the export path.
        """
        coords = coords.to(torch.float32) + 0.5  # pixel centres
        if pad:
            coords = torch.cat([coords, torch.zeros_like(coords[:, :1])], dim=1)  # [B, N+1, 2]
            labels = torch.cat([labels, torch.full_like(labels[:, :1], LABEL_PAD)], dim=1)  # [B, N+1]
        pe = self.pe_layer.forward_with_coords(coords, self.input_image_size)  # [B, N', C]
        is_pad = (labels == LABEL_PAD).unsqueeze(-1)  # [B, N', 1]
        pe = torch.where(is_pad, torch.zeros_like(pe) + self.not_a_point_embed.weight, pe)
        return pe + self._label_offsets(labels)

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Box tokens: boxes [B, 4] (or [B, 1, 4]) x0, y0, x1, y1 pixels -> [B, 2, C] (corners labelled 2 and 3)."""
        corners = boxes.reshape(-1, 2, 2).to(torch.float32)  # [B, 2, 2]
        labels = torch.tensor([LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT], device=boxes.device)
        return self.embed_points(corners, labels.expand(corners.shape[0], 2), pad=False)

    def embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Dense prompt from mask logits [B, 1, 4h, 4w] -> [B, C, h, w]."""
        return self.mask_downscaling(masks)

    def no_mask_dense(self, batch_like: torch.Tensor) -> torch.Tensor:
        """No mask given: `no_mask_embed` in every cell, [B, C, h, w] with B taken from batch_like [B, ...]."""
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch_like.shape[0], -1, h, w)

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta-compatible call: (coords [B, N, 2], labels [B, N]) or None, boxes [B, 4] or None, masks
        [B, 1, 4h, 4w] or None -> (sparse [B, N', C], dense [B, C, h, w]). Points are padded when boxes is None."""
        sparse_parts = []
        if points is not None:
            coords, labels = points
            if coords.shape[:2] != labels.shape[:2]:
                raise ValueError(f"points {tuple(coords.shape)} and labels {tuple(labels.shape)} disagree")
            sparse_parts.append(self.embed_points(coords, labels, pad=boxes is None))
        if boxes is not None:
            sparse_parts.append(self.embed_boxes(boxes))
        if sparse_parts:
            sparse = torch.cat(sparse_parts, dim=1)
        else:
            batch = masks.shape[0] if masks is not None else 1  # Meta's batch size when only a mask is given
            sparse = self.no_mask_embed.weight.new_zeros((batch, 0, self.embed_dim))
        dense = self.embed_masks(masks) if masks is not None else self.no_mask_dense(sparse)
        return sparse, dense
