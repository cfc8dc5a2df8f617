"""StreamingTracker with EdgeTAM against Meta's EdgeTAM model run as a live stream (same weights, frames, prompts).

Random weights built by the reference (edgetam_oracle, a subprocess), saved as a Meta checkpoint and loaded by
build_sam2("edgetam") at image_size 256. The memory bank holds the perceiver's 512 tokens per frame.
- The full scenario of test_tracker_exact (clicks and a box on frame 0, corrections at frame 6, an object added
  by clicks at frame 9 and one by a mask at frame 13, a replacing click at frame 16) against EdgeTAM's model under
  sam2 1.1.0's video predictor: the session logic our tracker follows (per-object memory, objects added mid-stream).
- A one-object scenario (prompts on frames 0, 4 and 7 of 10) against EdgeTAM's own video predictor (SAM 2.0's session
  logic, which refuses objects added after tracking started and shares prompted frames across objects; with one
  object the two logics agree).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgetam_oracle import oracle_missing, run_oracle, sam2_1_1_predictor_file
from oracle_backend import make_video, tracker_stream
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker
from test_tracker_exact import compare, scenario_events

pytestmark = pytest.mark.slow  # runs Meta's EdgeTAM code in a subprocess

SIZE, FRAMES = 256, 20


def _portable(events: dict) -> dict:
    """Events with numpy masks as tensors (the oracle's files are read with weights_only=True)."""
    return {f: [(kind, obj, torch.from_numpy(p) if isinstance(p, np.ndarray) else p, replace)
                for kind, obj, p, replace in items] for f, items in events.items()}


def _records(result: dict) -> list:
    return [(f, list(ids), logits.numpy()) for f, ids, logits in result["records"]]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    if oracle_missing():
        pytest.skip(oracle_missing())
    folder = tmp_path_factory.mktemp("edgetam_video")
    return folder, make_video(str(folder), FRAMES, SIZE)


def _run(clip, events: dict, session: str, frames: int = FRAMES) -> tuple[list, list, StreamingTracker]:
    folder, rgb = clip
    checkpoint = folder.parent / f"edgetam_{session}.pt"
    payload = {"image_size": SIZE, "seed": 0, "checkpoint": str(checkpoint), "session": session,
               "predictor_file": sam2_1_1_predictor_file(), "folder": str(folder), "frames": frames,
               "events": _portable(events)}
    expected = _records(run_oracle("stream", payload, folder.parent / session))
    tracker = StreamingTracker(TorchBackend(build_sam2("edgetam", checkpoint=checkpoint, image_size=SIZE)))
    return expected, tracker_stream(tracker, rgb[:frames], events), tracker


def test_stream_exact_with_objects_added_mid_stream(clip):
    expected, got, tracker = _run(clip, scenario_events(SIZE), "v1.1")
    fractions = [float((logits > 0).mean()) for _, _, logits in expected]
    print(f"foreground fraction per record: min {min(fractions):.3f}, max {max(fractions):.3f}")
    assert 0.01 < np.mean(fractions) < 0.9  # masks worth comparing
    compare(expected, got, "edgetam, sam2 1.1 session")
    # The bank holds perceiver tokens: [D, 512] per memory frame, not [D, 16, 16] grids.
    memories = [m.maskmem for obj in tracker._objects.values() for m in [*obj.recent.values(), *obj.cond.values()]
                if m.maskmem is not None]
    assert memories and all(tuple(m.shape) == (64, 512) for m in memories), {tuple(m.shape) for m in memories}


def test_stream_exact_with_edgetam_predictor(clip):
    events = {0: [("points", 1, ([[50.0, 70.0]], [1]), False)],
              4: [("points", 1, ([[70.0, 78.0]], [1]), False)],
              7: [("points", 1, ([[90.0, 85.0]], [0]), False)]}
    expected, got, _ = _run(clip, events, "edgetam", frames=10)
    compare(expected, got, "edgetam, its own predictor")
