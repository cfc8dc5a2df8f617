"""The node's parameters: one table (name, default, range, meaning) that the node declares and config/sam2.yaml mirrors.

`test/test_node_params.py` checks that the YAML and this table agree, so there is one source of defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One declared parameter; `choices` or (`low`, `high`[, `step`]) give its allowed values."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    dynamic: bool = False  # takes effect at once; the others at the next configure

    def range_text(self) -> str:
        """Human text of the allowed values, for the README table."""
        if self.choices:
            return " \\| ".join(self.choices)
        if self.low is not None:
            step = f", step {self.step:g}" if self.step else ""
            return f"{self.low:g} .. {self.high:g}{step}"
        return "bool" if isinstance(self.default, bool) else "any"


PARAMS: tuple[Param, ...] = (
    Param("autostart", True, "walk the lifecycle to active at start (configure + activate)"),
    Param("model_config", "sam2.1_hiera_t", "SAM 2 model config",
          choices=("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
                   "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l", "sam2_micro")),
    Param("checkpoint", "", "path to Meta's .pt checkpoint for model_config; empty = random weights (a loud warning)"),
    Param("image_size", 1024, "model input size (square); smaller trades quality for speed", 128, 1024, 32),
    Param("backend", "auto", "inference backend; auto = tensorrt where it and a GPU exist, else torch on the GPU, "
          "else onnxruntime on the CPU (exported once, cached)", choices=("auto", "torch", "onnxruntime", "tensorrt")),
    Param("device", "auto", "torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N"),
    Param("precision", "auto", "inference precision; auto = fp16 for tensorrt, bf16 (fp16 without bf16) for torch on a "
          "GPU, fp32 on the CPU",
          choices=("auto", "fp32", "fp16", "bf16")),
    Param("cpu_threads", 0, "CPU threads of torch and ONNX Runtime; 0 = torch's default", 0, 256, 1),
    Param("max_objects", 16, "most objects tracked at once (also the TensorRT profile's batch); a prompt for one "
          "more is refused", 1, 255, 1),
    Param("mask_threshold", 0.0, "mask logit above which a pixel belongs to the object", -32.0, 32.0, dynamic=True),
    Param("min_iou", 0.0, "objects whose predicted IoU is below this are published with an empty mask", 0.0, 1.0,
          dynamic=True),
    Param("prompt_history", 16, "recent frames kept so a prompt can name the frame it was drawn on", 1, 300, 1),
    Param("memory_stride", 0, "SAM 2's memory_temporal_stride_for_eval: memories of the previous frame and of every "
          "n-th frame before it (longer occlusions); 0 = the model config's (1)", 0, 30, 1),
    Param("image_reliability", "best_effort", "QoS reliability of the image subscription (sensor data = best_effort)",
          choices=("best_effort", "reliable")),
    Param("image_qos_depth", 1, "QoS history depth of the image subscription", 1, 100, 1),
    Param("output_qos_depth", 2, "QoS history depth of the (reliable) outputs", 1, 100, 1),
    Param("use_compressed", False, "subscribe to image/compressed (sensor_msgs/CompressedImage) instead of image"),
    Param("publish_masks", True, "publish ~/masks (ObjectMaskArray)", dynamic=True),
    Param("publish_confidence", True, "publish ~/confidence (ObjectConfidenceArray)", dynamic=True),
    Param("publish_label_image", True, "publish ~/label_image (pixel = object id)", dynamic=True),
    Param("publish_overlay", True, "publish ~/overlay (rgb8, masks blended over the frame)", dynamic=True),
    Param("overlay_alpha", 0.5, "opacity of the mask colours in ~/overlay", 0.0, 1.0, dynamic=True),
    Param("click_object_id", 1, "object that ~/click, ~/click_negative and ~/clicked_point prompt", 1, 65535, 1,
          dynamic=True),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.1, 60.0),
)

BY_NAME = {p.name: p for p in PARAMS}


@dataclass
class Settings:
    """Typed parameter values as read in on_configure."""

    autostart: bool = True
    model_config: str = "sam2.1_hiera_t"
    checkpoint: str = ""
    image_size: int = 1024
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    cpu_threads: int = 0
    max_objects: int = 16
    mask_threshold: float = 0.0
    min_iou: float = 0.0
    prompt_history: int = 16
    memory_stride: int = 0
    image_reliability: str = "best_effort"
    image_qos_depth: int = 1
    output_qos_depth: int = 2
    use_compressed: bool = False
    publish_masks: bool = True
    publish_confidence: bool = True
    publish_label_image: bool = True
    publish_overlay: bool = True
    overlay_alpha: float = 0.5
    click_object_id: int = 1
    diagnostics_period: float = 1.0


def validate(name: str, value: Any) -> str | None:
    """None when `value` is allowed for parameter `name`, else the reason (ranges are also enforced by descriptors)."""
    p = BY_NAME.get(name)
    if p is None:
        return None
    if p.choices and value not in p.choices:
        return f"{name} must be one of {', '.join(p.choices)}; got {value!r}"
    if p.name == "device" and not (value in ("auto", "cpu", "cuda") or str(value).startswith("cuda:")):
        return f"device must be auto, cpu, cuda or cuda:N; got {value!r}"
    if p.low is not None and not (p.low <= value <= p.high):
        return f"{name} must be in [{p.low:g}, {p.high:g}]; got {value!r}"
    return None

