"""Memory attention (real-valued rotary), memory encoder and rotary tables equal Meta's SAM 2 modules; ONNX export."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import oracle
from sam2_ros.model.memory_attention import MemoryAttention, MemoryAttentionConfig
from sam2_ros.model.memory_encoder import MemoryEncoder, MemoryEncoderConfig
from sam2_ros.model.rope import apply_rotary, axial_rotary_tables

C, D = 256, 64  # hidden and memory widths of every SAM 2.1 size
TOL = 1e-4


@pytest.fixture(scope="module")
def reference_512() -> torch.nn.Module:
    return oracle.build_reference("sam2.1_hiera_t", image_size=512)


def _ours_attention(reference: torch.nn.Module, feat: int) -> MemoryAttention:
    ours = MemoryAttention(MemoryAttentionConfig(feat_size=(feat, feat))).eval()
    ours.load_state_dict(oracle.state_subset(reference, "memory_attention."), strict=True)
    return ours


def _attention_inputs(batch: int, frames: int, pointers: int, feat: int, seed: int, d_model: int = C,
                      kv_dim: int = D) -> tuple[torch.Tensor, ...]:
    """curr, curr_pos [B, HW, C]; memory, memory_pos [B, frames*HW, D]; obj_ptrs, obj_ptr_pos [B, P, D]."""
    gen = torch.Generator().manual_seed(seed)
    hw = feat * feat
    sizes = [(hw, d_model), (hw, d_model), (frames * hw, kv_dim), (frames * hw, kv_dim), (pointers, kv_dim),
             (pointers, kv_dim)]
    return tuple(torch.randn((batch, n, c), generator=gen) for n, c in sizes)


def _meta_attention(meta: torch.nn.Module, curr, curr_pos, memory, memory_pos, ptrs, ptr_pos) -> torch.Tensor:
    """Meta's call (seq-first, pointers appended to the memory, counted by num_obj_ptr_tokens) -> batch-first."""
    seq = lambda t: t.transpose(0, 1)  # noqa: E731  [B, L, C] -> [L, B, C]
    out = meta(curr=seq(curr), memory=seq(torch.cat([memory, ptrs], 1)), curr_pos=seq(curr_pos),
               memory_pos=seq(torch.cat([memory_pos, ptr_pos], 1)), num_obj_ptr_tokens=ptrs.shape[1])
    return seq(out)


# ---------------------------------------------------------------- rotary tables vs Meta's complex numbers
@pytest.mark.slow
@pytest.mark.parametrize("head_dim,feat_hw,frames", [(256, (64, 64), 1), (256, (32, 32), 3), (256, (16, 16), 7),
                                                     (32, (8, 12), 2), (64, (12, 8), 0)])
def test_rotary_matches_meta_complex(head_dim: int, feat_hw: tuple[int, int], frames: int) -> None:
    from sam2.modeling.position_encoding import apply_rotary_enc, compute_axial_cis

    torch.manual_seed(1)
    h, w = feat_hw
    q = torch.randn(2, 3, h * w, head_dim)  # [B, heads, HW, c]
    k = torch.randn(2, 3, frames * h * w, head_dim)  # memory keys: `frames` grids
    meta_q, meta_k = apply_rotary_enc(q, k, compute_axial_cis(head_dim, end_x=w, end_y=h), repeat_freqs_k=True)
    cos, sin = axial_rotary_tables(head_dim, (h, w))
    dq = (apply_rotary(q, cos, sin) - meta_q).abs().max().item()
    dk = (apply_rotary(k, cos, sin) - meta_k).abs().max().item() if frames else 0.0
    print(f"rotary d={head_dim} h,w={h},{w} frames={frames}: max|dq|={dq:.2e} max|dk|={dk:.2e}")
    assert dq <= 1e-6 and dk <= 1e-6
    assert apply_rotary(k, cos, sin).shape == k.shape  # also with 0 memory frames
    assert not torch.equal(apply_rotary(q, cos, sin), q)  # it does rotate


# ---------------------------------------------------------------- memory attention vs Meta
@pytest.mark.slow
@pytest.mark.parametrize("batch,frames,pointers,image_size", [
    (1, 1, 0, 512), (3, 3, 4, 512), (1, 7, 16, 512), (3, 7, 16, 256), (3, 1, 16, 256), (1, 3, 0, 256)])
def test_memory_attention_matches_meta(reference_512, batch: int, frames: int, pointers: int,
                                       image_size: int) -> None:
    # Meta's module recomputes its rotary table from the token count, so the 512 model serves 256 inputs too.
    feat = image_size // 16
    ours = _ours_attention(reference_512, feat)
    inputs = _attention_inputs(batch, frames, pointers, feat, seed=frames * 10 + pointers)
    with torch.no_grad():
        got = ours(*inputs, feat_size=(feat, feat))
        want = _meta_attention(reference_512.memory_attention, *inputs)
    diff = (got - want).abs().max().item()
    print(f"memory attention S={image_size} B={batch} frames={frames} P={pointers}: max|diff|={diff:.2e} "
          f"(output scale {want.abs().max().item():.2f})")
    assert got.shape == (batch, feat * feat, C)
    assert diff <= TOL


@pytest.mark.slow
def test_memory_attention_matches_meta_at_1024() -> None:
    reference = oracle.build_reference("sam2.1_hiera_t", image_size=1024)
    ours = MemoryAttention(MemoryAttentionConfig()).eval()  # default feat_size (64, 64)
    ours.load_state_dict(oracle.state_subset(reference, "memory_attention."), strict=True)
    inputs = _attention_inputs(1, 1, 4, 64, seed=3)
    with torch.no_grad():
        got = ours(*inputs)
        want = _meta_attention(reference.memory_attention, *inputs)
    diff = (got - want).abs().max().item()
    print(f"memory attention S=1024 B=1 frames=1 P=4: max|diff|={diff:.2e}")
    assert diff <= TOL


@pytest.mark.slow
def test_micro_config_matches_meta() -> None:
    """A 1-layer, d_model 64, 2-head version (for fast tests elsewhere) equals Meta's modules built the same way."""
    from sam2.modeling.memory_attention import MemoryAttention as MetaMA, MemoryAttentionLayer as MetaLayer
    from sam2.modeling.sam.transformer import RoPEAttention as MetaRoPE

    cfg = MemoryAttentionConfig(d_model=64, kv_dim=32, num_layers=1, num_heads=2, dim_feedforward=128,
                                feat_size=(8, 8))
    torch.manual_seed(0)
    rope = dict(rope_theta=10000.0, feat_sizes=(8, 8), embedding_dim=64, num_heads=2, downsample_rate=1, dropout=0.1)
    layer = MetaLayer(activation="relu", cross_attention=MetaRoPE(rope_k_repeat=True, kv_in_dim=32, **rope),
                      d_model=64, dim_feedforward=128, dropout=0.1, pos_enc_at_attn=False,
                      pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                      self_attention=MetaRoPE(**rope))
    meta = oracle.perturb_(MetaMA(d_model=64, pos_enc_at_input=True, layer=layer, num_layers=1)).eval()
    ours = MemoryAttention(cfg).eval()
    ours.load_state_dict(meta.state_dict(), strict=True)
    worst = 0.0
    for frames, pointers in [(1, 0), (4, 5)]:
        inputs = _attention_inputs(2, frames, pointers, 8, seed=pointers, d_model=64, kv_dim=32)
        with torch.no_grad():
            worst = max(worst, (ours(*inputs) - _meta_attention(meta, *inputs)).abs().max().item())
    print(f"micro memory attention (1 layer, d=64, 2 heads): max|diff|={worst:.2e}")
    assert worst <= TOL


def test_memory_attention_rejects_bad_shapes() -> None:
    ours = MemoryAttention(MemoryAttentionConfig(d_model=64, kv_dim=32, num_layers=1, dim_feedforward=64,
                                                 feat_size=(4, 4))).eval()
    curr, pos, mem, mem_pos, ptr, ptr_pos = _attention_inputs(1, 2, 1, 4, seed=0, d_model=64, kv_dim=32)
    with pytest.raises(ValueError, match="tokens"):
        ours(curr[:, :15], pos[:, :15], mem, mem_pos, ptr, ptr_pos)
    with pytest.raises(ValueError, match="whole number"):
        ours(curr, pos, mem[:, :20], mem_pos[:, :20], ptr, ptr_pos)
    with pytest.raises(ValueError, match="activation"):
        MemoryAttention(MemoryAttentionConfig(activation="tanh"))


# ---------------------------------------------------------------- ONNX export with dynamic Ms and P
@pytest.mark.slow
def test_memory_attention_onnx_dynamic_memory_and_pointers(reference_512) -> None:
    import onnxruntime as ort

    feat = 16  # 256-pixel input keeps the check fast; the graph is the same for every feature size
    ours = _ours_attention(reference_512, feat)
    names = ["curr", "curr_pos", "memory", "memory_pos", "obj_ptrs", "obj_ptr_pos"]
    dynamic = {n: {0: "batch"} for n in names[:2]}
    dynamic.update({n: {0: "batch", 1: "memory_tokens"} for n in names[2:4]})
    dynamic.update({n: {0: "batch", 1: "pointer_tokens"} for n in names[4:]})
    dynamic["out"] = {0: "batch"}
    buffer = io.BytesIO()
    torch.onnx.export(ours, _attention_inputs(1, 2, 4, feat, seed=0), buffer, input_names=names,
                      output_names=["out"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    for batch, frames, pointers in [(2, 1, 0), (1, 3, 16)]:  # neither is the export's (1, 2, 4)
        inputs = _attention_inputs(batch, frames, pointers, feat, seed=7)
        with torch.no_grad():
            want = ours(*inputs).numpy()
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
        diff = float(np.abs(got - want).max())
        print(f"onnxruntime vs torch B={batch} frames={frames} P={pointers}: max|diff|={diff:.2e}")
        assert got.shape == want.shape and diff <= TOL


# ---------------------------------------------------------------- memory encoder vs Meta
@pytest.mark.slow
@pytest.mark.parametrize("batch,image_size", [(1, 512), (3, 512), (2, 256)])
def test_memory_encoder_matches_meta(reference_512, batch: int, image_size: int) -> None:
    ours = MemoryEncoder(MemoryEncoderConfig()).eval()
    ours.load_state_dict(oracle.state_subset(reference_512, "memory_encoder."), strict=True)
    gen = torch.Generator().manual_seed(batch)
    feat = image_size // 16
    pix_feat = torch.randn((batch, C, feat, feat), generator=gen)
    # What the tracker feeds: sigmoid(logits) scaled by 20 and shifted by -10.
    masks = torch.sigmoid(torch.randn((batch, 1, image_size, image_size), generator=gen) * 4) * 20 - 10
    with torch.no_grad():
        features, pos = ours(pix_feat, masks)
        meta = reference_512.memory_encoder(pix_feat, masks, skip_mask_sigmoid=True)
    d_feat = (features - meta["vision_features"]).abs().max().item()
    d_pos = (pos - meta["vision_pos_enc"][0]).abs().max().item()
    print(f"memory encoder S={image_size} B={batch}: max|diff| features={d_feat:.2e} pos={d_pos:.2e}")
    assert features.shape == pos.shape == (batch, D, feat, feat)
    assert d_feat <= TOL and d_pos <= TOL


def test_memory_encoder_rejects_wrong_mask_size() -> None:
    ours = MemoryEncoder(MemoryEncoderConfig()).eval()
    with pytest.raises(ValueError, match="mask size"):
        ours(torch.zeros(1, C, 16, 16), torch.zeros(1, 1, 128, 128))
