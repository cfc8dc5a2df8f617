"""Reference SAM 2 (PyPI `sam2`, Meta's code) as a test oracle: random weights, Meta checkpoint format.

Only tests import this module. It never feeds project code with reference code: the reference model is built,
its weights are saved as a Meta checkpoint, and our model loads that file like a user would load Meta's.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

# Meta's config file names for our config names.
REFERENCE_CONFIGS = {
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_t": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_s": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_b+": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_l": "configs/sam2/sam2_hiera_l.yaml",
}


def _quiet_import():
    warnings.filterwarnings("ignore", module="hydra")
    warnings.filterwarnings("ignore", category=UserWarning, module="sam2")
    import sam2.build_sam as build_sam  # noqa: F401  (initialises Hydra once)

    return build_sam


def perturb_(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> torch.nn.Module:
    """Add small noise to every parameter so zero/one-initialised tensors (norms, embeddings) are exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
    return model


def build_reference(config: str, image_size: int | None = None, video: bool = True, seed: int = 0,
                    overrides: list[str] | None = None) -> torch.nn.Module:
    """Meta's model (video predictor by default, as `build_sam2_video_predictor` makes it) with seeded random weights."""
    build_sam = _quiet_import()
    extra = list(overrides or [])
    if image_size is not None:
        extra.append(f"++model.image_size={image_size}")
    torch.manual_seed(seed)
    if video:
        model = build_sam.build_sam2_video_predictor(REFERENCE_CONFIGS[config], None, device="cpu",
                                                     hydra_overrides_extra=extra)
    else:
        model = build_sam.build_sam2(REFERENCE_CONFIGS[config], None, device="cpu", hydra_overrides_extra=extra)
    perturb_(model, seed)
    return model.eval()


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| (0 for empty tensors); shapes must agree."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item() if a.numel() else 0.0


def state_subset(model: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The `prefix.*` entries of a model's state dict, prefix removed: a submodule's weights (as build.py loads them)."""
    return {k[len(prefix):]: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def save_meta_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write `{"model": state_dict}` exactly as Meta's released .pt files are laid out."""
    path = Path(path)
    torch.save({"model": model.state_dict()}, path)
    return path
