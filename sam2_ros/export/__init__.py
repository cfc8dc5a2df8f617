"""ONNX export of SAM 2's inference parts (`python -m sam2_ros.export`); TensorRT engines are built from these files
by `sam2_ros.backends.tensorrt_backend`."""
from sam2_ros.export.onnx_export import (DEFAULT_OPSET, METADATA_FILE, export_parts, read_metadata, state_hash,
                                         verify_export)
from sam2_ros.export.parts import PART_SPECS, PartModule, PartSpec, example_inputs

__all__ = ["DEFAULT_OPSET", "METADATA_FILE", "PART_SPECS", "PartModule", "PartSpec", "example_inputs",
           "export_parts", "read_metadata", "state_hash", "verify_export"]
