"""Memory attention: the current frame's features attend to earlier frames' memories and object pointers.

Parameter names follow Meta's checkpoints (`memory_attention.` prefix). Unlike Meta's version, spatial memories and
object pointers arrive as separate inputs, so their token counts are tensor dimensions (exportable as dynamic axes)
rather than an integer argument, and the rotary encoding uses real cos/sin tables instead of complex numbers.
Everything that does not change from layer to layer (keys with their encodings, pointers appended to keys and
values, rotary tables per key) is made once per call, before the layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import Attention
from .rope import AxialRotary, rotate_pairs

# ReLU in place: it overwrites the fresh linear1 output instead of allocating another [B, HW, F] tensor.
_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "gelu": nn.GELU}


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
    # Memory-key rotary (EdgeTAM's RoPEAttentionv2): None = memory frames are grids like the query's (SAM 2); an
    # (h, w) = each memory frame is `memory_unrotated` unrotated tokens, then an (h, w) grid rotated on its own grid.
    memory_grid: tuple[int, int] | None = None
    memory_unrotated: int = 0

    def memory_tokens(self, feat_size: tuple[int, int]) -> int:
        """Tokens per memory frame for a query grid of `feat_size`."""
        if self.memory_grid is None:
            return feat_size[0] * feat_size[1]
        return self.memory_unrotated + self.memory_grid[0] * self.memory_grid[1]


class RoPEAttention(Attention):
    """Attention whose queries and keys are rotated by the 2-D axial rotary encoding of their grid cell.

    Keys may span several frames of the query's grid (memories) followed by unrotated tokens (object pointers):
    the caller passes key tables with one row per key (identity rows for the pointers), or grid tables that repeat.
    """

    def __init__(self, embedding_dim: int, num_heads: int, dropout: float = 0.0, kv_in_dim: int | None = None) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate=1, dropout=dropout, kv_in_dim=kv_in_dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_tables: tuple[torch.Tensor, torch.Tensor],
                k_tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """q [B, h*w, C], k/v [B, Nk, Ckv]; q_tables (cos2, sin2) [h*w, c]; k_tables [Nk, c] or [h*w, c] when the
        keys are r whole grids -> [B, h*w, C]."""
        # Own head split (required by the ONNX export): 0 memory or pointer tokens stay valid at run time.
        q = self._rotate(self._split(self.q_proj(q)), q_tables)  # [B, heads, h*w, c]
        k = self._rotate(self._split(self.k_proj(k)), k_tables)  # [B, heads, Nk, c]
        return self.attend(q, k, self._split(self.v_proj(v)))

    @staticmethod
    def _rotate(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Rotary in float32, in place on the fresh projection (the float() cast is a no-op for float32)."""
        return rotate_pairs(x.float(), *tables, inplace=True).to(x.dtype)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, inner] -> [B, heads, N, c] with every size explicit: ONNX Reshape cannot infer a -1 when N = 0."""
        head_dim = self.internal_dim // self.num_heads
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, head_dim).transpose(1, 2)


class MemoryAttentionLayer(nn.Module):
    """Pre-norm block: rotary self-attention, rotary cross-attention to memories + pointers, feed-forward."""

    def __init__(self, config: MemoryAttentionConfig) -> None:
        super().__init__()
        c = config
        self.self_attn = RoPEAttention(c.d_model, c.num_heads, dropout=c.dropout)
        self.cross_attn_image = RoPEAttention(c.d_model, c.num_heads, dropout=c.dropout, kv_in_dim=c.kv_dim)
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

    def forward(self, x: torch.Tensor, x_pos: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                grid_tables: tuple[torch.Tensor, torch.Tensor],
                key_tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x [B, HW, C] -> [B, HW, C]; keys/values [B, Ms + P, D] (memories, then pointers); rotary tables of the
        grid [HW, c] and of the keys [Ms + P, c] (the same for every layer)."""
        normed = self.norm1(x)
        qk = normed + x_pos if self.pos_enc_at_attn else normed
        x = x + self.dropout1(self.self_attn(qk, qk, normed, grid_tables, grid_tables))

        normed = self.norm2(x)
        query = normed + x_pos if self.pos_enc_at_cross_attn_queries else normed
        x = x + self.dropout2(self.cross_attn_image(query, keys, values, grid_tables, key_tables))

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
        self.pos_enc_at_cross_attn_keys = config.pos_enc_at_cross_attn_keys
        self.rotary = AxialRotary(config.d_model // config.num_heads, config.rope_theta)  # no state-dict keys
        if config.memory_grid is not None:
            self.rotary.fixed_grids.append(tuple(config.memory_grid))

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
        per_frame = self.config.memory_tokens((h, w))
        if not torch.jit.is_tracing():  # shapes are symbolic while exporting
            if curr.shape[1] != h * w:
                raise ValueError(f"curr has {curr.shape[1]} tokens, expected h*w = {h}*{w}")
            if memory.shape[1] % per_frame:
                raise ValueError(f"memory has {memory.shape[1]} tokens, not a whole number of {per_frame}-token frames")
        # Made once for all layers: keys and values with the pointers appended (at the narrow width D, before
        # projection), and rotary tables; the key tables leave the pointer rows unrotated.
        if self.pos_enc_at_cross_attn_keys:
            keys = torch.cat([memory + memory_pos, obj_ptrs + obj_ptr_pos], dim=1)  # [B, Ms + P, D]
        else:
            keys = torch.cat([memory, obj_ptrs], dim=1)
        values = torch.cat([memory, obj_ptrs], dim=1)  # [B, Ms + P, D]
        grid_tables = self.rotary.tables((h, w), curr.device)  # [HW, c] each
        frames = memory.shape[1] // per_frame
        if self.config.memory_grid is None:
            key_tables = self.rotary.key_tables((h, w), frames, obj_ptrs.shape[1], curr.device)
        else:
            key_tables = self.rotary.key_tables(self.config.memory_grid, frames, obj_ptrs.shape[1], curr.device,
                                                lead=self.config.memory_unrotated)
        x = curr + 0.1 * curr_pos if self.pos_enc_at_input else curr
        for layer in self.layers:
            x = layer(x, curr_pos, keys, values, grid_tables, key_tables)
        return self.norm(x)
