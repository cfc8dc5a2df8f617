"""Prompt encoder + two-way transformer + mask decoder against Meta's SAM 2 (reference package as oracle)."""
from __future__ import annotations

import pytest
import torch

from oracle import build_reference, max_abs, perturb_, state_subset
from sam2_ros.model.mask_decoder import MaskDecoder, MaskDecoderConfig, stability_score
from sam2_ros.model.prompt_encoder import PromptEncoder

pytestmark = pytest.mark.slow  # compares against Meta's reference code (the oracle)

TOL = 1e-4
C = 256


def ours_from_reference(ref: torch.nn.Module, image_size: int,
                        config: MaskDecoderConfig | None = None) -> tuple[PromptEncoder, MaskDecoder]:
    """Our prompt encoder and decoder, loaded strictly from the reference model's checkpoint keys."""
    emb = image_size // 16
    pe = PromptEncoder(C, (emb, emb), (image_size, image_size), mask_in_chans=16)
    pe.load_state_dict(state_subset(ref, "sam_prompt_encoder."), strict=True)
    dec = MaskDecoder(config or MaskDecoderConfig())
    dec.load_state_dict(state_subset(ref, "sam_mask_decoder."), strict=True)
    return pe.eval(), dec.eval()


def make_features(batch: int, emb: int, seed: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, C, emb, emb, generator=gen)
    feat_s0 = torch.randn(batch, C // 8, 4 * emb, 4 * emb, generator=gen)
    feat_s1 = torch.randn(batch, C // 4, 2 * emb, 2 * emb, generator=gen)
    return image, (feat_s0, feat_s1)


def make_prompts(kind: str, batch: int, image_size: int, seed: int):
    """(points or None, boxes or None, masks or None) in Meta's PromptEncoder.forward form."""
    gen = torch.Generator().manual_seed(seed + 1000)
    emb = image_size // 16
    points = boxes = masks = None
    if "points" in kind or kind == "point1":
        n = 1 if kind == "point1" else 4
        coords = torch.rand(batch, n, 2, generator=gen) * image_size
        labels = torch.tensor([1, 0, 1, 0][:n], dtype=torch.int32).repeat(batch, 1)
        points = (coords, labels)
    if "box" in kind:
        xy0 = torch.rand(batch, 2, generator=gen) * image_size / 2
        boxes = torch.cat([xy0, xy0 + torch.rand(batch, 2, generator=gen) * image_size / 2], dim=1)  # [B, 4]
    if "mask" in kind:
        masks = torch.randn(batch, 1, 4 * emb, 4 * emb, generator=gen) * 5
    return points, boxes, masks


def compare(ref, pe, dec, kind: str, batch: int, multimask: bool, image_size: int, seed: int = 0,
            label: str = "") -> dict:
    """Run both models on one prompt case; assert every output within TOL and return the diffs."""
    image, high_res = make_features(batch, image_size // 16, seed)
    prompts = make_prompts(kind, batch, image_size, seed)
    with torch.no_grad():
        ref_sparse, ref_dense = ref.sam_prompt_encoder(*prompts)
        sparse, dense = pe(*prompts)
        ref_out = ref.sam_mask_decoder(image_embeddings=image, image_pe=ref.sam_prompt_encoder.get_dense_pe(),
                                       sparse_prompt_embeddings=ref_sparse, dense_prompt_embeddings=ref_dense,
                                       multimask_output=multimask, repeat_image=False,
                                       high_res_features=list(high_res))
        out = dec(image, pe.get_dense_pe(), sparse, dense, multimask_output=multimask, high_res_features=high_res)
    diffs = {"sparse": max_abs(sparse, ref_sparse), "dense": max_abs(dense, ref_dense)}
    for name, a, b in zip(("masks", "iou", "tokens", "obj"), out, ref_out):
        diffs[name] = max_abs(a, b)
    figures = " ".join(f"{k}={v:.2e}" for k, v in diffs.items())
    print(f"{label}{kind:12s} B={batch} multimask={multimask!s:5s} {figures}")
    assert all(v <= TOL for v in diffs.values()), diffs
    return diffs


@pytest.fixture(scope="module")
def ref512():
    return build_reference("sam2.1_hiera_t", image_size=512)


@pytest.fixture(scope="module")
def ours512(ref512):
    return ours_from_reference(ref512, 512)


CASES = {3: ["point1", "points_neg", "box", "mask", "box_points", "points_mask"], 1: ["point1", "box", "mask"]}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("multimask", [True, False])
def test_prompt_cases_match_reference(ref512, ours512, batch, multimask):
    pe, dec = ours512
    for kind in CASES[batch]:
        compare(ref512, pe, dec, kind, batch, multimask, 512)


def test_dense_pe_and_shapes(ref512, ours512):
    pe, dec = ours512
    with torch.no_grad():
        d = max_abs(pe.get_dense_pe(), ref512.sam_prompt_encoder.get_dense_pe())
        print(f"dense pe diff {d:.2e}")
        assert d <= TOL
        image, high_res = make_features(2, 32, 0)
        sparse, dense = pe(*make_prompts("points_neg", 2, 512, 0))
        masks, iou, tokens, obj = dec(image, pe.get_dense_pe(), sparse, dense, True, high_res_features=high_res)
        assert pe.get_dense_pe().shape == (1, C, 32, 32)
        assert sparse.shape == (2, 5, C) and dense.shape == (2, C, 32, 32)  # 4 points + padding point
        assert masks.shape == (2, 3, 128, 128) and iou.shape == (2, 3)
        assert tokens.shape == (2, 3, C) and obj.shape == (2, 1)
        masks, iou, tokens, obj = dec(image, pe.get_dense_pe(), sparse, dense, False, high_res_features=high_res)
        assert masks.shape == (2, 1, 128, 128) and iou.shape == (2, 1) and tokens.shape == (2, 1, C)
        with pytest.raises(ValueError):
            dec(image, pe.get_dense_pe(), sparse, dense, True)


def test_export_path_points_only(ref512, ours512):
    """Box passed as two points labelled 2/3 plus clicks, always padded: the branch-free path used for export."""
    pe, _ = ours512
    gen = torch.Generator().manual_seed(3)
    coords = torch.rand(3, 4, 2, generator=gen) * 512
    labels = torch.tensor([[2, 3, 1, 0], [2, 3, 1, 1], [2, 3, 0, -1]], dtype=torch.int32)
    with torch.no_grad():
        ours = pe.embed_points(coords, labels, pad=True)
        ref_sparse, _ = ref512.sam_prompt_encoder((coords, labels), None, None)
        d = max_abs(ours, ref_sparse)
        # A box given as a box (no padding) equals its two corner points without padding.
        box = coords[:, :2].reshape(3, 4)
        d_box = max_abs(pe.embed_boxes(box), ref512.sam_prompt_encoder._embed_boxes(box))
    print(f"export-path sparse diff {d:.2e}, box diff {d_box:.2e}")
    assert ours.shape == (3, 5, C) and d <= TOL and d_box <= TOL


def test_stability_fallback_both_branches(ref512, ours512):
    """Single-mask output: per batch element, keep mask 0 when stable, else the best multimask; both must occur."""
    pe, dec = ours512
    ref_dec = ref512.sam_mask_decoder
    image, high_res = make_features(4, 32, 7)
    sparse, dense = pe(*make_prompts("points_neg", 4, 512, 7))
    with torch.no_grad():
        all_masks, all_iou, _, _ = dec.predict_all(image, pe.get_dense_pe(), sparse, dense,
                                                   high_res_features=high_res)
        scores = stability_score(all_masks[:, :1], dec.dynamic_multimask_stability_delta)[:, 0]
    print("stability scores", [round(s, 4) for s in scores.tolist()])
    thresh = scores.median().item() + 1e-6  # roughly half stable, half not
    old = (dec.dynamic_multimask_stability_thresh, ref_dec.dynamic_multimask_stability_thresh)
    dec.dynamic_multimask_stability_thresh = ref_dec.dynamic_multimask_stability_thresh = thresh
    try:
        stable = scores >= thresh
        assert stable.any() and (~stable).any()
        d = compare(ref512, pe, dec, "points_neg", 4, False, 512, seed=7, label="[fallback thresh] ")
        masks, iou, _, _ = dec(image, pe.get_dense_pe(), sparse, dense, False, high_res_features=high_res)
        best = all_iou[:, 1:].argmax(-1) + 1
        for b in range(4):
            pick = 0 if stable[b] else best[b].item()
            assert torch.equal(masks[b, 0], all_masks[b, pick]) and torch.equal(iou[b, 0], all_iou[b, pick])
        assert d["masks"] <= TOL
    finally:
        dec.dynamic_multimask_stability_thresh, ref_dec.dynamic_multimask_stability_thresh = old
    # Training mode never falls back (mask 0 always), as in Meta's code.
    dec.train()
    try:
        with torch.no_grad():
            masks, _, _, _ = dec(image, pe.get_dense_pe(), sparse, dense, False, high_res_features=high_res)
        assert torch.equal(masks, all_masks[:, :1])
    finally:
        dec.eval()


def test_repeat_image(ref512, ours512):
    """One image embedding shared by several prompt sets."""
    pe, dec = ours512
    image, _ = make_features(1, 32, 5)
    _, high_res = make_features(3, 32, 5)
    prompts = make_prompts("box_points", 3, 512, 5)
    with torch.no_grad():
        ref_sparse, ref_dense = ref512.sam_prompt_encoder(*prompts)
        ref_out = ref512.sam_mask_decoder(image, ref512.sam_prompt_encoder.get_dense_pe(), ref_sparse, ref_dense,
                                          True, True, list(high_res))
        out = dec(image, pe.get_dense_pe(), *pe(*prompts), True, repeat_image=True, high_res_features=high_res)
    diffs = [max_abs(a, b) for a, b in zip(out, ref_out)]
    print("repeat_image diffs", [f"{x:.2e}" for x in diffs])
    assert max(diffs) <= TOL


def test_image_size_1024_once():
    ref = build_reference("sam2.1_hiera_t", image_size=1024)
    pe, dec = ours_from_reference(ref, 1024)
    compare(ref, pe, dec, "points_mask", 1, True, 1024, label="[1024] ")
    compare(ref, pe, dec, "box_points", 1, False, 1024, label="[1024] ")


def test_sam2_tiny_config():
    ref = build_reference("sam2_hiera_t", image_size=512, seed=1)
    pe, dec = ours_from_reference(ref, 512)
    compare(ref, pe, dec, "points_neg", 2, True, 512, seed=1, label="[sam2 t] ")
    compare(ref, pe, dec, "box", 2, False, 512, seed=1, label="[sam2 t] ")


def _meta_decoder(cfg: MaskDecoderConfig, seed: int):
    """Meta's MaskDecoder built directly with the same hyper-parameters as `cfg` (seeded, perturbed)."""
    from sam2.modeling.sam.mask_decoder import MaskDecoder as MetaMaskDecoder
    from sam2.modeling.sam.transformer import TwoWayTransformer as MetaTransformer

    torch.manual_seed(seed)
    tr = MetaTransformer(depth=cfg.transformer_depth, embedding_dim=cfg.transformer_dim,
                         num_heads=cfg.transformer_num_heads, mlp_dim=cfg.transformer_mlp_dim)
    meta = MetaMaskDecoder(transformer_dim=cfg.transformer_dim, transformer=tr,
                           num_multimask_outputs=cfg.num_multimask_outputs, iou_head_depth=cfg.iou_head_depth,
                           iou_head_hidden_dim=cfg.iou_head_hidden_dim,
                           use_high_res_features=cfg.use_high_res_features,
                           iou_prediction_use_sigmoid=cfg.iou_prediction_use_sigmoid,
                           dynamic_multimask_via_stability=cfg.dynamic_multimask_via_stability,
                           dynamic_multimask_stability_delta=cfg.dynamic_multimask_stability_delta,
                           dynamic_multimask_stability_thresh=cfg.dynamic_multimask_stability_thresh,
                           pred_obj_scores=cfg.pred_obj_scores, pred_obj_scores_mlp=cfg.pred_obj_scores_mlp,
                           use_multimask_token_for_obj_ptr=cfg.use_multimask_token_for_obj_ptr)
    return perturb_(meta, seed).eval()


VARIANTS = {
    # The micro decoder a teammate uses for tiny test models.
    "micro": MaskDecoderConfig(transformer_mlp_dim=256, transformer_num_heads=4, iou_head_hidden_dim=64),
    "linear_obj_head": MaskDecoderConfig(pred_obj_scores_mlp=False, use_multimask_token_for_obj_ptr=False),
    "sam1_like": MaskDecoderConfig(use_high_res_features=False, iou_prediction_use_sigmoid=False,
                                   pred_obj_scores=False, dynamic_multimask_via_stability=False,
                                   use_multimask_token_for_obj_ptr=False),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_decoder_variants(name):
    cfg = VARIANTS[name]
    meta = _meta_decoder(cfg, seed=2)
    ours = MaskDecoder(cfg).eval()
    ours.load_state_dict(meta.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(4)
    image, high_res = make_features(2, 16, 4)
    pos = torch.randn(1, C, 16, 16, generator=gen)
    sparse = torch.randn(2, 3, C, generator=gen)
    dense = torch.randn(2, C, 16, 16, generator=gen)
    hr = high_res if cfg.use_high_res_features else None
    for multimask in (True, False):
        with torch.no_grad():
            ref_out = meta(image, pos, sparse, dense, multimask, False, list(hr) if hr else None)
            out = ours(image, pos, sparse, dense, multimask, high_res_features=hr)
        diffs = [max_abs(a, b) for a, b in zip(out, ref_out)]
        print(f"[{name}] multimask={multimask} diffs", [f"{x:.2e}" for x in diffs])
        assert max(diffs) <= TOL
