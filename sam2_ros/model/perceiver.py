"""EdgeTAM's 2-D spatial perceiver: compresses one frame's memory (h*w tokens) into a few latent tokens.

Two sets of learned latents read the memory-encoder output through the same layers (parameter names follow
EdgeTAM's checkpoint under `spatial_perceiver.`):
- global latents (`latents`, 256): each attends to the whole h x w map, keys/values offset by its sine position
  map; their output positions are zero (no rotary in memory attention either);
- 2-D latents (`latents_2d`, 256 = 16 x 16): latent i attends only to window i of a 16 x 16 partition of the map
  (no positions), so they keep a coarse grid; their output positions are the sine map of that 16 x 16 grid and
  memory attention rotates them on it (RoPEAttentionv2's key grid).
Output: [B, 256 + 256, D] tokens, global first, with positions of the same shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import PositionEmbeddingSine


@dataclass(frozen=True)
class PerceiverConfig:
    """Sizes of the spatial perceiver (defaults: EdgeTAM's)."""

    dim: int = 64  # token width (= the memory encoder's out_dim, D)
    depth: int = 2  # layers, shared by both latent sets
    dim_head: int = 64
    heads: int = 1
    ff_mult: int = 4  # feed-forward hidden width = ff_mult * dim
    num_latents: int = 256  # global latents
    num_latents_2d: int = 256  # 2-D latents: a square number (one per window of a side x side partition)
    use_self_attn: bool = True  # each layer also self-attends among the latents

    def __post_init__(self) -> None:
        side = math.isqrt(self.num_latents_2d)
        if self.num_latents <= 0 or side * side != self.num_latents_2d or side == 0:
            raise ValueError("the perceiver needs num_latents > 0 and a square num_latents_2d > 0 (as EdgeTAM's)")

    @property
    def grid_side(self) -> int:
        """Side of the 2-D latents' grid (16)."""
        return math.isqrt(self.num_latents_2d)

    @property
    def num_tokens(self) -> int:
        """Tokens per compressed memory frame (512)."""
        return self.num_latents + self.num_latents_2d


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    """LayerNorm -> Linear -> GELU -> Linear, no biases (keys `0`, `1`, `3`)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class _LatentAttention(nn.Module):
    """Multi-head attention with a fused k/v projection and no biases; latents are the queries."""

    def __init__(self, dim: int, dim_head: int, heads: int, norms: tuple[str, ...]) -> None:
        super().__init__()
        self.heads = heads
        for name in norms:  # registered first: the checkpoint lists them before the projections
            self.add_module(name, nn.LayerNorm(dim))
        inner = dim_head * heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, heads*c] -> [B, heads, N, c]."""
        return x.reshape(x.shape[0], x.shape[1], self.heads, x.shape[2] // self.heads).transpose(1, 2)

    def _attend(self, latents: torch.Tensor, source: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        """latents [B, L, D] read source [B, N, D]; pos [B, N, heads*c] is added to projected keys and values."""
        q = self._split(self.to_q(latents))
        k, v = (self._split(t) for t in self.to_kv(source).chunk(2, dim=-1))
        if pos is not None:
            pos = self._split(pos)
            k, v = k + pos, v + pos
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)  # [B, L, heads, c]
        return self.to_out(out.reshape(out.shape[0], out.shape[1], -1))


class CrossAttention(_LatentAttention):
    """Latents attend to the memory map (`attn.norm_latents`, `attn.norm_x`, projections)."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__(dim, dim_head, heads, norms=("norm_x", "norm_latents"))

    def forward(self, latents: torch.Tensor, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        return self._attend(self.norm_latents(latents), self.norm_x(x), pos)


class SelfAttention(_LatentAttention):
    """Latents attend to each other (`self_attn.norm`, projections)."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__(dim, dim_head, heads, norms=("norm",))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        normed = self.norm(latents)
        return self._attend(normed, normed, None)


class PerceiverLayer(nn.Module):
    """Residual cross-attention and feed-forward, then (optionally) residual self-attention and feed-forward."""

    def __init__(self, config: PerceiverConfig) -> None:
        super().__init__()
        c = config
        self.attn = CrossAttention(c.dim, c.dim_head, c.heads)
        self.ff = _feed_forward(c.dim, c.ff_mult)
        if c.use_self_attn:
            self.self_attn = SelfAttention(c.dim, c.dim_head, c.heads)
            self.self_ff = _feed_forward(c.dim, c.ff_mult)
        self.use_self_attn = c.use_self_attn

    def forward(self, latents: torch.Tensor, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        latents = latents + self.attn(latents, x, pos)
        latents = latents + self.ff(latents)
        if self.use_self_attn:
            latents = latents + self.self_attn(latents)
            latents = latents + self.self_ff(latents)
        return latents


class SpatialPerceiver(nn.Module):
    """Memory map [B, D, h, w] + its positions -> ([B, L, D] latent tokens, [B, L, D] positions), L = 512."""

    def __init__(self, config: PerceiverConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or PerceiverConfig()
        self.latents = nn.Parameter(torch.randn(c.num_latents, c.dim))
        self.latents_2d = nn.Parameter(torch.randn(c.num_latents_2d, c.dim))
        self.layers = nn.ModuleList(PerceiverLayer(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.position_encoding = PositionEmbeddingSine(c.dim)  # for the 2-D latents' grid (no state-dict keys)

    def _global(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """tokens, pos [B, hw, D] -> global latents [B, num_latents, D]."""
        latents = self.latents.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        for layer in self.layers:
            latents = layer(latents, tokens, pos)
        return self.norm(latents)

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, h, w] -> 2-D latents [B, side*side, D]: latent i reads window i (row-major) of the map."""
        b, d, h, w = x.shape
        side = self.config.grid_side
        wh, ww = h // side, w // side  # window size
        windows = x.reshape(b, d, side, wh, side, ww).permute(0, 2, 4, 3, 5, 1)  # [B, side, side, wh, ww, D]
        windows = windows.reshape(b * side * side, wh * ww, d)  # one window per row
        latents = self.latents_2d.unsqueeze(0).expand(b, -1, -1).reshape(b * side * side, 1, d)
        for layer in self.layers:
            latents = layer(latents, windows)
        return self.norm(latents.reshape(b, side * side, d))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, pos [B, D, h, w] (h, w multiples of the grid side) -> (tokens [B, L, D], positions [B, L, D])."""
        b, d = x.shape[:2]
        side = self.config.grid_side
        tokens = self._global(x.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2))  # [B, L1, D]
        grid = self._windows(x)  # [B, L2, D]
        # Positions: zeros for the global latents, the sine map of the side x side grid for the 2-D ones.
        grid_map = grid.new_zeros(b, d, side, side)  # only its shape matters
        grid_pos = self.position_encoding(grid_map).flatten(2).transpose(1, 2)  # [B, L2, D]
        positions = torch.cat([torch.zeros_like(tokens), grid_pos.to(tokens.dtype)], dim=1)
        return torch.cat([tokens, grid], dim=1), positions
