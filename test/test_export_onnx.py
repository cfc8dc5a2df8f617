"""ONNX export of the four parts: every graph (and variant) run in ONNX Runtime matches the torch model for several
object, point, memory-frame and pointer counts; metadata and dynamic axes are as documented; the CLI works.

Tolerances (issue 6): mask logits <= 1e-3 max abs; features <= 1e-4 relative (max abs diff / max abs value).
Tiny config at 256 px (one export shared by the backend tests); one encoder + memory-attention export at 1024.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from backend_util import CONFIG, max_abs, max_rel, scratch_dir, tiny_checkpoint, tiny_export
from sam2_ros.export.__main__ import main as export_main
from sam2_ros.export.onnx_export import read_metadata, verify_export
from sam2_ros.export.parts import PART_SPECS, PartModule, example_inputs
from sam2_ros.model import build_sam2, weights_hash

MASK_TOL, FEAT_TOL = 1e-3, 1e-4
MASK_OUTPUTS = {"low_res_masks", "high_res_masks", "low_res_multimasks"}
# (objects, points, memory frames, pointer tokens): single object, several objects, many points/memories, no pointers.
COUNTS = [(1, 1, 1, 4), (3, 2, 3, 16), (2, 6, 7, 64), (4, 1, 2, 0)]


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(0)
    _, export_dir = tiny_export(256)
    model = build_sam2(CONFIG, checkpoint=tiny_checkpoint(256), image_size=256)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sessions = {name: ort.InferenceSession(str(export_dir / spec.filename), opts, providers=["CPUExecutionProvider"])
                for name, spec in PART_SPECS.items()}
    return model, export_dir, sessions


def _compare(model, session, spec, inputs, label):
    with torch.no_grad():
        expected = PartModule(model, spec)(*inputs)
    got = session.run(list(spec.outputs), {n: t.numpy() for n, t in zip(spec.inputs, inputs)})
    worst = {}
    for name, ours, ref in zip(spec.outputs, got, expected):
        ours = torch.from_numpy(ours)
        if name in MASK_OUTPUTS:
            worst[name] = err = max_abs(ours, ref)
            assert err <= MASK_TOL, f"{label} {name}: max abs {err:.2e}"
        elif ref.dtype.is_floating_point:
            worst[name] = err = max_rel(ours, ref)
            assert err <= FEAT_TOL, f"{label} {name}: max rel {err:.2e}"
        else:
            assert torch.equal(ours, ref), f"{label} {name}"
    print(label, " ".join(f"{k} {v:.1e}" for k, v in worst.items()))


@pytest.mark.parametrize("graph", list(PART_SPECS))
def test_part_matches_torch(exported, graph):
    model, _, sessions = exported
    spec = PART_SPECS[graph]
    counts = COUNTS[:1] if spec.part == "encode_image" else COUNTS
    for seed, (b, n, frames, ptrs) in enumerate(counts):
        inputs = example_inputs(model, spec, objects=b, points=n, memory_frames=frames, pointers=ptrs, seed=seed + 5)
        _compare(model, sessions[graph], spec, inputs, f"{graph} B={b} N={n} frames={frames} P={ptrs}")


def test_decoder_selection_really_differs(exported):
    """The variants are not the same graph: multimask outputs 3 candidates, the mask input changes the result."""
    model, _, sessions = exported
    spec = PART_SPECS["decode_mask"]
    inputs = example_inputs(model, spec, objects=2, points=2)
    feed = {n: t.numpy() for n, t in zip(spec.inputs, inputs)}
    with_mask = sessions["decode_mask"].run(["low_res_masks"], feed)[0]
    feed.pop("mask_input")
    without = sessions["decode"].run(["low_res_masks"], feed)[0]
    multi = sessions["decode_multimask"].run(["low_res_multimasks"], feed)[0]
    print("mask input changes logits by", float(np.abs(with_mask - without).max()))
    assert np.abs(with_mask - without).max() > 1e-2
    assert multi.shape[1] == 3 and with_mask.shape[1] == 1


def test_metadata_and_dynamic_axes(exported):
    model, export_dir, _ = exported
    meta = read_metadata(export_dir)
    assert meta["config"] == CONFIG and meta["image_size"] == 256 and meta["opset"] >= 17
    assert meta["weights_hash"] == weights_hash(tiny_checkpoint(256))
    assert meta["torch"] == torch.__version__ and meta["onnx"] == onnx.__version__
    assert set(meta["parts"]) == set(PART_SPECS)
    assert verify_export(export_dir) is None
    for name, spec in PART_SPECS.items():
        info = meta["parts"][name]
        assert info["inputs"] == list(spec.inputs) and info["outputs"] == list(spec.outputs)
        graph = onnx.load(str(export_dir / info["file"]), load_external_data=False).graph
        assert [i.name for i in graph.input] == list(spec.inputs)
        assert [o.name for o in graph.output] == list(spec.outputs)
        assert graph.node and all(i.domain in ("", "ai.onnx") for i in onnx.load(
            str(export_dir / info["file"]), load_external_data=False).opset_import)
        for tensor in graph.input:
            params = {k: d.dim_param for k, d in enumerate(tensor.type.tensor_type.shape.dim) if d.dim_param}
            declared = {int(k): v for k, v in info["dynamic_axes"].get(tensor.name, {}).items()}
            assert params == declared, (name, tensor.name, params, declared)
    # Tampering with a file is noticed.
    victim = export_dir / meta["parts"]["encode_memory"]["file"]
    backup = victim.read_bytes()
    try:
        victim.write_bytes(backup[:-10])
        assert "checksum" in verify_export(export_dir)
    finally:
        victim.write_bytes(backup)
    assert verify_export(export_dir) is None


def test_cli_progress_and_errors(capsys):
    out = scratch_dir("cli")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = export_main(["--config", CONFIG, "--checkpoint", str(tiny_checkpoint(256)), "--out", str(out),
                            "--image-size", "256", "--parts", "decode", "encode_memory"])
    lines = text.getvalue().splitlines()
    print("\n".join(lines))
    assert code == 0
    assert any(line.startswith("[1/2] decode:") for line in lines)
    assert any(line.startswith("[2/2] encode_memory:") for line in lines)
    meta = json.loads((out / "metadata.json").read_text())
    assert set(meta["parts"]) == {"decode", "encode_memory"} and meta["image_size"] == 256
    bad = out / "not_a_checkpoint.pt"
    bad.write_bytes(b"garbage")
    assert export_main(["--config", CONFIG, "--checkpoint", str(bad), "--out", str(out / "x")]) == 2
    assert "error:" in capsys.readouterr().err
    assert export_main(["--config", CONFIG, "--out", str(out / "y"), "--image-size", "250"]) == 2


@pytest.mark.slow
def test_export_at_1024_matches_torch():
    """The full-size graphs that depend on the image size (encoder, memory attention with 64x64 rotary tables)."""
    torch.manual_seed(0)
    model = build_sam2(CONFIG, image_size=1024)
    out = scratch_dir("export1024")
    from sam2_ros.export.onnx_export import export_parts

    export_parts(model, out, parts=["encode_image", "attend_memory"], progress=print)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    for name, counts in (("encode_image", dict()), ("attend_memory", dict(objects=1, memory_frames=2, pointers=8))):
        spec = PART_SPECS[name]
        session = ort.InferenceSession(str(out / spec.filename), opts, providers=["CPUExecutionProvider"])
        _compare(model, session, spec, example_inputs(model, spec, seed=3, **counts), f"{name}@1024")
