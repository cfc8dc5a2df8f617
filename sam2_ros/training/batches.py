"""Training batches: synthetic clips (or a user's folder of images + masks) turned into model-ready tensors,
produced in a background thread. Batch i is a pure function of (seed, i), so a resumed run sees the same data."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sam2_ros.model.sam2 import IMAGE_MEAN, IMAGE_STD
from sam2_ros.sim import SyntheticScene
from sam2_ros.training.data import make_clip

MIN_AREA = 0.003  # a target must cover at least this fraction of the prompted frame
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class Batch:
    """images [B, T, S, S, 3] uint8, targets [B, T, K, S, S] bool (every target visible on frame 0)."""

    images: np.ndarray
    targets: np.ndarray

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images [B, T, 3, S, S] and bool targets on `device`."""
        x = torch.from_numpy(self.images).to(device).permute(0, 1, 4, 2, 3).float() / 255.0
        mean = torch.tensor(IMAGE_MEAN, device=x.device).view(1, 1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD, device=x.device).view(1, 1, 3, 1, 1)
        return (x - mean) / std, torch.from_numpy(self.targets).to(device)


def visible_objects(masks: np.ndarray, min_area: float = MIN_AREA) -> np.ndarray:
    """Indices of the objects in masks [K, H, W] that cover at least `min_area` of the frame (prompt-able)."""
    if len(masks) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(masks.reshape(masks.shape[0], -1).mean(1) >= min_area)


def synthetic_batch(rng: np.random.Generator, clips: int, frames: int, objects: int, size: int,
                    occluder_fraction: float | None = None, max_speed: float = 1.0) -> Batch:
    """`clips` random clips of `frames` frames, each with `objects` targets visible on its first frame.

    With `occluder_fraction`, that share of the clips has an object crossing in front of object 0 mid-clip, and
    object 0 is then always one of the targets (so the memory learns to hold on through the occlusion); each clip's
    motion is sped up by a factor drawn in [1, max_speed]. Without it, the generator's own 30 % (object 0 a target
    only by chance) at normal speed."""
    images, targets = [], []
    while len(images) < clips:
        occluded = None if occluder_fraction is None else bool(rng.uniform() < occluder_fraction)
        speed = float(rng.uniform(1.0, max_speed)) if max_speed > 1.0 else 1.0
        clip = make_clip(rng, frames, size, num_objects=(max(2, objects), max(2, objects) + 3), occluder=occluded,
                         speed=speed)
        ok = visible_objects(clip.masks[0])
        if ok.size < objects:
            continue
        if occluded and frames > 1 and ok[0] == 0:
            pick = np.concatenate([[0], rng.choice(ok[1:], objects - 1, replace=False)]).astype(np.int64)
        else:
            pick = rng.choice(ok, objects, replace=False)
        images.append(clip.frames)
        targets.append(clip.masks[:, pick])
    return Batch(np.stack(images), np.stack(targets))


def scene_batch(rng: np.random.Generator, clips: int, frames: int, objects: int, size: int) -> Batch:
    """Clips from the demo's camera (`SyntheticScene`: large striped shapes on Lissajous paths that overlap), rendered
    4:3 and squeezed to the square input as the node does with a 640x480 camera; frame stride 1-3 (the node skips
    frames when the camera is faster than the model). Scene seeds >= 1000 (the demo's are small)."""
    images, targets = [], []
    width = size * 4 // 3
    columns = np.linspace(0, width - 1, size).round().astype(np.int64)  # nearest-neighbour squeeze to size x size
    while len(images) < clips:
        scene = SyntheticScene(size, width, num_objects=int(rng.integers(max(3, objects), 6)),
                               seed=int(rng.integers(1000, 2**31)))
        start, stride = int(rng.integers(0, 10_000)), int(rng.integers(1, 4))
        shots = [scene.frame(start + stride * t) for t in range(frames)]
        masks = np.stack([f.masks[:, :, columns] for f in shots])  # [T, K, S, S]
        ok = visible_objects(masks[0])
        if ok.size < objects:
            continue
        pick = rng.choice(ok, objects, replace=False)
        images.append(np.stack([f.rgb[:, columns] for f in shots]))
        targets.append(masks[:, pick])
    return Batch(np.stack(images), np.stack(targets))


class FolderSource:
    """A user's data: images in one folder, masks with the same file stem in another (PNG; each distinct
    non-zero value is one object). Images and masks are resized to the model's square input."""

    def __init__(self, images: str | Path, masks: str | Path, size: int) -> None:
        from PIL import Image  # only needed for folders

        self._image_cls = Image
        self.size = size
        image_dir, mask_dir = Path(images), Path(masks)
        self.pairs = []
        for path in sorted(image_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            candidates = [mask_dir / (path.stem + suffix) for suffix in (".png", ".bmp")]
            mask_path = next((c for c in candidates if c.exists()), None)
            if mask_path is not None:
                self.pairs.append((path, mask_path))
        if not self.pairs:
            raise ValueError(f"no image in {image_dir} has a mask with the same stem in {mask_dir}")

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(rgb [S, S, 3] uint8, masks [K, S, S] bool) of pair `index`."""
        image_path, mask_path = self.pairs[index]
        image = self._image_cls.open(image_path).convert("RGB").resize((self.size, self.size),
                                                                        self._image_cls.Resampling.BICUBIC)
        label = np.asarray(self._image_cls.open(mask_path).resize((self.size, self.size),
                                                                  self._image_cls.Resampling.NEAREST))
        if label.ndim == 3:
            label = label[..., 0]
        ids = [v for v in np.unique(label) if v != 0]
        masks = np.stack([label == v for v in ids]) if ids else np.zeros((0, self.size, self.size), bool)
        return np.asarray(image), masks

    def batch(self, rng: np.random.Generator, clips: int) -> Batch:
        """`clips` single-frame samples, one random visible object of a random image each."""
        images, targets = [], []
        for _ in range(100 * clips):
            if len(images) == clips:
                break
            rgb, masks = self.load(int(rng.integers(len(self.pairs))))
            ok = visible_objects(masks, MIN_AREA / 10)
            if ok.size == 0:
                continue
            images.append(rgb[None])
            targets.append(masks[rng.choice(ok)][None, None])
        if len(images) < clips:
            raise ValueError("the mask folder has (almost) no non-empty object masks")
        return Batch(np.stack(images), np.stack(targets))


def prefetch(make: Callable[[int], Batch], start: int, depth: int = 3) -> Iterator[tuple[int, Batch]]:
    """Yield (i, make(i)) for i = start, start+1, ... with `depth` batches rendered ahead in a daemon thread."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        i = start
        while not stop.is_set():
            try:
                item = (i, make(i))
            except Exception as error:  # surfaced in the consumer
                item = (i, error)
            while not stop.is_set():
                try:
                    slots.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            i += 1

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            i, item = slots.get()
            if isinstance(item, Exception):
                raise item
            yield i, item
    finally:
        stop.set()
