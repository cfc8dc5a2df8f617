"""Training the micro SAM 2 on synthetic clips and fine-tuning real checkpoints: SAM 2's losses, prompt sampling,
an unrolled memory path for clips, and a resumable trainer (`python -m sam2_ros.training --help`)."""
from sam2_ros.training.losses import (LossWeights, dice_loss, iou_mse_loss, object_score_loss, sam2_loss,
                                      sigmoid_focal_loss)
from sam2_ros.training.trainer import TrainConfig, Trainer, export_meta

__all__ = ["LossWeights", "TrainConfig", "Trainer", "dice_loss", "export_meta", "iou_mse_loss", "object_score_loss",
           "sam2_loss", "sigmoid_focal_loss"]
