"""Host <-> device copies that do not stall a CUDA stream.

A blocking CPU -> CUDA copy (`non_blocking=False`, or any copy from pageable memory) synchronises with the stream:
the host waits for every kernel queued before it. Uploads therefore go through pinned memory with
`non_blocking=True`; results come back in one copy per frame (`to_host`). On a CPU device both are plain no-ops.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def upload(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A CPU tensor on `device`; to CUDA from pinned memory without waiting for the stream (the caching host
    allocator keeps the pinned block until the copy is done)."""
    device = torch.device(device)
    if t.device == device or device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def to_host(tensors: Sequence[torch.Tensor], pack: bool | None = None) -> list[np.ndarray]:
    """float32 numpy copies of tensors on one device, in one device -> host copy (packed into one buffer when they
    are not on the CPU already, or pack=True); values and shapes are those of `t.float().cpu().numpy()`."""
    if pack is None:
        pack = any(t.device.type != "cpu" for t in tensors)
    if not pack:
        return [t.float().cpu().numpy() for t in tensors]
    flat = torch.cat([t.float().reshape(-1) for t in tensors]).cpu().numpy()  # the one copy
    out, start = [], 0
    for t in tensors:
        out.append(flat[start:start + t.numel()].reshape(tuple(t.shape)))
        start += t.numel()
    return out


__all__ = ["to_host", "upload"]
