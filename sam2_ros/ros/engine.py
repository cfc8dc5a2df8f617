"""Build the tracker the node drives: one factory call for the backend, the model only through it (no ROS here)."""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

from sam2_ros.ros.params import Settings


@dataclass
class Engine:
    """The tracker plus the words the node reports about it (diagnostics, logs)."""

    tracker: Any
    backend: str
    device: str
    model: str
    random_weights: bool

    def info(self) -> dict[str, str]:
        """Key/values for /diagnostics."""
        return {"backend": self.backend, "device": self.device, "model": self.model,
                "weights": "RANDOM (no checkpoint)" if self.random_weights else "checkpoint"}


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _call_with_known(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call fn with only the keyword arguments its signature accepts (the factory's options grow over time)."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def build_engine(settings: Settings, log: Callable[[str], None]) -> Engine:
    """Settings -> StreamingTracker over the selected backend. Raises ValueError/RuntimeError with a clear reason."""
    import torch

    from sam2_ros.tracking import StreamingTracker

    if settings.cpu_threads > 0:
        torch.set_num_threads(settings.cpu_threads)
    device = resolve_device(settings.device)
    checkpoint = os.path.expanduser(settings.checkpoint) if settings.checkpoint else None
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise ValueError(f"checkpoint {checkpoint!r} does not exist")
    model_args = dict(checkpoint=checkpoint, image_size=settings.image_size, device=device)

    backend_name = settings.backend
    try:
        from sam2_ros.backends import create_backend
    except ImportError:
        create_backend = None
    if create_backend is not None:
        runner = _call_with_known(create_backend, backend_name, settings.model_config, precision=settings.precision,
                                  **model_args)
    else:
        if backend_name != "torch":
            log(f"backend {backend_name!r} is not available in this build (no sam2_ros.backends.create_backend); "
                "falling back to torch")
            backend_name = "torch"
        from sam2_ros.model import build_sam2

        runner = build_sam2(settings.model_config, **model_args)
        if settings.precision not in ("auto", "fp32"):
            log(f"precision {settings.precision} needs a backend that supports it; running fp32")

    from sam2_ros.tracking import TrackerOptions

    tracker = StreamingTracker(runner, TrackerOptions(history=settings.prompt_history,
                                                          memory_stride=settings.memory_stride))
    return Engine(tracker=tracker, backend=getattr(runner, "name", backend_name), device=device,
                  model=f"{settings.model_config}@{settings.image_size}", random_weights=checkpoint is None)

