"""A prompt as a session receives it (from any source: a Prompt message, clicks, RViz points, a service) and the rules
that are the session's own: object ids that fit a label image, the object budget, a readable mask. The prompt itself
is checked by the tracker's validator (tracking/prompts.py), whose message the caller is answered with."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.tracking.prompts import check_combination

MAX_OBJECT_ID = 65535  # label images are at most 16-bit
MAX_DESCRIBED = 8      # points written out in a prompt's log line / service message


class PromptError(ValueError):
    """A prompt or request that is refused; the text is the log line / service message."""


@dataclass
class PromptRequest:
    """A prompt before it is checked against its frame: pixel points/labels, optional box and mask."""

    object_id: int
    points: np.ndarray          # [N, 2] float64 pixels x, y
    labels: np.ndarray          # [N] int
    box: np.ndarray | None      # [4] x_min, y_min, x_max, y_max or None
    mask: np.ndarray | None = None  # [H, W] bool, decoded from the message (None: no mask, or mask_error)
    stamp_ns: int = 0           # header stamp of the image it was drawn on; 0 = newest
    replace: bool = False
    source: str = "prompt"
    label: str = ""             # class name for the object ('' = keep its label)
    multimask: bool = False     # answer with SAM 2's candidate masks (Prompt.multimask)
    mask_error: str = ""        # why the given mask could not be read ('' = none given, or it was read)

    @property
    def has_mask(self) -> bool:
        return self.mask is not None or bool(self.mask_error)


@dataclass
class PromptArgs:
    """Arguments for tracker.add_prompt (the tracker validates them)."""

    object_id: int
    points: np.ndarray | None   # [N, 2] float64 pixels x, y
    labels: np.ndarray | None   # [N] int
    box: np.ndarray | None      # [4] x_min, y_min, x_max, y_max
    mask: np.ndarray | None     # [H, W] bool
    replace: bool

    def describe(self) -> str:
        """What the prompt holds, for the log line / service message."""
        what = []
        if self.points is not None:
            pairs = list(zip(self.points, self.labels))
            text = " ".join(f"({x:.1f}, {y:.1f}; {int(lab)})" for (x, y), lab in pairs[:MAX_DESCRIBED])
            if len(pairs) > MAX_DESCRIBED:  # a log line / service message of bounded length
                text += f" ... ({len(pairs)} points)"
            what.append("points " + text)
        if self.box is not None:
            what.append("box (" + ", ".join(f"{v:.1f}" for v in self.box) + ")")
        if self.mask is not None:
            what.append(f"mask of {int(self.mask.sum())} px")
        return ", ".join(what)


def prompt_args(request: PromptRequest, known_ids: set[int] | object, max_objects: int) -> PromptArgs:
    """Raise PromptError (or the validator's ValueError for parts that do not go together, before the mask is
    looked at) unless the prompt fits the session: object id, object budget, a readable mask."""
    if not 1 <= request.object_id <= MAX_OBJECT_ID:
        raise PromptError(f"object_id must be in 1..{MAX_OBJECT_ID}, got {request.object_id}")
    if request.object_id not in known_ids and len(known_ids) >= max_objects:
        raise PromptError(f"already tracking max_objects={max_objects} objects; remove one before adding "
                          f"object {request.object_id}")
    clicked = len(request.points) > 0 or len(request.labels) > 0
    points, labels = (request.points, request.labels) if clicked else (None, None)
    check_combination(points, labels, request.box, True if request.has_mask else None)
    if request.mask_error:
        raise PromptError(f"mask: {request.mask_error}")
    return PromptArgs(request.object_id, points, labels, request.box, request.mask, request.replace)
