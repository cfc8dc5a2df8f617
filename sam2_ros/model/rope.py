"""2-D axial rotary position encoding in real arithmetic (cos/sin tables), so memory attention exports to ONNX.

Layout (fixed by SAM 2's checkpoints): a head vector of width `d` is read as d/2 consecutive pairs (x[2i], x[2i+1]),
each pair a point in the plane. The first d/4 pairs turn by angle `column * f_k`, the last d/4 by `row * f_k`, with
f_k = 1 / theta^(4k/d). Tokens are the cells of an (h, w) grid in row-major order (token t = row * w + column).
"""
from __future__ import annotations

import torch
from torch import nn


def axial_rotary_angles(head_dim: int, feat_size: tuple[int, int], theta: float = 10000.0,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Rotation angle of every (grid cell, pair) -> [h*w, head_dim/2] float32 (column block, then row block)."""
    if head_dim % 4:
        raise ValueError(f"rotary head_dim={head_dim} must be a multiple of 4 (x and y pairs)")
    h, w = feat_size
    quarter = head_dim // 4
    exponents = torch.arange(quarter, dtype=torch.float32, device=device) * 4 / head_dim  # [d/4]
    inv_freq = 1.0 / (theta ** exponents)  # [d/4]
    cols = torch.arange(w, dtype=torch.float32, device=device).repeat(h)  # [h*w] column of each token
    rows = torch.arange(h, dtype=torch.float32, device=device).repeat_interleave(w)  # [h*w] row of each token
    return torch.cat([cols[:, None] * inv_freq, rows[:, None] * inv_freq], dim=-1)  # [h*w, d/2]


def axial_rotary_tables(head_dim: int, feat_size: tuple[int, int], theta: float = 10000.0,
                        device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each [h*w, head_dim/2] float32, for `apply_rotary`."""
    angles = axial_rotary_angles(head_dim, feat_size, theta, device)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs of x [..., N, d] by the grid tables [n, d/2]; N = r*n keys repeat the grid r times (frames).

    The rotation is done in float32 and cast back to x's dtype.
    """
    n, half = cos.shape
    # [..., r, n, d/2, 2]; r is computed from x's shape (not -1) so it stays a graph dimension that may be 0.
    pairs = x.float().reshape(*x.shape[:-2], x.shape[-2] // n, n, half, 2)
    real, imag = pairs.unbind(-1)  # each [..., r, n, d/2]
    rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)  # [..., r, n, d/2, 2]
    return rotated.reshape(x.shape).to(x.dtype)


class AxialRotary(nn.Module):
    """Cos/sin tables for one head width, made per feature size and kept (eager mode) for reuse; no state-dict keys."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"rotary head_dim={head_dim} must be a multiple of 4 (x and y pairs)")
        self.head_dim = head_dim
        self.theta = theta
        # Plain dict, not buffers: tables stay float32 even if the module is cast to half precision.
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, feat_size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) [h*w, head_dim/2] float32 on `device`."""
        exporting = torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
        if exporting:  # fresh constants in the graph; never cache traced values
            return axial_rotary_tables(self.head_dim, feat_size, self.theta, device)
        key = (int(feat_size[0]), int(feat_size[1]), device)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = axial_rotary_tables(self.head_dim, key[:2], self.theta, device)
        return found

    def forward(self, x: torch.Tensor, feat_size: tuple[int, int]) -> torch.Tensor:
        """Rotate x [..., r*h*w, head_dim] (r >= 0 frames of an (h, w) grid)."""
        cos, sin = self.tables(feat_size, x.device)
        return apply_rotary(x, cos, sin)
