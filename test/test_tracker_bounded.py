"""The tracker's memory does not grow with the stream: 2,000 frames hold exactly the tensor bytes of 100 frames.

Real parts of our model: the micro config (not a Meta model; SAM 2.1 structure, ~0.85 M parameters) at
image_size 64 so 2,000 frames run in a few minutes on 2 cores; 8 distinct frames are cycled and their encoder
outputs memoised (the encoder is stateless; every other part runs every frame). Three objects: two prompted at the
start, a correction at frame 40, a third object at frame 60, one removed at frame 80.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from oracle_backend import CachedEncoder, sharpen_
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.model import build_sam2
from sam2_ros.tracking import StreamingTracker, TrackerOptions

SIZE, FRAMES = 64, 2000


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_bounded_over_2000_frames():
    torch.manual_seed(0)
    backend = CachedEncoder(TorchBackend(sharpen_(build_sam2("sam2_micro", image_size=SIZE))))
    tracker = StreamingTracker(backend, TrackerOptions(history=15, max_cond_frames=4))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(8)]
    sizes, rss = {}, {}
    for f in range(FRAMES):
        tracker.track(frames[f % len(frames)], stamp=f * 33_000_000)  # ROS-like nanosecond stamps
        if f == 0:
            tracker.add_prompt(1, points=[[20, 20]], labels=[1])
            tracker.add_prompt(2, box=[30, 30, 60, 50])
        elif f == 40:
            tracker.add_prompt(1, points=[[25, 22]], labels=[0])
        elif f == 60:
            tracker.add_prompt(3, points=[[10, 50], [12, 40]], labels=[1, 1])
        elif f == 80:
            tracker.remove_object(2)
        if f + 1 in (100, 300, 1000, FRAMES):
            sizes[f + 1], rss[f + 1] = tracker.memory_bytes(), rss_bytes()
            print(f"after {f + 1:5d} frames: tracker tensors {sizes[f + 1]:,} B, process RSS {rss[f + 1] / 2**20:.1f} MiB")
    obj = tracker._objects[1]
    print(f"object 1 keeps {len(obj.cond)} prompted and {len(obj.recent)} recent frames "
          f"({sum(m.maskmem is not None for m in obj.recent.values())} with spatial memory)")
    assert tracker.object_ids == [1, 3]
    assert len(tracker.stamps) == 15
    assert sizes[100] == sizes[300] == sizes[1000] == sizes[FRAMES]
    growth = rss[FRAMES] - rss[300]
    print(f"RSS growth from frame 300 to {FRAMES}: {growth / 2**20:.2f} MiB")
    assert growth < 16 * 2**20


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_memory_reach_is_the_oldest_frame_read(stride):
    """The bank keeps spatial memories exactly as far back as Meta's selection rule reads, at every stride."""
    from sam2_ros.tracking.memory_bank import memory_frame, memory_reach

    num_maskmem = 7
    reads = {f: [memory_frame(f, slot, num_maskmem, stride) for slot in range(1, num_maskmem)] for f in range(40, 60)}
    assert all(len(set(r)) == num_maskmem - 1 and max(r) == f - 1 for f, r in reads.items())
    if stride == 1:
        assert reads[50] == list(range(44, 50))  # Meta's default: the last six frames
    deepest = max(f - min(r) for f, r in reads.items())
    print(f"stride {stride}: memories reach {deepest} frames back")
    assert memory_reach(num_maskmem, stride) == deepest


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_trim_keeps_what_the_oldest_history_frame_reads(stride):
    """A late prompt may land on the oldest history frame: after trimming, that frame and every later one still read
    each spatial memory and pointer they read before (at stride >= 3 memories reach further back than pointers)."""
    from sam2_ros.model.config import get_config
    from sam2_ros.tracking.memory_bank import select_memory, trim
    from sam2_ros.tracking.state import Memory, ObjectState

    cfg = get_config("sam2_micro")

    def memory(t: int) -> Memory:  # tensors that name their frame
        return Memory(torch.tensor([float(t)]), torch.zeros(1), torch.tensor([float(t)]), None, None)

    full = ObjectState(1, cond={0: memory(0)}, recent={t: memory(t) for t in range(1, 70)})
    for oldest in range(50, 50 + stride):  # every alignment of the oldest frame to the stride
        trimmed = full.copy()
        trim(trimmed, oldest, cfg, stride)
        assert len(trimmed.recent) < len(full.recent)  # something was dropped
        for index in range(oldest, 70):
            before, after = select_memory(full, index, cfg, stride), select_memory(trimmed, index, cfg, stride)
            assert [m.item() for m in after.maskmems] == [m.item() for m in before.maskmems], (oldest, index)
            assert [p.item() for p in after.ptrs] == [p.item() for p in before.ptrs], (oldest, index)
            assert (after.slots, after.rel_t) == (before.slots, before.rel_t), (oldest, index)
