"""Prompts from messages (sam2_ros/Prompt, clicks, RViz points) -> PromptRequest for the session (session/requests.py
has the session's rules; the tracker validates the prompt itself). The mask message is decoded here; a mask that
cannot be read travels as its reason, refused in the rules' order."""
from __future__ import annotations

import numpy as np

from sam2_ros.ros import stamps
from sam2_ros.ros.conversions import ImageError, prompt_mask_to_bool
from sam2_ros.session.requests import PromptRequest


def from_prompt_msg(msg, source: str = "prompt") -> PromptRequest:
    """sam2_ros/Prompt -> PromptRequest (checked later, against its frame)."""
    points = np.array([[p.x, p.y] for p in msg.points], dtype=np.float64).reshape(-1, 2)
    labels = np.array(list(msg.labels), dtype=np.int64)
    box = np.array(list(msg.box), dtype=np.float64) if msg.has_box else None
    mask, mask_error = None, ""
    if msg.mask.height > 0 or msg.mask.width > 0 or len(msg.mask.data) > 0:
        try:
            mask = prompt_mask_to_bool(msg.mask)
        except ImageError as err:
            mask_error = str(err)
    return PromptRequest(int(msg.object_id), points, labels, box, mask, stamps.to_ns(msg.header.stamp),
                         bool(msg.replace), source, str(msg.label), bool(msg.multimask), mask_error)


def from_click(object_id: int, x: float, y: float, positive: bool, stamp_ns: int, source: str) -> PromptRequest:
    """One pixel click -> a one-point prompt that adds to the object's earlier points."""
    return PromptRequest(object_id, np.array([[x, y]], dtype=np.float64), np.array([1 if positive else 0]), None,
                         None, stamp_ns, False, source)
