"""Strongly typed mixed precision for the exported graphs (what TensorRT 11, or 10.12+ with STRONGLY_TYPED, builds).

Our own pass over the fp32 ONNX graph, not ModelOpt AutoCast: the compute-bound ops (MatMul, Gemm, Conv,
ConvTranspose) run in half precision with their weights stored in half, except those computing the angles of a
sine/cosine (the prompt encoder's Fourier features); every other op stays float32 — LayerNorm,
softmax, sigmoid, the sine/rotary position tables, reductions, resizes and element-wise glue. Each half op gets
Cast(to half) on its activation inputs (one per tensor, shared by its readers) and a Cast back to float32 on its
outputs, so graph inputs and outputs keep their types and the numerically sensitive arithmetic never sees half.
It is deterministic (no calibration data), needs only `onnx`, and its recipe is versioned (`RECIPE`) in the
export metadata and hence in every engine cache key.
"""
from __future__ import annotations

import numpy as np

HALF_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")  # run in half precision
TRIG_OPS = ("Sin", "Cos")  # a half op whose result reaches one of these stays fp32 (angles of position encodings)
_PASS_THROUGH = ("Mul", "Add", "Sub", "Div", "Neg", "Unsqueeze", "Reshape", "Transpose", "Concat", "Squeeze",
                 "Expand", "Cast")
RECIPE = 2  # bump when the pass changes which ops are half (export metadata and engine keys include it)
PRECISIONS = ("fp32", "fp16", "bf16")


def _half_type(precision: str) -> int:
    from onnx import TensorProto

    return {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[precision]


def _half_initializer(tensor, precision: str, name: str):  # onnx.TensorProto -> a half copy named `name`
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor).astype(np.float32)
    if precision == "fp16":
        return numpy_helper.from_array(values.astype(np.float16), name)
    from onnx import TensorProto, helper

    bits = (values.view(np.uint32) + 0x7FFF + ((values.view(np.uint32) >> 16) & 1)) >> 16  # round to nearest even
    return helper.make_tensor(name, TensorProto.BFLOAT16, values.shape, bits.astype(np.uint16).tobytes(), raw=True)


def _angle_producers(graph) -> set[str]:
    """First output names of the HALF_OPS nodes whose output reaches a Sin/Cos through element-wise / layout ops: the Fourier
    features of the prompt encoder (coords @ gaussian matrix) are angles, and half precision would shift them."""
    producer = {out: node for node in graph.node for out in node.output}
    found: set[str] = set()
    stack = [name for node in graph.node if node.op_type in TRIG_OPS for name in node.input]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if name in seen or node is None:
            continue
        seen.add(name)
        if node.op_type in HALF_OPS:
            found.add(node.output[0])
        if node.op_type in _PASS_THROUGH or node.op_type in HALF_OPS:
            stack.extend(node.input)
    return found


def to_mixed_precision(model, precision: str):
    """A copy of an fp32 onnx.ModelProto with HALF_OPS in `precision` (fp16 | bf16) and everything else float32."""
    import onnx
    from onnx import TensorProto, helper

    if precision not in ("fp16", "bf16"):
        raise ValueError(f"mixed precision is fp16 or bf16, got {precision!r}")
    half = _half_type(precision)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    float_inits = {n for n, t in inits.items() if t.data_type == TensorProto.FLOAT}
    half_inits: dict[str, str] = {}  # fp32 initializer -> its half copy
    casts: dict[str, str] = {}  # fp32 activation -> its Cast(to half) output
    nodes = []
    keep_float = _angle_producers(graph)
    for node in graph.node:
        if node.op_type not in HALF_OPS or node.output[0] in keep_float:
            nodes.append(node)
            continue
        for i, name in enumerate(node.input):
            if not name:
                continue
            if name in float_inits:
                if name not in half_inits:
                    half_inits[name] = f"{name}_{precision}"
                    graph.initializer.append(_half_initializer(inits[name], precision, half_inits[name]))
                node.input[i] = half_inits[name]
            else:  # activations are float32 everywhere outside the half ops
                if name not in casts:
                    casts[name] = f"{name}_to_{precision}"
                    nodes.append(helper.make_node("Cast", [name], [casts[name]], to=half,
                                                  name=f"{name}_cast_{precision}"))
                node.input[i] = casts[name]
        outputs = list(node.output)
        for i, name in enumerate(outputs):
            node.output[i] = f"{name}_{precision}"
        nodes.append(node)
        for name in outputs:
            nodes.append(helper.make_node("Cast", [f"{name}_{precision}"], [name], to=TensorProto.FLOAT,
                                          name=f"{name}_cast_fp32"))
    # fp32 initializers now read only through their half copies are dropped
    still_read = {name for node in nodes for name in node.input}
    keep = [t for t in graph.initializer if t.name in still_read or t.name not in float_inits]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # shapes/types of renamed tensors are inferred again by the runtimes
    return model


def precision_summary(model) -> dict[str, int]:
    """Count of nodes per (op, compute type) bucket: how many HALF_OPS are half, and that no other op is."""
    from onnx import TensorProto

    half_types = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
    produced_half = set()
    for node in model.graph.node:
        if node.op_type == "Cast" and node.attribute[0].i in half_types:
            produced_half.update(node.output)
    half_inits = {t.name for t in model.graph.initializer if t.data_type in half_types}
    summary = {"half_ops": 0, "float_ops_of_half_kind": 0, "other_ops_reading_half": 0}
    for node in model.graph.node:
        reads_half = any(n in produced_half or n in half_inits for n in node.input)
        if node.op_type in HALF_OPS:
            summary["half_ops" if reads_half else "float_ops_of_half_kind"] += 1
        elif reads_half and node.op_type != "Cast":
            summary["other_ops_reading_half"] += 1
    return summary


__all__ = ["HALF_OPS", "PRECISIONS", "RECIPE", "precision_summary", "to_mixed_precision"]
