"""The node's parameters: one typed table (name, type, default, range, meaning) that the node declares and
config/sam2.yaml mirrors. `Settings` is the table; `PARAMS` lists the same fields as declarations, which
`declare_parameters` puts on the node (with ranges as ParameterDescriptors).

`test/test_node_params.py` checks that the YAML and this table agree, so there is one source of defaults.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
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
        """Human text of the allowed values, for the docs/node.md table."""
        if self.choices:
            return " \\| ".join(self.choices)
        if self.low is not None:
            step = f", step {self.step:g}" if self.step else ""
            return f"{self.low:g} .. {self.high:g}{step}"
        return "bool" if isinstance(self.default, bool) else "any"


def _param(default: Any, description: str, low: float | None = None, high: float | None = None,
           step: float | None = None, choices: tuple[str, ...] = (), dynamic: bool = False) -> Any:
    """A Settings field that is also a declared parameter: its default, range and meaning written once (a list
    default, e.g. a string array, is copied per instance)."""
    metadata = {"param": dict(description=description, low=low, high=high, step=step, choices=choices,
                              dynamic=dynamic)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Settings:
    """Typed parameter values as read in on_configure; every field is one declared parameter (PARAMS)."""

    autostart: bool = _param(True, "walk the lifecycle to active at start (configure + activate)")
    model_config: str = _param(
        "sam2.1_hiera_t", "SAM 2 model config",
        choices=("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
                 "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l", "sam2_micro", "edgetam"))
    checkpoint: str = _param(
        "", "path to Meta's .pt checkpoint for model_config; empty = random weights (a loud warning)")
    image_size: int = _param(1024, "model input size (square); smaller trades quality for speed", 128, 1024, 32)
    backend: str = _param(
        "auto", "inference backend; auto = tensorrt where it and a GPU exist, else torch on the GPU, else onnxruntime "
        "on the CPU (exported once, cached)", choices=("auto", "torch", "onnxruntime", "tensorrt"))
    device: str = _param("auto", "torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N; a device "
                                 "this machine does not have fails the configure")
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
    input_qos_depth: int = _param(
        100, "QoS history depth (reliable) of ~/prompt, ~/detections and the click topics: a burst of this many "
        "messages waits to be handled instead of being dropped", 1, 10000, 1)
    service_qos_depth: int = _param(
        100, "QoS history depth of the services' requests and responses: this many calls at once per service wait "
        "to be answered instead of being dropped", 1, 10000, 1)
    max_queued_jobs: int = _param(
        100, "prompts, detection arrays and service calls waiting for the inference thread; one more is refused "
        "with 'busy (N jobs queued)'", 1, 10000, 1, dynamic=True)
    time_jump_reset: float = _param(
        1.0, "seconds a camera stamp may go back before the tracker is reset once (a looping bag, a simulator "
        "reset: WARN + REMOVED events); 0 = never", 0.0, 1e6, dynamic=True)
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
    detection_classes: list[str] = _param(
        [], "class_ids of ~/detections that create / re-acquire objects (exact match); empty = every class",
        dynamic=True)
    detection_min_score: float = _param(0.5, "a detection's best hypothesis needs at least this score", 0.0, 1.0,
                                        dynamic=True)
    detection_match_iou: float = _param(
        0.3, "box IoU from which a detection and an object match (no new object)", 0.01, 1.0, dynamic=True)
    presence_threshold: float = _param(0.5, "presence below which an object is OCCLUDED on a frame", 0.0, 1.0,
                                       dynamic=True)
    lost_after: int = _param(15, "consecutive OCCLUDED frames after which an object is LOST", 1, 100000, 1,
                             dynamic=True)
    remove_lost_after: float = _param(
        0.0, "seconds (of the images' header stamps) after which a LOST object is removed; 0 = never", 0.0, 1e9,
        dynamic=True)
    unconfirmed_after: int = _param(
        15, "detection arrays in a row without a detection for a detector's object after which it is LOST", 1,
        100000, 1, dynamic=True)
    reacquire_min_score: float = _param(
        0.4, "re-acquisition score from which a detection re-acquires a LOST object of its label (else a new one)",
        0.01, 1.0, dynamic=True)
    correction_iou: float = _param(
        0.5, "mask box IoU with its detection below which a detector's object disagrees with the detector", 0.01,
        1.0, dynamic=True)
    correction_after: int = _param(
        3, "disagreeing detection arrays in a row after which the object is re-prompted with its detection box",
        1, 100000, 1, dynamic=True)
    diagnostics_period: float = _param(1.0, "seconds between /diagnostics messages", 0.1, 60.0)
    use_depth: bool = _param(
        False, "subscribe to depth (registered to image: 16UC1 mm or 32FC1 m) and publish ~/points, ~/detections_3d, "
        "~/markers with camera_info's intrinsics")
    depth_max_dt: float = _param(0.02, "seconds a depth image's stamp may differ from the colour frame's to pair "
                                 "(the same stamp wins)", 0.0, 1.0)
    depth_min: float = _param(0.1, "metres; nearer depth readings are dropped (must be < depth_max)", 0.0, 100.0)
    depth_max: float = _param(10.0, "metres; farther depth readings are dropped", 0.01, 100.0)
    depth_mask_erosion: int = _param(2, "depth pixels eroded off each mask before reading depth (edges mix object "
                                     "and background)", 0, 50, 1)
    depth_outlier_k: float = _param(3.0, "per object, drop depths more than k * 1.4826 * MAD from the median "
                                    "(k in sigmas; 0 = off)", 0.0, 100.0)
    points_voxel: float = _param(0.0, "metres; voxel grid of the published ~/points (0 = every point)", 0.0, 1.0,
                                 dynamic=True)
    publish_points: bool = _param(True, "publish ~/points (PointCloud2 x y z label) when use_depth", dynamic=True)
    publish_detections_3d: bool = _param(True, "publish ~/detections_3d (vision_msgs/Detection3DArray) when "
                                         "use_depth", dynamic=True)
    publish_markers: bool = _param(True, "publish ~/markers (RViz MarkerArray) when use_depth", dynamic=True)


PARAMS: tuple[Param, ...] = tuple(Param(f.name, f.default if f.default is not MISSING else f.default_factory(),
                                         **f.metadata["param"]) for f in fields(Settings))
BY_NAME = {p.name: p for p in PARAMS}


def normalise(name: str, value: Any) -> Any:
    """The value the node uses for parameter `name`. A string array given as `[]` arrives unset (None: the YAML
    parser and `-p name:=[]`) or as another type's empty array (`ros2 param set name "[]"` sends a bool array):
    both mean []. Other values are returned as they are."""
    p = BY_NAME.get(name)
    if p is None or not isinstance(p.default, list):
        return value
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value


def _descriptor(p: Param) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    # A string array declared with default [] would be typed as a byte array: validate() checks its type instead.
    d = ParameterDescriptor(description=p.description + (f" ({p.range_text()})" if p.choices else ""),
                            dynamic_typing=isinstance(p.default, list))
    if p.low is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=int(p.step or 1))]
    elif p.low is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
    return d


def declare_parameters(node: Any) -> None:
    """Declare every parameter on an rclpy node with its default, range and meaning; a string array given as `[]`
    (unset by the YAML parser) is stored as an empty string array."""
    from rclpy.parameter import Parameter

    for p in PARAMS:
        value = node.declare_parameter(p.name, p.default, _descriptor(p)).value
        if isinstance(p.default, list):  # dynamically typed: checked here, as out-of-range values are by rclpy
            reason = validate(p.name, value)
            if reason:
                raise ValueError(reason)
            node.set_parameters([Parameter(p.name, Parameter.Type.STRING_ARRAY, normalise(p.name, value))])


def validate(name: str, value: Any) -> str | None:
    """None when `value` is allowed for parameter `name`, else the reason (ranges are also enforced by descriptors)."""
    p = BY_NAME.get(name)
    if p is None:
        return None
    if isinstance(p.default, list):
        value = normalise(name, value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{name} must be a list of strings (e.g. ['cup', 'book']; [] = all); got {value!r}"
        return None
    if p.choices and value not in p.choices:
        return f"{name} must be one of {', '.join(p.choices)}; got {value!r}"
    if p.name == "device" and not (value in ("auto", "cpu", "cuda") or str(value).startswith("cuda:")):
        return f"device must be auto, cpu, cuda or cuda:N; got {value!r}"
    if p.low is not None and not (p.low <= value <= p.high):
        return f"{name} must be in [{p.low:g}, {p.high:g}]; got {value!r}"
    return None


def validate_together(values: dict[str, Any]) -> str | None:
    """None when parameters that constrain each other agree (`values`: every parameter's value after a change)."""
    if not values["depth_min"] < values["depth_max"]:
        return f"depth_min ({values['depth_min']:g}) must be < depth_max ({values['depth_max']:g})"
    return None

