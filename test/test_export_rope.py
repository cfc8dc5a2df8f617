"""The exported memory attention takes its rotary tables as float32 constants for the exported feature size: no
OneHot/Tile (TensorRT cannot import Tile with run-time repeats), no run-time trig (it would run in half precision
in an fp16 engine), and it still equals torch for any number of memory frames and pointer tokens (0 included)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from sam2_ros.export.onnx_export import export_parts
from sam2_ros.model import build_sam2
from sam2_ros.model.rope import pair_tables

CONFIG, SIZE = "sam2.1_hiera_t", 256
RUNTIME_TABLE_OPS = {"OneHot", "Tile", "Range", "Sin", "Cos"}


@pytest.fixture(scope="module")
def attend_export(tmp_path_factory):
    torch.manual_seed(0)
    model = build_sam2(CONFIG, image_size=SIZE)
    out = tmp_path_factory.mktemp("rope")
    export_parts(model, out, parts=["attend_memory"], progress=None)
    return model, out / "attend_memory.onnx"


def _constants(graph: onnx.GraphProto) -> list[np.ndarray]:
    """Every constant tensor of a graph: initializers and Constant nodes."""
    found = [numpy_helper.to_array(t) for t in graph.initializer]
    for node in graph.node:
        if node.op_type == "Constant":
            found += [numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"]
    return found


def test_rotary_tables_are_fp32_constants_of_the_exported_size(attend_export):
    model, path = attend_export
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & RUNTIME_TABLE_OPS, f"run-time table ops in the graph: {sorted(ops & RUNTIME_TABLE_OPS)}"
    cos2, sin2 = pair_tables(model.memory_attention.rotary.head_dim, (SIZE // 16, SIZE // 16))
    constants = _constants(graph)
    for table in (cos2.numpy(), sin2.numpy()):
        assert any(c.dtype == np.float32 and c.shape == table.shape and np.array_equal(c, table)
                   for c in constants), f"no float32 constant equal to the {table.shape} rotary table"


@pytest.mark.parametrize("objects,frames,pointers", [(1, 1, 0), (2, 3, 8), (3, 7, 64)])
def test_exported_attention_matches_torch(attend_export, objects, frames, pointers):
    model, path = attend_export
    cfg = model.config
    h, c, d = cfg.feat_size, cfg.hidden_dim, cfg.mem_dim
    gen = torch.Generator().manual_seed(objects)
    shapes = [(objects, c, h, h)] * 2 + [(objects, frames * h * h, d)] * 2 + [(objects, pointers, d)] * 2
    inputs = [torch.randn(*shape, generator=gen) for shape in shapes]  # curr, curr_pos, memory(_pos), obj_ptrs(_pos)
    with torch.inference_mode():
        ref = model.attend_memory(*inputs)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    err = float(np.abs(got - ref.numpy()).max() / np.abs(ref.numpy()).max())
    print(f"B={objects} frames={frames} pointers={pointers}: max rel err {err:.1e}")
    assert got.shape == tuple(ref.shape) and err <= 1e-4
