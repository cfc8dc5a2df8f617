"""The re-acquisition score: how likely a detection that matches no TRACKED / OCCLUDED object is a LOST object of
the same label coming back (issue 24). In [0, 1]; it re-acquires when >= reacquire_min_score (default 0.4).

    where = max(iou, near)                       (two measures of "is it where it could be")
    iou   = box IoU of the detection and the object's last confirmed box (where the detector last saw it)
    near  = exp(-(distance / reach)^2): distance of the box centres in object sizes (sqrt of the last box's area);
            reach = 1 + REACH_PER_S * seconds since last seen: the longer an object is gone, the farther away it may
            plausibly come back (it left on one side and may re-enter on the other)
    look  = max(0, cosine similarity) of pooled image features inside the boxes (objects.appearance), when both the
            object's and the detection's are known
    score = where                                 without appearance
          = W_WHERE * where + W_LOOK * look       with it (W_WHERE + W_LOOK = 1)

Figures (40 px boxes): back where it left 1.0; re-entering on the far side (7 sizes away) after 40 frames at 15 fps
0.79, at 30 fps 0.57; a second object of the label appearing 1.25 sizes beside one lost a moment ago 0.21 (a new
object). Appearance moves a far re-entry up (same look) or down (different look).
"""
from __future__ import annotations

import numpy as np

from sam2_ros.objects.boxes import box_iou

W_WHERE, W_LOOK = 0.6, 0.4
REACH_PER_S = 5.0  # object sizes per second of absence


def reacquire_scores(last_boxes: np.ndarray, lost_for: np.ndarray, boxes: np.ndarray,
                     look: np.ndarray | None = None) -> np.ndarray:
    """[L, K] scores of L LOST objects (last confirmed boxes [L, 4], seconds since last seen [L]) for K detection
    boxes [K, 4]; look [L, K] cosine similarities, NaN where unknown (None: none known)."""
    last_boxes = np.asarray(last_boxes, np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    iou = box_iou(last_boxes, boxes)  # [L, K]
    centre_a = 0.5 * (last_boxes[:, :2] + last_boxes[:, 2:])  # [L, 2]
    centre_b = 0.5 * (boxes[:, :2] + boxes[:, 2:])  # [K, 2]
    size = np.sqrt(np.clip((last_boxes[:, 2] - last_boxes[:, 0]) * (last_boxes[:, 3] - last_boxes[:, 1]), 1.0, None))
    distance = np.linalg.norm(centre_a[:, None] - centre_b[None], axis=-1) / size[:, None]  # [L, K] object sizes
    reach = 1.0 + REACH_PER_S * np.clip(np.asarray(lost_for, np.float64).reshape(-1), 0.0, None)  # [L]
    near = np.exp(-np.square(distance / reach[:, None]))
    near = np.where(np.isfinite(near), near, 0.0)  # an object without a box is nowhere near
    score = np.maximum(iou, near)
    if look is not None:
        look = np.asarray(look, np.float64).reshape(score.shape)
        with_look = W_WHERE * score + W_LOOK * np.clip(np.nan_to_num(look), 0.0, 1.0)
        score = np.where(np.isfinite(look), with_look, score)
    return score
