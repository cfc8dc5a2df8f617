"""SAM 2 / 2.1 in plain PyTorch: no ROS, no Hydra, no hub."""
from sam2_ros.model.build import build_sam2
from sam2_ros.model.checkpoint import load_checkpoint, weights_hash
from sam2_ros.model.config import CONFIGS, Sam2Config, get_config
from sam2_ros.model.sam2 import NO_OBJ_SCORE, DecoderOutput, Sam2Model, postprocess_masks, preprocess

__all__ = ["CONFIGS", "NO_OBJ_SCORE", "DecoderOutput", "Sam2Config", "Sam2Model", "build_sam2", "get_config",
           "load_checkpoint", "postprocess_masks", "preprocess", "weights_hash"]
