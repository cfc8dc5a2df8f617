"""The four inference parts of Sam2Model (+ the memory glue) against Meta's SAM2Base methods.

Meta's video-predictor model is built with seeded, perturbed random weights and saved as a Meta checkpoint; ours is
built with build_sam2 from that file. Same inputs must give the same outputs within 1e-4 (max abs).
"""
from __future__ import annotations

import pytest
import torch

from oracle import build_reference, max_abs, save_meta_checkpoint
from sam2_ros.model import build_sam2
from sam2_ros.tracking.memory_bank import MemoryAssembler, select_memory
from sam2_ros.tracking.state import Memory, ObjectState

pytestmark = pytest.mark.slow  # compares against Meta's reference code (the oracle)

TOL = 1e-4

# (config, image size): 2.1 t/s/b+ at 512 (quick), t at 1024, and a 2.0 config (other pointer glue).
CASES = [("sam2.1_hiera_t", 512), ("sam2.1_hiera_s", 512), ("sam2.1_hiera_b+", 512),
         pytest.param(("sam2.1_hiera_t", 1024), marks=pytest.mark.slow), ("sam2_hiera_t", 512)]
IDS = ["sam2.1_hiera_t@512", "sam2.1_hiera_s@512", "sam2.1_hiera_b+@512", "sam2.1_hiera_t@1024", "sam2_hiera_t@512"]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def pair(request, tmp_path_factory):
    """(reference, ours, image features of one random image) for a case; pytest groups the tests by case."""
    config, size = request.param
    ref = build_reference(config, image_size=size)
    ckpt = save_meta_checkpoint(ref, tmp_path_factory.mktemp("ckpt") / "meta.pt")
    ours = build_sam2(config, checkpoint=ckpt, image_size=size)
    torch.manual_seed(1)
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        _, feats, pos, sizes = ref._prepare_backbone_features(ref.forward_image(image))
        ours_parts = ours.encode_image(image)
    return config, size, ref, ours, feats, pos, sizes, ours_parts


def _as_map(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Meta's [HW, B, C] tokens -> [B, C, H, W]."""
    return tokens.permute(1, 2, 0).reshape(tokens.shape[1], tokens.shape[2], *size)


def test_encode_image(pair):
    config, size, ref, ours, feats, pos, sizes, (s0, s1, embed, embed_pos) = pair
    expected = [_as_map(f, s) for f, s in zip(feats, sizes)]
    diffs = [max_abs(a, b) for a, b in zip((s0, s1, embed), expected)]
    pos_diff = max_abs(embed_pos, _as_map(pos[-1], sizes[-1]))
    print(f"{config}@{size} encode_image max|diff| s0 {diffs[0]:.2e} s1 {diffs[1]:.2e} embed {diffs[2]:.2e} "
          f"pos {pos_diff:.2e}")
    assert s0.shape == (1, 32, size // 4, size // 4) and embed.shape == (1, 256, size // 16, size // 16)
    assert max(diffs + [pos_diff]) <= TOL


def _prompts(size: int, kind: str, b: int = 2):
    """Point/box/mask prompts for a batch of b objects (pixels of the S x S model input)."""
    g = torch.Generator().manual_seed(len(kind))
    coords, labels, mask = None, None, None
    if kind in ("point", "mixed"):
        coords = torch.rand(b, 1 if kind == "point" else 3, 2, generator=g) * size
        labels = torch.ones(b, coords.shape[1], dtype=torch.int32)
        if kind == "mixed":
            labels[:, 1] = 0
    if kind == "box":
        xy = torch.rand(b, 2, generator=g) * size / 2
        coords = torch.stack([xy, xy + size / 3], dim=1)  # [B, 2, 2] corners
        labels = torch.tensor([[2, 3]] * b, dtype=torch.int32)
    if kind in ("mask", "mixed"):
        mask = torch.randn(b, 1, size // 4, size // 4, generator=g) * 5
    if kind == "full_mask":  # image-sized: resized with antialiasing to the decoder's mask size
        mask = (torch.rand(b, 1, size, size, generator=g) > 0.5).float()
    return coords, labels, mask


@pytest.mark.parametrize("kind", ["point", "box", "mask", "full_mask", "mixed"])
def test_decode(pair, kind):
    config, size, ref, ours, feats, _, sizes, (s0, s1, embed, _) = pair
    b = 2
    coords, labels, mask = _prompts(size, kind, b)
    embed_b, s0_b, s1_b = (t.expand(b, -1, -1, -1) for t in (embed, s0, s1))
    ref_high = [_as_map(f, s).expand(b, -1, -1, -1) for f, s in zip(feats[:-1], sizes[:-1])]
    ref_embed = _as_map(feats[-1], sizes[-1]).expand(b, -1, -1, -1)
    points = None if coords is None else {"point_coords": coords, "point_labels": labels}
    for multimask in (False, True):
        with torch.no_grad():
            exp = ref._forward_sam_heads(ref_embed, points, mask, ref_high, multimask)
            got = ours.decode(embed_b, s0_b, s1_b, coords, labels, mask, multimask)
        names = ["low_res_multimasks", "high_res_multimasks", "ious", "low_res_masks", "high_res_masks", "obj_ptr",
                 "object_score_logits"]
        exp = dict(zip(names, exp))
        pairs = {"low_res_multimasks": got.low_res_multimasks, "ious": got.ious, "low_res_masks": got.low_res_masks,
                 "high_res_masks": got.high_res_masks, "obj_ptr": got.obj_ptr,
                 "object_score_logits": got.object_score_logits}
        diffs = {k: max_abs(v, exp[k]) for k, v in pairs.items()}
        print(f"{config}@{size} decode {kind} multimask={multimask} scores {exp['object_score_logits'].flatten().tolist()}"
              f" max|diff| " + " ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        assert got.iou.shape == (b, 1) and got.ious.shape == (b, 3 if multimask else 1)
        assert torch.equal(got.iou, got.ious.gather(1, got.ious.argmax(1, keepdim=True)) if multimask else got.ious)
        assert max(diffs.values()) <= TOL


def test_mask_as_output(pair):
    config, size, ref, ours, feats, _, sizes, (s0, s1, embed, _) = pair
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(2, 1, size, size, generator=g) > 0.7
    mask[1] = False  # an empty mask: the object is absent
    ref_high = [_as_map(f, s).expand(2, -1, -1, -1) for f, s in zip(feats[:-1], sizes[:-1])]
    with torch.no_grad():
        exp = ref._use_mask_as_output(_as_map(feats[-1], sizes[-1]).expand(2, -1, -1, -1), ref_high, mask)
        got = ours.mask_as_output(embed.expand(2, -1, -1, -1), s0.expand(2, -1, -1, -1), s1.expand(2, -1, -1, -1),
                                  mask)
    diffs = [max_abs(a, b) for a, b in zip((got.low_res_masks, got.high_res_masks, got.iou, got.obj_ptr,
                                             got.object_score_logits), (exp[3], exp[4], exp[2], exp[5], exp[6]))]
    print(f"{config}@{size} mask_as_output max|diff| {[f'{d:.2e}' for d in diffs]}")
    assert max(diffs) <= TOL


def _memory_frame(g: torch.Generator, b: int, d: int, h: int, c: int, maskmem_pos: torch.Tensor) -> dict:
    # Scaled by 4: with these random weights unit-scale memories barely move the output; at 4x a wrong slot or
    # pointer distance changes it by ~1e-3 to 6e-2 (measured), far above the tolerance.
    return {"maskmem_features": 4 * torch.randn(b, d, h, h, generator=g), "maskmem_pos_enc": [maskmem_pos],
            "obj_ptr": 4 * torch.randn(b, c, generator=g)}


def _as_memory(frame: dict) -> Memory:
    """One of Meta's per-frame outputs as a memory-bank entry whose tensors hold the batch rows."""
    return Memory(frame["obj_ptr"], torch.zeros(frame["obj_ptr"].shape[0], 1), frame["maskmem_features"], None, None)


# (current frame, conditioning frames, non-conditioning frames, num_frames): a usual case; a prompted frame in the
# future (its pointer is ignored) with no pointer at all; many frames (pointer window and memory slots full).
SCENARIOS = [(5, [0], [1, 2, 3, 4], 10), (5, [7], [], 10), (30, [0, 12], list(range(5, 30)), 1000)]


def test_attend_memory(pair):
    """The tracker's memory selection and assembly + our memory attention vs Meta's
    _prepare_memory_conditioned_features over the same memories."""
    config, size, ref, ours, feats, pos, sizes, (_, _, embed, embed_pos) = pair
    cfg = ours.config
    b, c, d, h = 2, cfg.hidden_dim, cfg.mem_dim, cfg.feat_size
    # At 1024 one scenario (the glue is size-independent; the full sets run at 512): keeps CPU time in check.
    for frame_idx, cond, non_cond, num_frames in (SCENARIOS[:1] if size >= 1024 else SCENARIOS):
        g = torch.Generator().manual_seed(frame_idx)
        # The memory encoder's position map is one sine map for every frame (the assembler keeps one).
        maskmem_pos = 4 * torch.randn(1, d, h, h, generator=g).expand(b, -1, -1, -1)
        out = {"cond_frame_outputs": {t: _memory_frame(g, b, d, h, c, maskmem_pos) for t in cond},
               "non_cond_frame_outputs": {t: _memory_frame(g, b, d, h, c, maskmem_pos) for t in non_cond}}
        curr = torch.randn(b, c, h, h, generator=g)
        curr_tokens = curr.flatten(2).permute(2, 0, 1)
        curr_pos = embed_pos.expand(b, -1, -1, -1)
        with torch.no_grad():
            exp = ref._prepare_memory_conditioned_features(
                frame_idx, False, [curr_tokens], [curr_pos.flatten(2).permute(2, 0, 1)], [(h, h)], out, num_frames)
        bank = ObjectState(1, cond={t: _as_memory(o) for t, o in out["cond_frame_outputs"].items()},
                           recent={t: _as_memory(o) for t, o in out["non_cond_frame_outputs"].items()})
        max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
        layout = select_memory(bank, frame_idx, cfg, max_ptrs=max_ptrs)
        assembler = MemoryAssembler(ours, max_rel=max_ptrs - 1)
        assembler.set_maskmem_pos(maskmem_pos)
        with torch.no_grad():
            memory, memory_pos, ptr_tokens, ptr_pos = assembler.assemble(layout.rows(b))
            got = ours.attend_memory(curr, curr_pos, memory, memory_pos, ptr_tokens, ptr_pos)
        diff = max_abs(got, exp)
        print(f"{config}@{size} attend_memory frame {frame_idx}: {len(layout.maskmems)} memories, "
              f"{ptr_tokens.shape[1]} pointer tokens, max|diff| {diff:.2e}")
        assert diff <= TOL


def test_encode_memory_and_no_memory(pair):
    config, size, ref, ours, feats, _, sizes, (_, _, embed, _) = pair
    g = torch.Generator().manual_seed(7)
    masks = torch.randn(2, 1, size, size, generator=g) * 8
    scores = torch.tensor([[3.0], [-2.0]])  # one present, one absent object
    pix = embed.expand(2, -1, -1, -1)
    ref_feats = [feats[-1].expand(-1, 2, -1)]
    for from_points in (False, True):
        with torch.no_grad():
            exp_feat, exp_pos = ref._encode_new_memory(ref_feats, sizes[-1:], masks, scores, from_points)
            binarize = from_points and ours.config.binarize_mask_from_pts_for_mem_enc
            got_feat, got_pos = ours.encode_memory(pix, masks, scores, binarize)
        diffs = (max_abs(got_feat, exp_feat), max_abs(got_pos, exp_pos[-1]))
        print(f"{config}@{size} encode_memory from_points={from_points} max|diff| feat {diffs[0]:.2e} "
              f"pos {diffs[1]:.2e}")
        assert max(diffs) <= TOL
    with torch.no_grad():
        exp = ref._prepare_memory_conditioned_features(0, True, feats[-1:], feats[-1:], sizes[-1:], {}, 1)
        got = ours.add_no_memory(embed)
    print(f"{config}@{size} no-memory frame max|diff| {max_abs(got, exp):.2e}")
    assert max_abs(got, exp) <= TOL


@pytest.mark.slow
def test_large_image_encoder_runs(tmp_path):
    """One forward of the large model's image encoder at 512 (the other parts are shared with every size)."""
    ref = build_reference("sam2.1_hiera_l", image_size=512)
    ckpt = save_meta_checkpoint(ref, tmp_path / "meta.pt")
    ours = build_sam2("sam2.1_hiera_l", checkpoint=ckpt, image_size=512)
    torch.manual_seed(1)
    image = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        _, feats, pos, sizes = ref._prepare_backbone_features(ref.forward_image(image))
        got = ours.encode_image(image)
    diffs = [max_abs(a, _as_map(f, s)) for a, f, s in zip(got[:3], feats, sizes)]
    print(f"sam2.1_hiera_l@512 encode_image max|diff| {[f'{d:.2e}' for d in diffs]}")
    assert max(diffs) <= TOL
