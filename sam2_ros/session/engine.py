"""Build the tracker a session drives: one factory call for the backend (which `auto` picks: backends/factory.py),
the model only through it; the node's settings in, a StreamingTracker and the words to report about it out (ROS-free)."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from sam2_ros.backends import create_backend
from sam2_ros.backends.factory import missing_device
from sam2_ros.tracking import StreamingTracker, TrackerOptions


@dataclass
class Engine:
    """The tracker plus the words the node reports about it (diagnostics, logs)."""

    tracker: StreamingTracker
    backend: str
    device: str
    model: str
    random_weights: bool
    seconds: float = 0.0  # time to build the backend (export / engine build / warm-up included)

    def info(self) -> dict[str, str]:
        """Key/values for /diagnostics."""
        return {"backend": self.backend, "device": self.device, "model": self.model,
                "weights": "RANDOM (no checkpoint)" if self.random_weights else "checkpoint",
                "ready_s": f"{self.seconds:.1f}"}


class _ToRosLogger(logging.Handler):
    """Forwards the library's Python log records (export progress, fallbacks) to the node's logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__(logging.INFO)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        # Two call sites: rclpy refuses one call site that logs at two severities.
        if record.levelno >= logging.WARNING:
            self.ros_logger.warning(text)
        else:
            self.ros_logger.info(text)


@contextlib.contextmanager
def _library_logs_to(ros_logger: Any) -> Iterator[None]:
    """While building: `sam2_ros.*` INFO and above go to the node's logger (and not also to stderr)."""
    library = logging.getLogger("sam2_ros")
    handler = _ToRosLogger(ros_logger)
    level, propagate = library.level, library.propagate
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
        library.propagate = propagate


def build_engine(settings: Any, ros_logger: Any) -> Engine:
    """Settings (the node's: device, checkpoint, backend, model_config, image_size, precision, max_objects,
    cpu_threads, prompt_history, memory_stride) -> StreamingTracker over the selected backend. Raises ValueError/RuntimeError with a clear reason,
    e.g. for a `device` this machine does not have (cuda without a GPU, cuda:N beyond its GPUs).

    ros_logger: the node's logger (`.info`, `.warning`); the factory's messages (which backend `auto` chose, ONNX
    export progress and time, fallbacks) are forwarded to it.
    """
    problem = missing_device(settings.device)
    if problem:  # never run elsewhere than the parameter (and so the log line and /diagnostics) says
        raise ValueError(f"{problem}; set device to auto (a GPU where there is one, else the CPU) or cpu")
    if settings.cpu_threads > 0:
        torch.set_num_threads(settings.cpu_threads)
    checkpoint = os.path.expanduser(settings.checkpoint) if settings.checkpoint else None
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise ValueError(f"checkpoint {checkpoint!r} does not exist")
    start = time.perf_counter()
    with _library_logs_to(ros_logger):
        backend = create_backend(settings.backend, settings.model_config, checkpoint=checkpoint,
                                 image_size=settings.image_size, device=settings.device,
                                 precision=settings.precision, max_objects=settings.max_objects,
                                 threads=settings.cpu_threads or None)
    tracker = StreamingTracker(backend, TrackerOptions(history=settings.prompt_history,
                                                       memory_stride=settings.memory_stride))
    return Engine(tracker=tracker, backend=backend.name, device=str(backend.device),
                  model=f"{settings.model_config}@{settings.image_size}", random_weights=checkpoint is None,
                  seconds=time.perf_counter() - start)
