"""One inference interface (the four SAM 2 parts + glue), three implementations: torch, onnxruntime, tensorrt."""
from sam2_ros.backends.base import InferenceBackend
from sam2_ros.backends.factory import create_backend

__all__ = ["InferenceBackend", "create_backend"]
