"""EdgeTAM (build_sam2("edgetam")) against Meta's EdgeTAM code (edgetam-dimos, run in a subprocess: edgetam_oracle).

Random weights (seeded, perturbed, BatchNorm statistics too, mask heads sharpened) are built and saved by the
reference as a Meta checkpoint; our model loads that file strictly, like a user loads edgetam.pt. Image size 256
(S/16 grid 16x16: each 2-D perceiver latent reads one cell) and 512 (slow: 2x2-cell windows, a 32x32 query grid).
"""
from __future__ import annotations

import pytest
import torch

from edgetam_oracle import oracle_missing, run_oracle
from oracle import max_abs
from sam2_ros.model import build_sam2
from sam2_ros.model.checkpoint import read_state_dict

SIZE, TOL = 256, 1e-4


def part_inputs(size: int, objects: int = 2, frames: int = 2, pointers: int = 2, seed: int = 0) -> dict:
    """Inputs of every part: memory of `frames` perceiver frames (512 tokens each), pointers split in C/D = 4."""
    gen = torch.Generator().manual_seed(seed)
    h, c, d, b = size // 16, 256, 64, objects

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    return {"image": randn(1, 3, size, size), "frames": frames,
            "point_coords": torch.rand(b, 3, 2, generator=gen) * size,
            "point_labels": torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.int32)[:b],
            "curr": randn(b, c, h, h), "curr_pos": randn(b, c, h, h),
            "memory": randn(b, frames * 512, d), "memory_pos": randn(b, frames * 512, d),
            "obj_ptrs": randn(b, pointers * 4, d), "obj_ptr_pos": randn(b, pointers * 4, d),
            "pix_feat": randn(b, c, h, h), "high_res_masks": randn(b, 1, size, size, scale=8.0),
            "object_score_logits": torch.tensor([[-2.0], [3.0]])[:b]}


@pytest.fixture(scope="module", params=[SIZE, pytest.param(512, marks=pytest.mark.slow)])
def reference(request, tmp_path_factory):
    if oracle_missing():
        pytest.skip(oracle_missing())
    size = request.param
    folder = tmp_path_factory.mktemp(f"edgetam{size}")
    checkpoint = folder / "edgetam_random.pt"
    inputs = part_inputs(size)
    outputs = run_oracle("parts", {"image_size": size, "seed": 0, "checkpoint": str(checkpoint),
                                   "inputs": inputs, "session": "edgetam"}, folder)
    model = build_sam2("edgetam", checkpoint=checkpoint, image_size=size)
    return {"checkpoint": checkpoint, "inputs": inputs, "outputs": outputs, "model": model, "folder": folder}


def _check(name: str, ref: torch.Tensor, got: torch.Tensor, tol: float = TOL) -> None:
    diff = max_abs(ref, got)
    scale = ref.abs().max().item()
    print(f"{name}: max |diff| {diff:.2e} (values up to {scale:.2f})")
    assert diff <= tol, (name, diff)


def test_image_encoder(reference):
    model, x, out = reference["model"], reference["inputs"], reference["outputs"]
    with torch.no_grad():
        trunk = model.image_encoder.trunk(x["image"])
        got = model.encode_image(x["image"])
    for i, (r, g) in enumerate(zip(out["trunk"], trunk)):
        _check(f"repvit level {i} {tuple(g.shape)}", r, g)
    for name, r, g in zip(("feat_s0", "feat_s1", "image_embed", "image_pos"), out["encode_image"], got):
        _check(name, r, g)


@pytest.mark.parametrize("multimask", [False, True])
def test_decoder(reference, multimask):
    model, x, out = reference["model"], reference["inputs"], reference["outputs"]
    b = x["point_coords"].shape[0]
    s0, s1, embed, _ = out["encode_image"]
    with torch.no_grad():
        got = model.decode(embed.expand(b, -1, -1, -1), s0.expand(b, -1, -1, -1), s1.expand(b, -1, -1, -1),
                           x["point_coords"], x["point_labels"], None, multimask)
    mine = [got.low_res_multimasks, got.ious, got.low_res_masks, got.high_res_masks, got.obj_ptr,
            got.object_score_logits]
    names = ("low_res_multimasks", "ious", "low_res_masks", "high_res_masks", "obj_ptr", "object_score_logits")
    for name, r, g in zip(names, out[f"decode_{multimask}"], mine):
        _check(name, r, g)


def test_memory_attention(reference):
    model, x, out = reference["model"], reference["inputs"], reference["outputs"]
    with torch.no_grad():
        got = model.attend_memory(x["curr"], x["curr_pos"], x["memory"], x["memory_pos"], x["obj_ptrs"],
                                  x["obj_ptr_pos"])
    _check("attend_memory (2 perceiver frames + 8 pointer tokens)", out["attend_memory"], got)


@pytest.mark.parametrize("binarize", [False, True])
def test_memory_encoder_with_perceiver(reference, binarize):
    model, x, out = reference["model"], reference["inputs"], reference["outputs"]
    with torch.no_grad():
        feats, pos = model.encode_memory(x["pix_feat"], x["high_res_masks"], x["object_score_logits"], binarize)
    ref_feats, ref_pos = out[f"encode_memory_{binarize}"]
    assert feats.shape == (2, 64, 512), feats.shape  # [B, D, L]: the perceiver's 512 tokens, not 16*16 cells
    _check("memory tokens", ref_feats, feats.transpose(1, 2))
    _check("memory token positions", ref_pos, pos.transpose(1, 2))


def test_reference_checkpoint_loads_strictly_and_tampered_is_refused(reference, tmp_path):
    state = read_state_dict(reference["checkpoint"])
    assert any(k.startswith("image_encoder.trunk.body.stages_2.") for k in state)
    assert any(k.startswith("spatial_perceiver.layers.1.") for k in state)
    assert list(state) == list(reference["model"].state_dict())  # same keys, same order
    state.pop("spatial_perceiver.latents_2d")
    state["image_encoder.trunk.body.head.l.weight"] = torch.zeros(3)
    tampered = tmp_path / "tampered.pt"
    torch.save({"model": state}, tampered)
    with pytest.raises(ValueError) as err:
        build_sam2("edgetam", checkpoint=tampered)
    message = str(err.value)
    assert "missing key(s): spatial_perceiver.latents_2d" in message, message
    assert "unexpected key(s): image_encoder.trunk.body.head.l.weight" in message, message


def test_sam2_checkpoint_is_refused_by_edgetam(tmp_path):
    """A SAM 2.1 checkpoint is not an EdgeTAM one: refused, naming the RepViT and perceiver keys it lacks."""
    path = tmp_path / "tiny.pt"
    torch.save({"model": build_sam2("sam2.1_hiera_t", image_size=SIZE).state_dict()}, path)
    with pytest.raises(ValueError, match=r"missing key\(s\): image_encoder\.trunk\.body"):
        build_sam2("edgetam", checkpoint=path, image_size=SIZE)


def test_tracker_features_work_unchanged(tmp_path):
    """Candidates, segment-everything (tracking what it finds) and removal run on EdgeTAM as on SAM 2 (torch)."""
    import numpy as np

    from sam2_ros.tracking import StreamingTracker
    from sam2_ros.tracking.everything import segment_everything

    torch.manual_seed(0)
    model = build_sam2("edgetam", image_size=SIZE)
    with torch.no_grad():  # present objects, logits with edges: masks worth checking
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias += 4.0
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[2].weight *= 20.0
    tracker = StreamingTracker(model)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(4)]
    tracker.track(frames[0], stamp=0)
    r = tracker.add_prompt(1, points=np.array([[100, 80]]), labels=np.array([1]), multimask=True)
    assert r.candidates is not None and len(r.candidates.masks) == 3
    chosen = tracker.select_candidate(1, 2)
    same = StreamingTracker(model)  # selecting = prompting with that candidate's mask
    same.track(frames[0], stamp=0)
    assert np.array_equal(chosen.mask_logits, same.add_prompt(1, mask=r.candidates.masks[2]).mask_logits)
    found = segment_everything(tracker, points_per_side=4, min_iou=0.0, min_stability=0.0, max_objects=2,
                               track=True)
    assert len(found) >= 1 and tracker.object_ids == [1, *found.object_ids]
    for k, frame in enumerate(frames[1:], 1):
        out = tracker.track(frame, stamp=k)
        assert out.object_ids == tracker.object_ids and out.mask_logits.shape[1:] == (SIZE, SIZE)
    tracker.remove_object(1)
    assert tracker.track(frames[0], stamp=4).object_ids == found.object_ids
