"""Shared, once-per-pytest-process artefacts for the export/backend tests: a tiny checkpoint and its ONNX export.

The checkpoint is Meta's tiny model (seeded random, perturbed weights, from the oracle) with two edits so masks are
worth comparing: the presence head is biased towards "present" (otherwise most masks are the constant -1024) and
the mask hypernetworks are scaled up so logits span about +-10 instead of +-0.5.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from oracle import build_reference, max_abs, save_meta_checkpoint

CONFIG = "sam2.1_hiera_t"


@functools.lru_cache(maxsize=None)
def _root() -> Path:
    """This pytest process's temporary folder, made on first use (importing this module creates nothing)."""
    root = Path(tempfile.mkdtemp(prefix="sam2_ros_backend_tests_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def scratch_dir(name: str) -> Path:
    """A fresh directory under this process's temporary root."""
    path = Path(tempfile.mkdtemp(prefix=name + "_", dir=_root()))
    return path


@functools.lru_cache(maxsize=None)
def tiny_checkpoint(image_size: int = 256) -> Path:
    """Meta-format checkpoint of the tiny config with present objects and large logits (see module doc)."""
    ref = build_reference(CONFIG, image_size=image_size)
    path = save_meta_checkpoint(ref, _root() / f"tiny{image_size}.pt")
    blob = torch.load(path, weights_only=True)
    state = blob["model"]
    state["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] += 4.0
    for k in range(4):
        state[f"sam_mask_decoder.output_hypernetworks_mlps.{k}.layers.2.weight"] *= 20.0
    torch.save(blob, path)
    return Path(path)


@functools.lru_cache(maxsize=None)
def tiny_export(image_size: int = 256) -> tuple[Path, Path]:
    """(cache root, export dir) of every part of the tiny checkpoint, exported once through the factory's cache."""
    from sam2_ros.backends.factory import ensure_export
    from sam2_ros.model import build_sam2, weights_hash

    ckpt = tiny_checkpoint(image_size)
    model = build_sam2(CONFIG, checkpoint=ckpt, image_size=image_size)
    root = _root() / f"cache{image_size}"
    return root, ensure_export(model, weights_hash(ckpt), root)


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: the relative error used for features."""
    b = torch.as_tensor(b)
    scale = b.float().abs().max().item() if b.numel() else 1.0
    return max_abs(a, b) / max(scale, 1e-12)
