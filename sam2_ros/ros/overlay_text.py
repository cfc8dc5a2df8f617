"""Captions in ~/overlay: each object's id and label on a tag of its colour, next to its mask.

A caption's pixels are rendered once with Pillow's ImageDraw and cached (bounded), so a frame costs one small copy per
object, not a text layout; labels come from topics, so they are cut to MAX_CAPTION characters.
"""
from __future__ import annotations

import functools

import numpy as np

MAX_CAPTION = 24  # characters of a caption (a label from a topic can be any length)
PAD = 2  # pixels around the text on its tag


@functools.lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont  # a dependency (package.xml python3-pil, requirements/ros.txt)

    return ImageFont.load_default()


@functools.lru_cache(maxsize=256)
def caption_mask(text: str) -> np.ndarray:
    """[h, w] bool: the glyph pixels of `text` with PAD pixels around (the tag's size)."""
    from PIL import Image, ImageDraw

    font = _font()
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    image = Image.new("L", (x1 - x0 + 2 * PAD, y1 - y0 + 2 * PAD), 0)
    ImageDraw.Draw(image).text((PAD - x0, PAD - y0), text, fill=255, font=font)
    mask = np.asarray(image) > 127
    mask.setflags(write=False)  # shared through the cache
    return mask


def caption(object_id: int, label: str) -> str:
    """The text shown for an object: "3 cup", or "3" without a label."""
    text = f"{object_id} {label}" if label else str(object_id)
    return text if len(text) <= MAX_CAPTION else text[:MAX_CAPTION - 1] + "~"


def draw_caption(canvas: np.ndarray, text: str, x: int, y: int, colour: np.ndarray) -> None:
    """Draw `text` on a tag of `colour` into canvas [H, W, 3] uint8 (in place), its top-left corner just above
    (x, y) where there is room, else at y; clipped to the image."""
    glyphs = caption_mask(text)  # [h, w]
    h, w = glyphs.shape
    height, width = canvas.shape[:2]
    top = y - h if y - h >= 0 else y
    left = min(max(0, x), max(0, width - w))
    bottom, right = min(height, top + h), min(width, left + w)
    if bottom <= top or right <= left:
        return
    patch = canvas[top:bottom, left:right]
    patch[:] = colour
    ink = 0 if int(colour.astype(np.int32) @ np.array([299, 587, 114])) > 128_000 else 255  # dark on light tags
    patch[glyphs[:bottom - top, :right - left]] = ink
