"""Scores of tracking against the simulated world's ground truth."""
from __future__ import annotations

import numpy as np


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """Region similarity J (IoU) of two boolean masks; 1.0 when both are empty."""
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union
