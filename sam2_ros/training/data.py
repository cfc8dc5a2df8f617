"""Synthetic labelled video for training and measuring the micro SAM 2: textured backgrounds (with clutter and camera
shake), several moving shapes of varied colours, textures and sizes, occlusions, objects leaving and re-entering the
view, look-alike distractors, lighting changes and sensor noise. Every clip is a pure function of its seed.

    clip = make_clip(np.random.default_rng(0), num_frames=4, size=256)
    clip.frames  # [T, S, S, 3] uint8      clip.masks  # [T, K, S, S] bool, visible part of each object
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_ros.sim.shapes import hsv_to_rgb, outline_mask


@dataclass
class Clip:
    """A rendered clip: frames and the visible mask of every object (objects later in the list are in front)."""

    frames: np.ndarray  # [T, S, S, 3] uint8
    masks: np.ndarray  # [T, K, S, S] bool

    @property
    def num_objects(self) -> int:
        return int(self.masks.shape[1])


def _background(side: int, rng: np.random.Generator) -> np.ndarray:
    """A textured canvas of side x side: waves, a checker or stripes, blurry clutter blobs and grain."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    base = rng.uniform(60, 190, 3).astype(np.float32)
    img = np.broadcast_to(base, (side, side, 3)).copy()
    for _ in range(rng.integers(2, 7)):  # low-frequency colour waves
        fx, fy = rng.uniform(-0.06, 0.06, 2)
        img += np.sin(xx * fx + yy * fy + rng.uniform(0, 6.3))[:, :, None] * rng.uniform(-30, 30, 3)
    kind = rng.integers(0, 3)
    if kind == 0:  # checker
        cell = rng.uniform(8, 40)
        img += (((xx // cell + yy // cell) % 2) * rng.uniform(-25, 25))[:, :, None]
    elif kind == 1:  # stripes
        a = rng.uniform(0, np.pi)
        img += (np.sin((xx * np.cos(a) + yy * np.sin(a)) * rng.uniform(0.1, 0.5)) * rng.uniform(5, 25))[:, :, None]
    for _ in range(rng.integers(0, 8)):  # clutter: soft blobs that are not objects
        cx, cy, r = rng.uniform(0, side, 2).tolist() + [rng.uniform(4, side * 0.12)]
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        img += blob[:, :, None] * rng.uniform(-80, 80, 3)
    return np.clip(img, 0, 255)


def _object(rng: np.random.Generator, size: int, num_frames: int, like: dict | None = None) -> dict:
    """Random shape, look and trajectory of one object; `like` copies another's look (a distractor)."""
    obj: dict = {}
    if like is not None:
        obj.update({k: like[k] for k in ("sides", "harmonics", "colour", "colour2", "pattern", "freq", "aspect")})
    else:
        obj["sides"] = int(rng.choice([0, 0, 3, 4, 4, 5, 6]))  # 0: smooth outline from harmonics
        obj["harmonics"] = [(k, rng.uniform(0, 0.25 / k), rng.uniform(0, 6.3)) for k in range(2, 6)]
        hue = rng.uniform()
        obj["colour"] = hsv_to_rgb(hue, rng.uniform(0.2, 1.0), rng.uniform(0.3, 1.0))
        obj["colour2"] = hsv_to_rgb((hue + rng.uniform(0.1, 0.5)) % 1, rng.uniform(0.2, 1.0), rng.uniform(0.3, 1.0))
        obj["pattern"] = int(rng.integers(0, 4))  # flat, stripes, checker, radial gradient
        obj["freq"] = rng.uniform(0.1, 0.5)
        obj["aspect"] = rng.uniform(0.5, 1.0)
    obj["radius"] = size * rng.uniform(0.06, 0.28)
    obj["growth"] = rng.uniform(-0.01, 0.01)  # relative radius change per frame
    speed = size * rng.uniform(0.0, 0.04)
    heading = rng.uniform(0, 2 * np.pi)
    obj["pos"] = rng.uniform(0.15, 0.85, 2) * size
    obj["vel"] = np.array([np.cos(heading), np.sin(heading)]) * speed
    obj["angle"] = rng.uniform(0, 2 * np.pi)
    obj["spin"] = rng.uniform(-0.08, 0.08)
    return obj


def _path(obj: dict, num_frames: int, size: int, margin: float) -> np.ndarray:
    """Centres [T, 2]: straight motion that bounces off walls `margin` pixels outside the view (leave, re-enter)."""
    lo, hi = -margin, size + margin
    span = hi - lo
    raw = obj["pos"][None, :] + obj["vel"][None, :] * np.arange(num_frames)[:, None] - lo
    folded = np.mod(raw, 2 * span)
    return np.where(folded > span, 2 * span - folded, folded) + lo


def _paint(obj: dict, dx: np.ndarray, dy: np.ndarray, angle: float, shade: float) -> np.ndarray:
    """Colour [h, w, 3] of the object's surface at offsets (dx, dy)."""
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    pattern = obj["pattern"]
    if pattern == 0:
        w = np.zeros_like(u)
    elif pattern == 1:
        w = 0.5 + 0.5 * np.sin(u * obj["freq"] * 2)
    elif pattern == 2:
        cell = 3.0 / obj["freq"]
        w = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    else:
        w = np.clip(np.hypot(u, v) / (obj["radius"] + 1e-3), 0, 1)
    colour = obj["colour"][None, None] * (1 - w[..., None]) + obj["colour2"][None, None] * w[..., None]
    return colour * shade


def make_clip(rng: np.random.Generator, num_frames: int = 4, size: int = 256, num_objects: tuple[int, int] = (2, 6),
              occluder: bool | None = None, noise: bool = True, speed: float = 1.0) -> Clip:
    """Render a random clip; with `occluder`, the last object crosses the first one's path mid-clip. `speed` scales
    every motion (a short clip at speed 3 spans what 3x as many frames show at speed 1: whole occlusions fit)."""
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    objs: list[dict] = []
    for k in range(count):
        like = objs[int(rng.integers(0, len(objs)))] if objs and rng.uniform() < 0.25 else None  # distractor
        objs.append(_object(rng, size, num_frames, like))
        objs[-1]["vel"] = objs[-1]["vel"] * speed
        objs[-1]["spin"] *= speed
        objs[-1]["growth"] *= speed
    shake = int(size * 0.05)
    canvas = _background(size + 2 * shake, rng)
    margin = size * rng.uniform(0.0, 0.3)
    paths = [_path(o, num_frames, size, margin) for o in objs]
    if occluder is None:
        occluder = rng.uniform() < 0.3
    if occluder and count >= 2 and num_frames >= 3:
        # The front object passes over the first object's centre at the middle frame.
        mid = num_frames // 2
        front = objs[-1]
        front["radius"] = max(front["radius"], objs[0]["radius"] * rng.uniform(0.8, 1.3))
        step = size * rng.uniform(0.02, 0.05) * speed
        heading = rng.uniform(0, 2 * np.pi)
        vel = np.array([np.cos(heading), np.sin(heading)]) * step
        paths[-1] = paths[0][mid][None, :] + vel[None, :] * (np.arange(num_frames) - mid)[:, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    masks = np.zeros((num_frames, count, size, size), bool)
    gain0, gain1 = rng.uniform(0.75, 1.25, 2)
    sigma = rng.uniform(0, 10) if noise else 0.0
    cam = rng.integers(-shake, shake + 1, 2)
    for t in range(num_frames):
        cam = np.clip(cam + rng.integers(-2, 3, 2), -shake, shake)
        img = canvas[shake + cam[1]:shake + cam[1] + size, shake + cam[0]:shake + cam[0] + size].copy()
        for k, obj in enumerate(objs):
            cx, cy = paths[k][t]
            radius = obj["radius"] * (1 + obj["growth"] * t)
            angle = obj["angle"] + obj["spin"] * t
            reach = radius * 1.6 / min(obj["aspect"], 1.0) + 2
            y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, size)
            x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, size)
            if y1 <= y0 or x1 <= x0:
                continue
            dx, dy = xx[y0:y1, x0:x1] - cx, yy[y0:y1, x0:x1] - cy
            inside = outline_mask(obj["sides"], obj["harmonics"], obj["aspect"], dx, dy, radius, angle)
            shade = 0.85 + 0.3 * (0.5 + 0.5 * np.sin(0.3 * t + k))
            patch = img[y0:y1, x0:x1]
            patch[inside] = _paint(obj, dx, dy, angle, shade)[inside]
            masks[t, :k, y0:y1, x0:x1] &= ~inside  # earlier objects are hidden where this one is drawn
            masks[t, k, y0:y1, x0:x1] = inside
        gain = gain0 + (gain1 - gain0) * t / max(num_frames - 1, 1)  # slow lighting change
        img = img * gain
        if sigma > 0:
            img = img + rng.normal(0, sigma, img.shape).astype(np.float32)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return Clip(frames, masks)


def make_eval_clip(seed: int, num_frames: int = 31, size: int = 256) -> Clip:
    """A held-out test clip: the target (object 0) is occluded by a crossing object in the middle of the clip, with
    2-4 other moving objects (possibly look-alikes) around; the target stays in view. Seeds >= 10**6 are reserved
    for evaluation (training draws its clips from a generator seeded below that)."""
    rng = np.random.default_rng(seed)
    while True:
        clip = make_clip(rng, num_frames, size, num_objects=(3, 5), occluder=True, noise=True)
        area = clip.masks[:, 0].reshape(num_frames, -1).sum(1)
        # Keep clips where the target starts well visible and is back in view at the end.
        if area[0] >= 0.01 * size * size and area[-1] >= 0.005 * size * size and (area[1:] > 0).mean() > 0.7:
            return clip
