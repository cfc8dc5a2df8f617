"""Memory attention: the current frame's features attend to earlier frames' memories and object pointers.

Parameter names follow Meta's checkpoints (`memory_attention.` prefix). Unlike Meta's version, spatial memories and
object pointers arrive as separate inputs, so their token counts are tensor dimensions (exportable as dynamic axes)
rather than an integer argument, and the rotary encoding uses real cos/sin tables instead of complex numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import Attention
from .rope import AxialRotary, apply_rotary

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class MemoryAttentionConfig:
    """Sizes and switches of the memory-attention transformer (defaults: every SAM 2 / 2.1 size)."""

    d_model: int = 256  # width of the current-frame tokens (C)
    kv_dim: int = 64  # width of memory and pointer tokens (D, the memory encoder's out dim)
    num_layers: int = 4
    num_heads: int = 1
    dim_feedforward: int = 2048
    dropout: float = 0.1  # only active in training mode
    activation: str = "relu"  # "relu" | "gelu"
    rope_theta: float = 10000.0
    feat_size: tuple[int, int] = (64, 64)  # default (h, w) of the stride-16 grid: image_size // 16
    pos_enc_at_input: bool = True  # add 0.1 * curr_pos to the input once
    pos_enc_at_attn: bool = False  # add curr_pos to self-attention queries/keys
    pos_enc_at_cross_attn_queries: bool = False  # add curr_pos to cross-attention queries
    pos_enc_at_cross_attn_keys: bool = True  # add memory_pos / obj_ptr_pos to cross-attention keys


class RoPEAttention(Attention):
    """Attention whose queries and (spatial) keys are rotated by the 2-D axial rotary encoding of their grid cell.

    Keys may span several frames of the query's grid (memories); extra keys passed separately (object pointers)
    are appended after them without rotation.
    """

    def __init__(self, embedding_dim: int, num_heads: int, dropout: float = 0.0, kv_in_dim: int | None = None,
                 rope_theta: float = 10000.0) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate=1, dropout=dropout, kv_in_dim=kv_in_dim)
        self.rotary = AxialRotary(self.internal_dim // num_heads, rope_theta)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, feat_size: tuple[int, int],
                extra_k: torch.Tensor | None = None, extra_v: torch.Tensor | None = None) -> torch.Tensor:
        """q [B, h*w, C], k/v [B, r*h*w, Ckv] (r >= 0 grid frames), extra_k/extra_v [B, P, Ckv] -> [B, h*w, C]."""
        if (extra_k is None) != (extra_v is None):
            raise ValueError("extra_k and extra_v must be given together")
        # Own head split (required by the ONNX export): 0 memory or pointer tokens stay valid at run time.
        q, k, v = self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))  # [B,heads,N,c]
        cos, sin = self.rotary.tables(feat_size, q.device)  # [h*w, c/2]
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)  # tables repeat over the r frames
        if extra_k is not None:
            k = torch.cat([k, self._split(self.k_proj(extra_k))], dim=2)  # [B, heads, r*h*w + P, c]
            v = torch.cat([v, self._split(self.v_proj(extra_v))], dim=2)
        return self.attend(q, k, v)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, inner] -> [B, heads, N, c] with every size explicit: ONNX Reshape cannot infer a -1 when N = 0."""
        head_dim = self.internal_dim // self.num_heads
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, head_dim).transpose(1, 2)


class MemoryAttentionLayer(nn.Module):
    """Pre-norm block: rotary self-attention, rotary cross-attention to memories + pointers, feed-forward."""

    def __init__(self, config: MemoryAttentionConfig) -> None:
        super().__init__()
        c = config
        self.self_attn = RoPEAttention(c.d_model, c.num_heads, dropout=c.dropout, rope_theta=c.rope_theta)
        self.cross_attn_image = RoPEAttention(c.d_model, c.num_heads, dropout=c.dropout, kv_in_dim=c.kv_dim,
                                              rope_theta=c.rope_theta)
        self.linear1 = nn.Linear(c.d_model, c.dim_feedforward)
        self.linear2 = nn.Linear(c.dim_feedforward, c.d_model)
        self.norm1 = nn.LayerNorm(c.d_model)
        self.norm2 = nn.LayerNorm(c.d_model)
        self.norm3 = nn.LayerNorm(c.d_model)
        self.activation = _ACTIVATIONS[c.activation]()
        self.dropout = nn.Dropout(c.dropout)
        self.dropout1 = nn.Dropout(c.dropout)
        self.dropout2 = nn.Dropout(c.dropout)
        self.dropout3 = nn.Dropout(c.dropout)
        self.pos_enc_at_attn = c.pos_enc_at_attn
        self.pos_enc_at_cross_attn_queries = c.pos_enc_at_cross_attn_queries
        self.pos_enc_at_cross_attn_keys = c.pos_enc_at_cross_attn_keys

    def forward(self, x: torch.Tensor, x_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor, feat_size: tuple[int, int]) -> torch.Tensor:
        """x [B, HW, C] -> [B, HW, C]; shapes as in MemoryAttention.forward."""
        normed = self.norm1(x)
        qk = normed + x_pos if self.pos_enc_at_attn else normed
        x = x + self.dropout1(self.self_attn(qk, qk, normed, feat_size))

        normed = self.norm2(x)
        query = normed + x_pos if self.pos_enc_at_cross_attn_queries else normed
        if self.pos_enc_at_cross_attn_keys:
            mem_keys, ptr_keys = memory + memory_pos, obj_ptrs + obj_ptr_pos
        else:
            mem_keys, ptr_keys = memory, obj_ptrs
        attended = self.cross_attn_image(query, mem_keys, memory, feat_size, extra_k=ptr_keys, extra_v=obj_ptrs)
        x = x + self.dropout2(attended)

        hidden = self.dropout(self.activation(self.linear1(self.norm3(x))))  # [B, HW, F]
        return x + self.dropout3(self.linear2(hidden))


class MemoryAttention(nn.Module):
    """Stack of MemoryAttentionLayers + final LayerNorm: conditions the current frame on the memory bank."""

    def __init__(self, config: MemoryAttentionConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MemoryAttentionConfig()
        if config.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {config.activation!r}")
        self.layers = nn.ModuleList(MemoryAttentionLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.pos_enc_at_input = config.pos_enc_at_input

    def forward(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                obj_ptrs: torch.Tensor, obj_ptr_pos: torch.Tensor,
                feat_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Current-frame tokens conditioned on memories.

        curr, curr_pos: [B, HW, C] tokens of the current (h, w) grid, row-major.
        memory, memory_pos: [B, Ms, D] spatial memories, Ms = frames * HW (frame-major; rotary applies).
        obj_ptrs, obj_ptr_pos: [B, P, D] object-pointer tokens (no rotary); P may be 0.
        feat_size: (h, w) of the grid; None = the config's.
        Returns [B, HW, C].
        """
        h, w = self.config.feat_size if feat_size is None else feat_size
        if not torch.jit.is_tracing():  # shapes are symbolic while exporting
            if curr.shape[1] != h * w:
                raise ValueError(f"curr has {curr.shape[1]} tokens, expected h*w = {h}*{w}")
            if memory.shape[1] % (h * w):
                raise ValueError(f"memory has {memory.shape[1]} tokens, not a whole number of {h}x{w} frames")
        x = curr + 0.1 * curr_pos if self.pos_enc_at_input else curr
        for layer in self.layers:
            x = layer(x, curr_pos, memory, memory_pos, obj_ptrs, obj_ptr_pos, (h, w))
        return self.norm(x)
