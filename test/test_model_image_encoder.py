"""Image encoder (Hiera trunk + FPN neck) and position encodings against Meta's reference code.

Meta's model is built with seeded, perturbed random weights, saved as a Meta checkpoint, and the `image_encoder.`
keys of that file are loaded strictly into ours; the same image must give the same features and position maps.
"""
from __future__ import annotations

import pytest
import torch

from oracle import build_reference, max_abs, save_meta_checkpoint
from sam2_ros.model.checkpoint import read_state_dict
from sam2_ros.model.hiera import Hiera, HieraConfig, hiera_preset
from sam2_ros.model.image_encoder import FpnNeck, ImageEncoder, NeckConfig, image_encoder_preset
from sam2_ros.model.position_encoding import PositionEmbeddingRandom, PositionEmbeddingSine, get_1d_sine_pe

TOL = 1e-4
PREFIX = "image_encoder."


# (our config name, trunk preset, image size): sam2.1 t/s/b+ at 512, t at 1024, l at 256, one sam2 (not 2.1) config.
# b+ at 512 also exercises window padding (14-token windows on a 32x32 stage-3 map).
CASES = [
    ("sam2.1_hiera_t", "t", 512),
    ("sam2.1_hiera_s", "s", 512),
    ("sam2.1_hiera_b+", "b+", 512),
    ("sam2.1_hiera_t", "t", 1024),
    ("sam2.1_hiera_l", "l", 256),
    ("sam2_hiera_s", "s", 256),
]


@pytest.mark.slow
@pytest.mark.parametrize("config,preset,size", CASES, ids=[f"{c}@{s}" for c, _, s in CASES])
def test_image_encoder_matches_reference(config: str, preset: str, size: int, tmp_path) -> None:
    ref = build_reference(config, image_size=size)
    ckpt = save_meta_checkpoint(ref, tmp_path / "meta.pt")
    state = {k[len(PREFIX):]: v for k, v in read_state_dict(ckpt).items() if k.startswith(PREFIX)}

    ours = ImageEncoder.from_config(image_encoder_preset(preset)).eval()
    ours.load_state_dict(state, strict=True)

    torch.manual_seed(1)
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = ref.image_encoder(image)
        features, pos = ours(image)
    del ref

    assert len(features) == len(pos) == len(expected["backbone_fpn"]) == 3
    diffs = [max_abs(f, e) for f, e in zip(features, expected["backbone_fpn"])]
    pos_diffs = [max_abs(p, e) for p, e in zip(pos, expected["vision_pos_enc"])]
    print(f"{config}@{size}: feature max|diff| {[f'{d:.2e}' for d in diffs]}, pos {[f'{d:.2e}' for d in pos_diffs]}")
    for i, f in enumerate(features):
        assert f.shape == (1, 256, size // (4 << i), size // (4 << i))
    assert max(diffs) <= TOL and max(pos_diffs) <= TOL


def test_micro_trunk_and_encoder_shapes() -> None:
    torch.manual_seed(0)
    cfg = hiera_preset("micro")
    trunk = Hiera(cfg).eval()
    n_params = sum(p.numel() for p in trunk.parameters())
    print(f"micro trunk: {n_params} parameters, channels {trunk.channel_list}")
    assert trunk.channel_list == [128, 64, 32, 16]
    assert n_params < 500_000
    image = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        levels = trunk(image)
    assert [tuple(t.shape) for t in levels] == [(2, 16, 64, 64), (2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8)]
    assert all(torch.isfinite(t).all() for t in levels)

    encoder = ImageEncoder.from_config(image_encoder_preset("micro", d_model=32)).eval()
    with torch.no_grad():
        features, pos = encoder(image)
    assert [tuple(t.shape) for t in features] == [(2, 32, 64, 64), (2, 32, 32, 32), (2, 32, 16, 16)]
    assert [tuple(t.shape) for t in pos] == [(2, 32, 64, 64), (2, 32, 32, 32), (2, 32, 16, 16)]


@pytest.mark.slow
def test_position_encodings_match_reference() -> None:
    from sam2.modeling.position_encoding import PositionEmbeddingRandom as MetaRandom
    from sam2.modeling.position_encoding import PositionEmbeddingSine as MetaSine
    from sam2.modeling.sam2_utils import get_1d_sine_pe as meta_1d

    diffs = {}
    for normalize in (True, False):
        ours, ref = PositionEmbeddingSine(64, normalize=normalize), MetaSine(64, normalize=normalize)
        for hw in ((16, 16), (12, 20)):
            x = torch.randn(2, 8, *hw)
            out = ours(x)
            assert out.shape == (2, 64, *hw)
            diffs[f"sine norm={normalize} {hw}"] = max_abs(out, ref(x))
            diffs[f"sine cached {hw}"] = max_abs(ours(x), ref(x))  # second call comes from the cache

    torch.manual_seed(0)
    ref_rand = MetaRandom(64)
    ours_rand = PositionEmbeddingRandom(64)
    ours_rand.load_state_dict(ref_rand.state_dict(), strict=True)
    diffs["random grid"] = max_abs(ours_rand((16, 24)), ref_rand((16, 24)))
    coords = torch.rand(3, 5, 2) * torch.tensor([640.0, 480.0])
    diffs["random coords"] = max_abs(ours_rand.forward_with_coords(coords, (480, 640)),
                                       ref_rand.forward_with_coords(coords, (480, 640)))
    positions = torch.tensor([0.0, 1.0, 3.0, 15.0])
    diffs["1d sine"] = max_abs(get_1d_sine_pe(positions, 64), meta_1d(positions, 64))
    print("position encodings max|diff|:", {k: f"{v:.1e}" for k, v in diffs.items()})
    assert max(diffs.values()) <= 1e-6


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        hiera_preset("huge")
    with pytest.raises(ValueError):
        Hiera(HieraConfig(stages=(1, 1), window_spec=(8, 4, 8)))
    with pytest.raises(ValueError):
        ImageEncoder(Hiera(hiera_preset("micro")), FpnNeck(NeckConfig()), scalp=1)  # 768.. vs 128.. channels
    encoder = ImageEncoder.from_config(image_encoder_preset("micro", d_model=32))
    with pytest.raises(ValueError):
        encoder(torch.zeros(1, 1, 64, 64))
