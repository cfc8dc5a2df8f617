"""The trainer: gradients reach every part through the unrolled memory path, a resumed run equals an uninterrupted
one, and fine-tuning a checkpoint's decoder on a folder of images + masks lowers the loss (also through the CLI)."""
import numpy as np
import pytest
import torch
from PIL import Image

from fixtures.checkpoint import PickledCall
from sam2_ros.model.build import build_sam2
from sam2_ros.training.__main__ import main as cli
from sam2_ros.training.batches import synthetic_batch
from sam2_ros.training.trainer import TrainConfig, Trainer, export_meta, lr_at
from sam2_ros.training.unroll import unroll

SIZE = 128  # the micro model at a smaller input keeps these tests fast
pytestmark = pytest.mark.slow  # training


def test_clip_unroll_trains_every_part():
    torch.manual_seed(0)
    model = build_sam2("sam2_micro", image_size=SIZE).train()
    # Random weights call every object absent, which swaps the pointer for the no-object pointer (no gradient to
    # obj_ptr_proj); a positive presence bias makes the objects "present" as a trained model would.
    head = [m for m in model.sam_mask_decoder.pred_obj_score_head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.bias.fill_(5.0)
    batch = synthetic_batch(np.random.default_rng(0), clips=1, frames=3, objects=2, size=SIZE)
    images, targets = batch.tensors()
    out = unroll(model, images, targets, torch.Generator().manual_seed(0), "click", 1, correct=True)
    assert len(out.frames) == 4  # prompted frame, its correction, 2 tracked frames
    out.total.backward()
    for prefix in ("image_encoder.trunk", "image_encoder.neck", "sam_mask_decoder", "sam_prompt_encoder",
                   "memory_attention", "memory_encoder", "obj_ptr_proj", "obj_ptr_tpos_proj", "maskmem_tpos_enc",
                   "no_mem_embed"):
        grads = [p.grad.abs().sum().item() for n, p in model.named_parameters()
                 if n.startswith(prefix) and p.grad is not None]
        print(f"{prefix}: grad L1 {sum(grads):.3e}")
        assert grads and sum(grads) > 0, prefix


def _config(out_dir, steps, **kw):
    base = dict(out_dir=str(out_dir), image_size=SIZE, steps=steps, image_batch=2, clip_batch=1, clip_frames=3,
                objects=2, clip_fraction=0.5, warmup=2, eval_clips=0, log_every=1, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_exactly(tmp_path):
    logs = []
    straight = Trainer(_config(tmp_path / "a", 3), resume=False, log=logs.append)
    straight.train()
    first = Trainer(_config(tmp_path / "b", 2), resume=False, log=logs.append)
    first.train()
    resumed = Trainer(_config(tmp_path / "b", 3), resume=True, log=logs.append)
    assert resumed.state.step == 2
    resumed.train()
    diff = max((a - b).abs().max().item() for a, b in zip(straight.model.state_dict().values(),
                                                          resumed.model.state_dict().values()))
    print(f"resumed vs straight: max abs diff {diff:.2e}; plans {[straight._plan(i) for i in range(3)]}")
    assert resumed.state.step == 3 and diff < 1e-5
    assert any("resumed" in str(line) for line in logs)


def test_resume_and_export_refuse_pickled_code(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(_config(run, 1), resume=False, log=lambda line: None).train()
    saved = torch.load(run / "last.pt", weights_only=True)  # a real resume file loads safely
    assert set(saved) == {"model", "optimizer", "state", "train_config", "torch_rng"}
    saved["extra"] = PickledCall()
    torch.save(saved, run / "last.pt")
    with pytest.raises(Exception, match="refusing checkpoint"):
        Trainer(_config(run, 2), resume=True, log=lambda line: None)
    with pytest.raises(Exception, match="refusing checkpoint"):
        cli(["export", str(run / "last.pt"), str(tmp_path / "out.pt")])
    assert "payload executed" not in capsys.readouterr().out
    assert not (tmp_path / "out.pt").exists()


def _folder(root, count=4, side=80):
    """A user's folder: RGB images with one or two flat shapes, masks holding instance ids."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(count):
        img = rng.integers(90, 130, (side, side, 3)).astype(np.uint8)
        label = np.zeros((side, side), np.uint8)
        for k in (1, 2):
            cx, cy, r = rng.uniform(20, 60), rng.uniform(20, 60), rng.uniform(8, 16)
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            img[inside] = rng.integers(0, 255, 3)
            label[inside] = k * 40
        Image.fromarray(img).save(root / "images" / f"im{i}.jpg")
        Image.fromarray(label).save(root / "masks" / f"im{i}.png")
    return root / "images", root / "masks"


def test_finetune_decoder_on_a_folder_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    images, masks = _folder(tmp_path)
    ckpt = tmp_path / "base.pt"
    export_meta(build_sam2("sam2_micro"), ckpt)  # stands in for a downloaded SAM 2.1 checkpoint
    cfg = TrainConfig(out_dir=str(tmp_path / "ft"), config="sam2_micro", checkpoint=str(ckpt), image_size=SIZE,
                      trainable="decoder", images=str(images), masks=str(masks), lr=2e-3, warmup=1, steps=6,
                      image_batch=4, eval_clips=0, log_every=3)
    trainer = Trainer(cfg, resume=False, log=lambda *a, **k: None)
    fixed = trainer.folder.batch(np.random.default_rng(123), 8)
    trunk_before = trainer.model.image_encoder.trunk.patch_embed.proj.weight.clone()
    before = trainer.loss_on(fixed)
    trainer.train()
    after = trainer.loss_on(fixed)
    print(f"fine-tune loss on a fixed batch: before {before:.4f} after {after:.4f}")
    assert after < before
    assert torch.equal(trainer.model.image_encoder.trunk.patch_embed.proj.weight, trunk_before)  # frozen

    out = tmp_path / "ft.pt"
    code = cli(["finetune", "--config", "sam2_micro", "--checkpoint", str(ckpt), "--image-size", str(SIZE),
                "--images", str(images), "--masks", str(masks), "--steps", "1", "--image-batch", "2",
                "--out-dir", str(tmp_path / "cli"), "--export", str(out)])
    assert code == 0
    loaded = build_sam2("sam2_micro", checkpoint=out)  # strict: Meta's format, every key
    assert set(torch.load(out, weights_only=True)) == {"model"}
    assert sum(p.numel() for p in loaded.parameters()) > 0


def test_warm_restart_schedule():
    cfg = TrainConfig(lr=1e-3, warmup=100, steps=1100, restart=0, min_lr_ratio=0.05)
    again = TrainConfig(lr=1e-3, warmup=100, steps=2100, restart=1000, min_lr_ratio=0.05)
    for step in (0, 50, 99, 100, 600, 1099, 1100):
        assert lr_at(step, cfg) == pytest.approx(lr_at(step + 1000, again))  # the same schedule, shifted
    assert lr_at(100, cfg) == pytest.approx(1e-3) and lr_at(1100, cfg) == pytest.approx(5e-5)
    assert lr_at(999, again) == pytest.approx(1e-5)  # before the restart: the first warm-up step's rate


@pytest.mark.parametrize("encoder_grad", [0, 1])
def test_clip_batches_can_leave_the_image_encoder_to_image_batches(tmp_path, encoder_grad):
    torch.manual_seed(0)
    trainer = Trainer(_config(tmp_path, 1, clip_fraction=1.0, clip_encoder_grad=encoder_grad, warmup=1),
                      resume=False, log=lambda *a, **k: None)
    trunk = trainer.model.image_encoder.trunk.patch_embed.proj.weight
    attention = next(trainer.model.memory_attention.parameters())
    trunk_before, attention_before = trunk.clone(), attention.clone()
    assert trainer._plan(0)["clip"]
    trainer.train()
    assert not torch.equal(attention, attention_before)  # the memory path trains either way
    assert torch.equal(trunk, trunk_before) == (encoder_grad == 0)
