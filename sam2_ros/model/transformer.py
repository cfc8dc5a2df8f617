"""Two-way transformer of the SAM mask decoder: prompt tokens and image tokens attend to each other.

Parameter names (`layers.{i}.self_attn`, `cross_attn_token_to_image`, `mlp`, `norm1..4`, `cross_attn_image_to_token`,
`final_attn_token_to_image`, `norm_final_attn`) equal Meta's checkpoint keys under `sam_mask_decoder.transformer.`.
"""
from __future__ import annotations

import torch
from torch import nn

from sam2_ros.model.common import MLP, Attention


class TwoWayAttentionBlock(nn.Module):
    """One decoder layer: token self-attention, tokens->image, token MLP, image->tokens (each with a post-norm)."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int = 2048,
                 activation: type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        # The first layer sees the raw prompt embeddings (which already carry their position): no PE, no residual.
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, tokens: torch.Tensor, image: torch.Tensor, token_pe: torch.Tensor,
                image_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, N, C], image [B, HW, C], positions alike -> updated (tokens, image)."""
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)

        image_keys = image + image_pe  # [B, HW, C]
        tokens = self.norm2(tokens + self.cross_attn_token_to_image(tokens + token_pe, image_keys, image))
        tokens = self.norm3(tokens + self.mlp(tokens))

        # The image tokens query the (updated) prompt tokens.
        image = image + self.cross_attn_image_to_token(image_keys, tokens + token_pe, tokens)
        return tokens, self.norm4(image)


class TwoWayTransformer(nn.Module):
    """`depth` two-way blocks, then a last tokens->image attention with a norm."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 activation: type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation, attention_downsample_rate,
                                 skip_first_layer_pe=(i == 0))
            for i in range(depth))
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image [B, C, h, w], its PE [B, C, h, w], prompt tokens [B, N, C] -> (tokens [B, N, C], image [B, hw, C])."""
        image = image_embedding.flatten(2).transpose(1, 2)  # [B, hw, C]
        image_pe = image_pe.flatten(2).transpose(1, 2)  # [B, hw, C]
        tokens = point_embedding
        for layer in self.layers:
            tokens, image = layer(tokens, image, point_embedding, image_pe)
        attn = self.final_attn_token_to_image(tokens + point_embedding, image + image_pe, image)
        return self.norm_final_attn(tokens + attn), image
