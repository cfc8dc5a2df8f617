"""One inference interface (the four SAM 2 parts + glue), three implementations: torch, onnxruntime, tensorrt."""
from __future__ import annotations

from typing import Any


def create_backend(*args: Any, **kwargs: Any) -> Any:
    """Settings -> a ready InferenceBackend, with a logged fallback (see `sam2_ros.backends.factory`)."""
    from sam2_ros.backends.factory import create_backend as _create  # lazy: keeps `import sam2_ros.backends` light

    return _create(*args, **kwargs)


__all__ = ["create_backend"]
