"""Synthetic clip generator and SAM 2-style prompt sampling: determinism, mask consistency, occlusion, prompts that
land where they should."""
from dataclasses import replace

import numpy as np
import torch

from sam2_ros.sim import SyntheticScene, inner_point
from sam2_ros.training.data import make_clip, make_eval_clip
from sam2_ros.training.prompt_sampling import corrective_click, initial_prompt, sample_box, sample_points


def test_clips_are_deterministic_and_masks_are_disjoint():
    a = make_clip(np.random.default_rng(5), num_frames=3, size=64)
    b = make_clip(np.random.default_rng(5), num_frames=3, size=64)
    c = make_clip(np.random.default_rng(6), num_frames=3, size=64)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (3, 64, 64, 3) and a.frames.dtype == np.uint8
    overlap = a.masks.sum(axis=1).max()
    print("objects", a.num_objects, "max objects per pixel", overlap)
    assert overlap <= 1  # visible masks: a pixel belongs to at most one object


def test_eval_clip_has_an_occlusion_in_the_middle():
    clip = make_eval_clip(1_000_000, num_frames=21, size=96)
    area = clip.masks[:, 0].reshape(21, -1).sum(1)
    ends = max(area[0], area[-1])
    print("target area per frame", area.tolist())
    assert area[7:14].min() < 0.8 * ends  # the crossing object hides part of the target mid-clip
    assert area[0] > 0 and area[-1] > 0


def test_inner_point_is_deep_inside():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:45] = True  # a 20 x 40 rectangle: the deepest pixels are on its middle row
    x, y = inner_point(mask)
    print("inner point", x, y)
    assert mask[int(y), int(x)] and 18 <= y <= 21 and 22 <= x <= 27
    edge = np.zeros((40, 60), bool)
    edge[:, :30] = True  # touches three image borders: they count as the object's border
    x, y = inner_point(edge)
    print("inner point of a mask at the border", x, y)
    assert 13 <= x <= 16 and 18 <= y <= 21


def test_synthetic_frames_click_with_the_same_helper():
    frame = SyntheticScene(120, 160, num_objects=3, seed=4).frame(0)
    for k in range(len(frame.object_ids)):
        point = frame.inner_point(k)
        assert point == inner_point(frame.masks[k])
        assert frame.masks[k][int(point[1]), int(point[0])]
    hidden = replace(frame, masks=np.zeros_like(frame.masks))
    assert hidden.inner_point(0) is None


def test_prompts_come_from_the_mask():
    gen = torch.Generator().manual_seed(0)
    mask = torch.zeros(3, 32, 32, dtype=torch.bool)
    mask[0, 4:10, 4:12] = True
    mask[1, 20:30, 2:5] = True  # row 2 stays empty
    xy, found = sample_points(mask, gen)
    assert found.tolist() == [True, True, False]
    for i in range(2):
        assert mask[i, int(xy[i, 1]), int(xy[i, 0])]
    box = sample_box(mask[:2], gen, noise=0.0)
    print("boxes", box.tolist())
    assert box[0].flatten().tolist() == [4.0, 4.0, 12.0, 10.0] and box[1].flatten().tolist() == [2.0, 20.0, 5.0, 30.0]
    jittered = sample_box(mask[:2], gen, noise=0.1)
    assert (jittered - box).abs().max() <= 1.0 + 1e-6  # 10% of sides up to 10 px
    coords, labels = initial_prompt(mask[:2], gen, "click", 3)
    assert coords.shape == (2, 3, 2) and labels.eq(1).all()
    coords, labels = initial_prompt(mask[:2], gen, "box")
    assert labels.tolist() == [[2, 3], [2, 3]]


def test_corrective_clicks_fix_the_error_side():
    gen = torch.Generator().manual_seed(1)
    target = torch.zeros(3, 16, 16, dtype=torch.bool)
    target[:, 4:12, 4:12] = True
    pred = target.clone()
    pred[0, 4:12, 4:8] = False  # row 0 misses object pixels -> positive click there
    pred[1, 0:2, 0:16] = True  # row 1 has false positives -> negative click there
    xy, label = corrective_click(pred, target, gen)  # row 2 is exact -> padding
    print("corrective", xy.tolist(), label.tolist())
    assert label[:, 0].tolist() == [1, 0, -1]
    assert 4 <= xy[0, 0, 0] < 8 and 4 <= xy[0, 0, 1] < 12
    assert xy[1, 0, 1] < 2


def test_speed_scales_motion_and_keeps_the_first_frame():
    slow = make_clip(np.random.default_rng(11), num_frames=4, size=64, occluder=False, noise=False)
    fast = make_clip(np.random.default_rng(11), num_frames=4, size=64, occluder=False, noise=False, speed=3.0)
    assert np.array_equal(slow.frames[0], fast.frames[0]) and np.array_equal(slow.masks[0], fast.masks[0])
    moved_slow = (slow.masks[3] != slow.masks[0]).sum()
    moved_fast = (fast.masks[3] != fast.masks[0]).sum()
    print("pixels changed by frame 3: speed 1", moved_slow, "speed 3", moved_fast)
    assert moved_fast > moved_slow


def test_occluded_clips_always_train_the_occluded_object():
    from sam2_ros.training.batches import synthetic_batch

    batch = synthetic_batch(np.random.default_rng(3), clips=8, frames=8, objects=3, size=64, occluder_fraction=1.0)
    area = batch.targets[:, :, 0].reshape(8, 8, -1).sum(-1).astype(float)  # [clips, frames] target 0
    hidden = area[:, 2:6].min(1) / area[:, 0]
    print("least visible share of target 0 mid-clip, per clip", np.round(hidden, 2).tolist())
    assert np.median(hidden) < 0.5  # target 0 is the object the crossing one hides
    free = synthetic_batch(np.random.default_rng(3), clips=8, frames=8, objects=3, size=64, occluder_fraction=0.0)
    free_area = free.targets[:, :, 0].reshape(8, 8, -1).sum(-1).astype(float)
    assert np.median(free_area[:, 2:6].min(1) / free_area[:, 0]) > np.median(hidden)


def test_scene_batches_come_from_the_demo_camera():
    from sam2_ros.training.batches import MIN_AREA, scene_batch

    a = scene_batch(np.random.default_rng(8), clips=2, frames=4, objects=3, size=64)
    b = scene_batch(np.random.default_rng(8), clips=2, frames=4, objects=3, size=64)
    assert a.images.shape == (2, 4, 64, 64, 3) and a.targets.shape == (2, 4, 3, 64, 64)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)
    assert (a.targets[:, 0].reshape(2, 3, -1).mean(-1) >= MIN_AREA).all()  # every target visible when prompted
    assert a.targets.sum(axis=2).max() <= 1  # visible masks are disjoint
    assert not np.array_equal(a.images[:, 0], a.images[:, -1])  # the shapes move
