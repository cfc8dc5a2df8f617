"""Depth image arrays -> metres (REP 118), ROS-free: the node decodes the Image message, this module reads the values.

REP 118: `32FC1` is metres with NaN for "no reading"; `16UC1` is millimetres with 0 for "no reading". Drivers also
write 0, +/-inf or negative values into 32FC1 images, and some publish 16-bit depth as `mono16`: all are handled here
(mono16 read as 16UC1 millimetres). Every invalid reading becomes NaN, so one test (`z >= depth_min`, false for NaN)
drops it later.
"""
from __future__ import annotations

import numpy as np

# encoding -> (the array dtype it must arrive in, metres per unit)
DEPTH_ENCODINGS: dict[str, tuple[np.dtype, float]] = {
    "16UC1": (np.dtype(np.uint16), 0.001),
    "mono16": (np.dtype(np.uint16), 0.001),   # not REP 118, but what some drivers publish: read as 16UC1 millimetres
    "32FC1": (np.dtype(np.float32), 1.0),
}


class DepthError(ValueError):
    """A depth image that cannot be read (the text says why, for a log line)."""


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """[H, W] (or [H, W, 1]) depth in its encoding's units -> [H, W] float32 metres, NaN where there is no reading.

    16UC1/mono16: millimetres, 0 = invalid. 32FC1: metres, NaN, 0, +/-inf and negative = invalid. Byte order is the
    array's (a big-endian view from the decoder is fine); the result is a new native float32 array.
    """
    if encoding not in DEPTH_ENCODINGS:
        shown = repr(encoding) if len(str(encoding)) <= 40 else repr(str(encoding)[:40]) + "..."  # from outside
        raise DepthError(f"unsupported depth encoding {shown} (supported: {', '.join(DEPTH_ENCODINGS)})")
    dtype, unit = DEPTH_ENCODINGS[encoding]
    try:
        arr = np.asarray(depth)
    except ValueError:  # ragged nested sequences
        raise DepthError(f"depth must be an [H, W] array, got a ragged {type(depth).__name__}") from None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise DepthError(f"depth must be [H, W] or [H, W, 1], got shape {arr.shape}")
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise DepthError(f"{encoding} depth must be {dtype.name}, got {arr.dtype}")
    if dtype.kind == "u":
        metres = arr.astype(np.float32)
        metres *= np.float32(unit)
        metres[arr == 0] = np.nan
        return metres
    metres = arr.astype(np.float32, copy=True)  # native byte order, writable
    metres[~(metres > 0.0) | np.isinf(metres)] = np.nan  # NaN, 0, negative (not > 0) and +inf
    return metres
