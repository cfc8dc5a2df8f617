"""The node's parameters: one typed table (name, type, default, range, meaning) that the node declares and
config/sam2.yaml mirrors. `Settings` is the table; `PARAMS` lists the same fields as declarations.

`test/test_node_params.py` checks that the YAML and this table agree, so there is one source of defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
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


def _param(default: Any, description: str, low: float | None = None, high: float | None = None,
           step: float | None = None, choices: tuple[str, ...] = (), dynamic: bool = False) -> Any:
    """A Settings field that is also a declared parameter: its default, range and meaning written once."""
    return field(default=default, metadata={"param": dict(description=description, low=low, high=high, step=step,
                                                          choices=choices, dynamic=dynamic)})


@dataclass
class Settings:
    """Typed parameter values as read in on_configure; every field is one declared parameter (PARAMS)."""

    autostart: bool = _param(True, "walk the lifecycle to active at start (configure + activate)")
    model_config: str = _param(
        "sam2.1_hiera_t", "SAM 2 model config",
        choices=("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
                 "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l", "sam2_micro"))
    checkpoint: str = _param(
        "", "path to Meta's .pt checkpoint for model_config; empty = random weights (a loud warning)")
    image_size: int = _param(1024, "model input size (square); smaller trades quality for speed", 128, 1024, 32)
    backend: str = _param(
        "auto", "inference backend; auto = tensorrt where it and a GPU exist, else torch on the GPU, else onnxruntime "
        "on the CPU (exported once, cached)", choices=("auto", "torch", "onnxruntime", "tensorrt"))
    device: str = _param("auto", "torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    precision: str = _param(
        "auto", "inference precision; auto = fp16 for tensorrt, bf16 (fp16 without bf16) for torch on a GPU, fp32 on "
        "the CPU",
        choices=("auto", "fp32", "fp16", "bf16"))
    cpu_threads: int = _param(0, "CPU threads of torch and ONNX Runtime; 0 = torch's default", 0, 256, 1)
    max_objects: int = _param(16, "most objects tracked at once (also the TensorRT profile's batch); a prompt for "
                              "one more is refused", 1, 255, 1)
    mask_threshold: float = _param(0.0, "mask logit above which a pixel belongs to the object", -32.0, 32.0,
                                   dynamic=True)
    min_iou: float = _param(0.0, "objects whose predicted IoU is below this are published with an empty mask",
                            0.0, 1.0, dynamic=True)
    prompt_history: int = _param(16, "recent frames kept so a prompt can name the frame it was drawn on", 1, 300, 1)
    memory_stride: int = _param(
        0, "SAM 2's memory_temporal_stride_for_eval: memories of the previous frame and of every n-th frame before "
        "it (longer occlusions); 0 = the model config's (1)", 0, 30, 1)
    image_reliability: str = _param(
        "best_effort", "QoS reliability of the image subscription (sensor data = best_effort)",
        choices=("best_effort", "reliable"))
    image_qos_depth: int = _param(1, "QoS history depth of the image subscription", 1, 100, 1)
    output_qos_depth: int = _param(2, "QoS history depth of the (reliable) outputs", 1, 100, 1)
    use_compressed: bool = _param(
        False, "subscribe to image/compressed (sensor_msgs/CompressedImage) instead of image")
    publish_masks: bool = _param(True, "publish ~/masks (ObjectMaskArray)", dynamic=True)
    publish_confidence: bool = _param(True, "publish ~/confidence (ObjectConfidenceArray)", dynamic=True)
    publish_label_image: bool = _param(True, "publish ~/label_image (pixel = object id)", dynamic=True)
    publish_overlay: bool = _param(True, "publish ~/overlay (rgb8, masks blended over the frame)", dynamic=True)
    overlay_alpha: float = _param(0.5, "opacity of the mask colours in ~/overlay", 0.0, 1.0, dynamic=True)
    mask_resolution: str = _param(
        "full", "ObjectMask.mask size: full = source size; low = the decoder's own grid at the source aspect, <= 256 px "
        "on the long side (mask_scale says the factor; label image and overlay stay full size)",
        choices=("full", "low"), dynamic=True)
    everything_points_per_side: int = _param(
        16, "~/segment_everything grid when the request says 0: n x n single-point prompts", 1, 64, 1, dynamic=True)
    everything_min_iou: float = _param(
        0.6, "~/segment_everything: least predicted IoU of a kept mask when the request says 0 (tuned on the micro "
        "model; real SAM 2 checkpoints want ~0.8-0.88)", 0.0, 1.0, dynamic=True)
    everything_min_stability: float = _param(
        0.6, "~/segment_everything: least stability (IoU of the mask at logit +1 vs -1) when the request says 0 "
        "(tuned on the micro model; real SAM 2 checkpoints want ~0.95)", 0.0, 1.0, dynamic=True)
    click_object_id: int = _param(1, "object that ~/click, ~/click_negative and ~/clicked_point prompt", 1, 65535,
                                  1, dynamic=True)
    diagnostics_period: float = _param(1.0, "seconds between /diagnostics messages", 0.1, 60.0)


PARAMS: tuple[Param, ...] = tuple(Param(f.name, f.default, **f.metadata["param"]) for f in fields(Settings))
BY_NAME = {p.name: p for p in PARAMS}


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

