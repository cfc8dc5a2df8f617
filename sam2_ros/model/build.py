"""build_sam2: a ready-to-run Sam2Model from a config name, optional Meta checkpoint, image size and device."""
from __future__ import annotations

import logging
import os

import torch

from sam2_ros.model.checkpoint import load_checkpoint
from sam2_ros.model.config import Sam2Config, get_config
from sam2_ros.model.sam2 import Sam2Model

logger = logging.getLogger(__name__)


def build_sam2(config: str | Sam2Config = "sam2.1_hiera_t", checkpoint: str | os.PathLike | None = None,
               image_size: int | None = None, device: str | torch.device = "cpu") -> Sam2Model:
    """Build a model in eval mode; `checkpoint` (Meta's .pt) must match the config key for key, shape for shape.

    image_size None keeps the config's; another positive multiple of 32 runs the same weights on a smaller grid.
    Without a checkpoint the weights are random (a warning says so): fine for tests, useless for segmentation.
    """
    cfg = get_config(config, image_size)
    model = Sam2Model(cfg)
    if checkpoint is None:
        logger.warning("build_sam2(%r): no checkpoint given, the model has RANDOM weights and will not segment "
                       "anything meaningful; pass checkpoint=<Meta's .pt> for real use", cfg.name)
    else:
        load_checkpoint(model, checkpoint)
    return model.to(device).eval()
