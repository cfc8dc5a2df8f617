"""2-D axial rotary position encoding in real arithmetic (cos/sin tables), so memory attention exports to ONNX.

Layout (fixed by SAM 2's checkpoints): a head vector of width `d` is read as d/2 consecutive pairs (x[2i], x[2i+1]),
each pair a point in the plane. The first d/4 pairs turn by angle `column * f_k`, the last d/4 by `row * f_k`, with
f_k = 1 / theta^(4k/d). Tokens are the cells of an (h, w) grid in row-major order (token t = row * w + column).

Computed as `x * cos2 + swap_pairs(x) * sin2` with tables expanded to the full head width ([n, d], sign folded
into sin2), i.e. a few contiguous element-wise kernels rather than stride-2 pieces that are stacked back together.
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


def pair_tables(head_dim: int, feat_size: tuple[int, int], theta: float = 10000.0,
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos2, sin2), each [h*w, head_dim] float32, for `rotate_pairs`: cos per pair member, and the sign-folded sin
    (-sin on a pair's first member, +sin on its second)."""
    return _widen(*axial_rotary_tables(head_dim, feat_size, theta, device))


def _widen(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, d/2] per-pair tables -> [n, d] per-channel (cos, cos) and sign-folded (-sin, sin)."""
    n, half = cos.shape
    return torch.stack((cos, cos), dim=-1).reshape(n, 2 * half), torch.stack((-sin, sin), dim=-1).reshape(n, 2 * half)


def key_tables(cos2: torch.Tensor, sin2: torch.Tensor, frames: int, extra: int,
               lead: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid tables [n, d] tiled over `frames` grids, then `extra` identity rows (cos 1, sin 0: tokens left as they
    are) -> [frames*n + extra, d] each, one row per key. lead > 0: every frame starts with `lead` identity rows
    (EdgeTAM's perceiver tokens: unrotated global latents, then the rotated grid) -> [frames*(lead+n) + extra, d]."""
    if lead:
        cos2 = torch.cat([cos2.new_ones(lead, cos2.shape[1]), cos2], dim=0)
        sin2 = torch.cat([sin2.new_zeros(lead, sin2.shape[1]), sin2], dim=0)
    n, d = cos2.shape
    # expand + reshape, not repeat: `repeat` with a run-time count exports as OneHot -> Tile, which TensorRT
    # cannot import (required by the ONNX export); sizes are explicit because ONNX Reshape cannot infer -1 at 0.
    if torch.compiler.is_compiling():  # a broadcast multiply by ones (exact): expand would guard frames == 1
        ones = cos2.new_ones(frames, 1, 1)
        cos_k, sin_k = ((t * ones).reshape(frames * n, d) for t in (cos2, sin2))
    else:
        cos_k, sin_k = (t.expand(frames, n, d).reshape(frames * n, d) for t in (cos2, sin2))
    return torch.cat([cos_k, cos2.new_ones(extra, d)], dim=0), torch.cat([sin_k, sin2.new_zeros(extra, d)], dim=0)


def swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., d] with the members of each pair (x[2i], x[2i+1]) exchanged."""
    return x.unflatten(-1, (x.shape[-1] // 2, 2)).roll(1, -1).flatten(-2)  # roll: faster than flip on CPU


def rotate_pairs(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Rotate the pairs of float32 x [..., N, d] by tables [m, d] (`pair_tables`/`key_tables`); N = r*m tokens
    repeat the table r times (frames), broadcast rather than tiled in memory.

    x*cos2 + swap_pairs(x)*sin2: per pair (re*cos - im*sin, re*sin + im*cos), each product rounded, then one add,
    as a complex multiply does. inplace: overwrite x (a fresh projection nobody else reads) and save two
    allocations of x's size; no slice of x is ever assigned, so it traces to the same graph.
    """
    m, d = cos2.shape
    # [..., r, m, d]; r is computed from x's shape (not -1) so it stays a graph dimension that may be 0.
    grid = x.reshape(*x.shape[:-2], x.shape[-2] // m, m, d)
    partner = swap_pairs(grid).mul_(sin2)  # fresh tensor: safe to scale in place
    rotated = grid.mul_(cos2).add_(partner) if inplace else (grid * cos2).add_(partner)
    return rotated.reshape(x.shape)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs of x [..., N, d] by the grid tables [n, d/2] of `axial_rotary_tables`; N = r*n keys repeat
    the grid r times (frames). Done in float32 and cast back to x's dtype."""
    return rotate_pairs(x.float(), *_widen(cos, sin)).to(x.dtype)


class AxialRotary(nn.Module):
    """Rotary tables for one head width, made per feature size and kept (eager mode) for reuse; no state-dict keys."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"rotary head_dim={head_dim} must be a multiple of 4 (x and y pairs)")
        self.head_dim = head_dim
        self.theta = theta
        # Plain dicts, not buffers: tables stay float32 even if the module is cast to half precision.
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._last_keys: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # one entry: the latest key layout
        self.fixed_grids: list[tuple[int, int]] = []  # grids `prepare` always makes too (EdgeTAM's memory grid)

    @staticmethod
    def _exporting() -> bool:
        return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()

    def tables(self, feat_size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos2, sin2) [h*w, head_dim] float32 on `device`, for `rotate_pairs`.

        Tables made eagerly (outside a trace) are reused while exporting or compiling: they enter the graph as
        float32 constants, so no trig runs there (in half precision or otherwise). `prepare` makes them up front.
        """
        key = (int(feat_size[0]), int(feat_size[1]), torch.device(device))
        found = self._cache.get(key)
        if found is None:
            if self._exporting():  # not prepared: traced arithmetic, never cached (traced values are not tensors)
                return pair_tables(self.head_dim, feat_size, self.theta, device)
            found = self._cache[key] = pair_tables(self.head_dim, key[:2], self.theta, device)
        return found

    def prepare(self, feat_size: tuple[int, int], device: torch.device | str) -> None:
        """Make the tables of a feature size now (eagerly), so an export or compile takes them as constants."""
        if self._exporting():
            raise RuntimeError("AxialRotary.prepare must run before tracing/compiling, not inside it")
        for size in [feat_size, *self.fixed_grids]:
            self.tables(size, torch.device(device))

    def key_tables(self, feat_size: tuple[int, int], frames: int, extra: int,
                   device: torch.device, lead: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos2, sin2) [frames*(lead+h*w) + extra, head_dim] for keys = `frames` grids (each after `lead`
        unrotated tokens) + `extra` unrotated tokens; eager mode keeps the latest (a tracker's bank is the same size
        frame after frame)."""
        cos2, sin2 = self.tables(feat_size, device)
        if self._exporting():
            return key_tables(cos2, sin2, frames, extra, lead)
        key = (int(feat_size[0]), int(feat_size[1]), int(frames), int(extra), torch.device(device), int(lead))
        found = self._last_keys.get(key)
        if found is None:
            self._last_keys.clear()
            found = self._last_keys[key] = key_tables(cos2, sin2, key[2], key[3], key[5])
        return found

    def forward(self, x: torch.Tensor, feat_size: tuple[int, int]) -> torch.Tensor:
        """Rotate x [..., r*h*w, head_dim] (r >= 0 frames of an (h, w) grid)."""
        cos2, sin2 = self.tables(feat_size, x.device)
        return rotate_pairs(x.float(), cos2, sin2).to(x.dtype)
