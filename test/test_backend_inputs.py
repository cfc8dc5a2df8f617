"""Backends bind the inputs a graph really has: the exporter drops inputs a part does not use (SAM 2.0's memory
encoder never reads object_score_logits), the export metadata records the real ones, and the ONNX Runtime tracker
of a `sam2_hiera_*` config runs end to end and equals the torch tracker."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fixtures.checkpoint import write_checkpoint
from sam2_ros.backends.exported import bind_inputs
from sam2_ros.backends.factory import create_backend
from sam2_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from sam2_ros.backends.torch_backend import TorchBackend
from sam2_ros.export.onnx_export import read_metadata
from sam2_ros.export.parts import PART_SPECS
from sam2_ros.model import build_sam2
from sam2_ros.sim import SyntheticScene
from sam2_ros.tracking import StreamingTracker

pytestmark = pytest.mark.slow  # a tiny-model export and two trackers: ~30 s
CONFIG, SIZE = "sam2_hiera_t", 128  # SAM 2.0: no no_obj_embed_spatial, so the memory encoder ignores the score


@pytest.fixture(scope="module")
def sam2_0(tmp_path_factory):
    """(checkpoint, ONNX Runtime backend over a fresh export) of a SAM 2.0 tiny model with present objects."""
    tmp = tmp_path_factory.mktemp("sam2_0")
    ckpt = write_checkpoint(tmp / "sam2_hiera_t.pt", CONFIG)
    backend = create_backend("onnxruntime", CONFIG, checkpoint=str(ckpt), image_size=SIZE, device="cpu",
                             cache_dir=tmp / "cache", threads=2)
    assert isinstance(backend, OnnxRuntimeBackend)
    return ckpt, backend


def test_export_metadata_records_each_graphs_real_inputs(sam2_0):
    _, backend = sam2_0
    meta = read_metadata(backend.export_dir)
    for name in ("encode_memory", "encode_memory_binarize"):
        assert meta["parts"][name]["inputs"] == ["pix_feat", "high_res_masks"], name  # score dropped by export
    for name, spec in PART_SPECS.items():
        session = ort.InferenceSession(str(backend.export_dir / spec.filename), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == meta["parts"][name]["inputs"], name
        if not name.startswith("encode_memory"):
            assert meta["parts"][name]["inputs"] == list(spec.inputs), name


def test_tracker_on_onnxruntime_equals_torch_for_a_sam2_0_config(sam2_0):
    ckpt, ort_backend = sam2_0
    scene = SyntheticScene(96, 128, num_objects=2, seed=1)
    frames = [scene.frame(i) for i in range(6)]
    runs = []
    for backend in (TorchBackend(build_sam2(CONFIG, checkpoint=ckpt, image_size=SIZE)), ort_backend):
        tracker = StreamingTracker(backend)
        out = [tracker.track(frames[0].rgb, stamp=0)]
        out.append(tracker.add_prompt(1, points=np.array([frames[0].inner_point(0)]), labels=np.array([1])))
        out.append(tracker.add_prompt(2, box=np.array(frames[0].box(1), float)))
        out += [tracker.track(f.rgb, stamp=f.index) for f in frames[1:4]]
        out.append(tracker.add_prompt(1, points=np.array([frames[2].inner_point(0)]), labels=np.array([1]), stamp=2))
        out += [tracker.track(f.rgb, stamp=f.index) for f in frames[4:]]
        runs.append(out)
    worst = 0.0
    for ref, got in zip(*runs):
        assert ref.object_ids == got.object_ids and ref.stamp == got.stamp
        if len(ref):
            worst = max(worst, float(np.abs(ref.mask_logits - got.mask_logits).max()))
            np.testing.assert_allclose(got.iou, ref.iou, atol=1e-4)
            np.testing.assert_allclose(got.presence, ref.presence, atol=1e-4)
    print(f"{CONFIG}@{SIZE}: ONNX Runtime vs torch tracker, mask logits max abs {worst:.1e}; "
          f"objects {runs[1][-1].object_ids}, logit range {runs[1][-1].mask_logits.min():.2f}..."
          f"{runs[1][-1].mask_logits.max():.2f}")
    assert runs[1][-1].object_ids == [1, 2] and np.ptp(runs[1][-1].mask_logits) > 0.1  # not a constant output
    assert worst <= 1e-3


def test_bind_inputs_feeds_only_the_graphs_inputs_and_refuses_unknown_ones():
    spec = PART_SPECS["encode_memory"]
    tensors = [torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)]
    bound = bind_inputs("encode_memory", tensors, ["pix_feat", "high_res_masks"])
    assert list(bound) == ["pix_feat", "high_res_masks"] and bound["high_res_masks"] is tensors[1]
    assert list(bind_inputs("encode_memory", tensors, list(spec.inputs))) == list(spec.inputs)
    with pytest.raises(ValueError, match="does not provide"):
        bind_inputs("encode_memory", tensors, ["pix_feat", "mask_logits"])
