"""Drawing primitives of the simulated world: colours, shape outlines and background texture (numpy only).

The synthetic camera (scene.py) draws its four named shapes with `named_shape_mask`; the training clips
(sam2_ros/training/data.py) draw polygons and smooth outlines with `outline_mask`; both colour with `hsv_to_rgb`.
"""
from __future__ import annotations

import numpy as np

SHAPES = ("disc", "box", "ellipse", "triangle")


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> RGB float in [0, 255]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array([r, g, b], np.float32) * 255


def named_shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, size: float, aspect: float, angle: float) -> np.ndarray:
    """Inside-test of one shape at offsets (dx, dy) from its centre, rotated by `angle`."""
    u = dx * np.cos(angle) + dy * np.sin(angle)   # object axes
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    if shape == "disc":
        return dx * dx + dy * dy <= size * size
    if shape == "box":
        return (np.abs(u) <= size) & (np.abs(v) <= size * aspect)
    if shape == "ellipse":
        return (u / size) ** 2 + (v / (size * aspect)) ** 2 <= 1.0
    # triangle: three half-planes of an equilateral triangle with circumradius `size`
    inside = np.ones_like(u, dtype=bool)
    for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
        inside &= u * np.cos(a) + v * np.sin(a) <= size / 2
    return inside


def outline_mask(sides: int, harmonics: list, aspect: float, dx: np.ndarray, dy: np.ndarray, radius: float,
                 angle: float) -> np.ndarray:
    """Inside test of a regular polygon (`sides` >= 3) or, with sides 0, a smooth outline whose radius is modulated by
    `harmonics` [(k, amplitude, phase)], squashed by `aspect`, at offsets (dx, dy) from its centre."""
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    if sides:  # regular polygon: distance to the edge along theta
        sector = 2 * np.pi / sides
        edge = radius * np.cos(np.pi / sides) / np.cos(np.mod(theta, sector) - sector / 2)
    else:
        edge = radius * (1 + sum(a * np.cos(k * theta + p) for k, a, p in harmonics))
    return r <= edge


def texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Muted, smoothly varying background with fine grain (so the model sees texture, not a flat colour)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for _ in range(6):  # low-frequency waves in random directions and colours
        fx, fy = rng.uniform(-0.05, 0.05, 2)
        wave = np.sin(xx * fx + yy * fy + rng.uniform(0, 2 * np.pi))
        img += wave[:, :, None] * rng.uniform(5, 20, 3)[None, None, :]
    checker = ((xx // 24 + yy // 24) % 2)[:, :, None] * 12.0
    img += 110 + checker + rng.normal(0, 6, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)
