"""The torch backend's compiled path (CUDA): CUDA-graph outputs that outlive a call are copies, and a warm-up at
configure time compiles every memory-attention shape a stream meets (1 or several objects, no pointers or some).

On the CPU: the warm-up's shape list and run (distinct tensors), the copy rule with a static buffer standing in for a
CUDA graph's replay output, and — compiled with `compile_backend="aot_eager"` — a stream with late prompts, an object
removed and one added after the memory bank is full that compiles nothing after the warm-up. With a CUDA GPU (marker `cuda`): the real thing, each part called 3 times with different inputs and
every kept output compared afterwards, a late prompt on an older history frame, and no recompilation mid-stream.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sam2_ros.backends.torch_backend import TorchBackend, warmup_shapes
from sam2_ros.model import build_sam2, get_config
from sam2_ros.sim import SyntheticScene
from sam2_ros.tracking import StreamingTracker, TrackerOptions

MICRO = Path(__file__).resolve().parents[1] / "models" / "sam2_micro.pt"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA test skipped: no CUDA GPU visible to torch")


def _micro(size: int = 64, device: str = "cpu"):
    torch.manual_seed(0)
    return build_sam2("sam2_micro", checkpoint=MICRO, image_size=size, device=device)


def test_warmup_shapes_cover_the_sizes_torch_compile_specialises():
    tiny = get_config("sam2.1_hiera_t")  # a pointer is C/D = 4 tokens
    shapes = warmup_shapes(tiny, max_objects=16)
    assert {b for b, _, _ in shapes} == {1, 2} and {p for _, _, p in shapes} == {0, 4}
    assert {f for _, f, _ in shapes} == {1, tiny.num_maskmem}
    assert len(shapes) == len(set(shapes)) == 8
    assert {b for b, _, _ in warmup_shapes(tiny, max_objects=1)} == {1}  # never more objects than allowed
    micro = get_config("sam2_micro")  # C/D = 2 tokens per pointer
    assert {p for _, _, p in warmup_shapes(micro, 4)} == {0, 2}


def test_warm_up_runs_every_shape():
    backend = TorchBackend(_micro())
    calls = []
    original = backend._attend_memory

    def recording(*args):
        calls.append((args[2].shape[0], args[2].shape[1] // backend.config.feat_size ** 2, args[4].shape[1]))
        return original(*args)

    backend._attend_memory = recording
    shapes = backend.warm_up(max_objects=3)
    assert calls == shapes


def test_warm_up_inputs_are_distinct_tensors():
    """dynamo guards on aliasing: a warm-up passing one tensor as memory and memory_pos compiles graphs that a
    stream (always distinct tensors) never uses."""
    backend = TorchBackend(_micro())
    seen = []
    original = backend._attend_memory

    def recording(*args):
        seen.append({t.data_ptr() for t in args[2:] if t.numel()} | {id(t) for t in args[2:]})
        assert len({id(t) for t in args}) == len(args)
        return original(*args)

    backend._attend_memory = recording
    backend.warm_up(max_objects=2)
    assert seen and all(len(ids) >= 4 for ids in seen)


def _stream(backend, size: int):
    """Late prompts, an object removed and one added after the memory bank is full; returns every result."""
    scene = SyntheticScene(size, size + size // 4, num_objects=3, seed=0)
    frames = [scene.frame(i) for i in range(16)]
    tracker = StreamingTracker(backend, TrackerOptions(history=6))
    out = [tracker.track(f.rgb, stamp=f.index) for f in frames[:2]]
    out.append(tracker.add_prompt(1, points=np.array([frames[1].inner_point(0)]), labels=np.array([1])))
    out += [tracker.track(f.rgb, stamp=f.index) for f in frames[2:4]]
    out.append(tracker.add_prompt(2, box=np.array(frames[2].box(1), float), stamp=2))  # late: an older frame
    out += [tracker.track(f.rgb, stamp=f.index) for f in frames[4:11]]  # the bank fills (7 slots)
    tracker.remove_object(1)
    out.append(tracker.track(frames[11].rgb, stamp=11))
    out.append(tracker.add_prompt(3, box=np.array(frames[11].box(2), float)))
    out.append(tracker.add_prompt(2, points=np.array([frames[10].inner_point(1)]), labels=np.array([1]), stamp=10))
    out += [tracker.track(f.rgb, stamp=f.index) for f in frames[12:]]
    return out


def test_compiled_stream_compiles_nothing_after_warm_up():
    """aot_eager on the CPU: the warm-up makes a few graphs (encoder, memory attention with and without pointer
    tokens) and the stream none; compiled results equal eager ones."""
    import torch._dynamo

    torch._dynamo.reset()
    model = _micro(64)
    fast = TorchBackend(model, compile=True, compile_backend="aot_eager")
    before = _graph_count()
    fast.warm_up(max_objects=2)
    warm = _graph_count() - before
    assert 1 <= warm <= 3, f"warm-up made {warm} graphs"
    got = _stream(fast, 64)
    assert _graph_count() - before == warm, "torch.compile compiled mid-stream"
    want = _stream(TorchBackend(model), 64)
    assert [r.object_ids for r in got] == [r.object_ids for r in want] and any(len(r) == 2 for r in want)
    for a, b in zip(got, want):
        if len(b):
            assert float(np.abs(a.mask_logits - b.mask_logits).max()) <= 1e-3


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graph_outputs_are_copied_with_a_static_buffer_stand_in(precision):
    """A CUDA graph replays into the same output buffers: a stand-in encoder that writes into one static buffer
    shows that encode_image's results are the backend's own copies (kept frames stay intact)."""
    backend = TorchBackend(_micro(), precision=precision, compile="reduce-overhead")  # compiles lazily: never here
    static = [torch.zeros(2, 3)]

    def replay(image):  # what a CUDA-graph replay returns: the same float32 storage, overwritten every time
        static[0].fill_(float(image.mean()))
        return (static[0], static[0])

    backend._encode_image = replay
    first = backend.encode_image(torch.ones(1, 3, 64, 64))
    second = backend.encode_image(torch.full((1, 3, 64, 64), 2.0))
    assert all(t.data_ptr() != static[0].data_ptr() for t in first + second)
    assert float(first[0][0, 0]) == 1.0 and float(second[0][0, 0]) == 2.0
    eager = TorchBackend(_micro())  # without CUDA graphs nothing is copied
    eager._encode_image = replay
    assert eager.encode_image(torch.ones(1, 3, 64, 64))[0] is static[0]


def _graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("fp16", 1e-2)])
def test_cuda_graphs_each_call_kept_and_correct(precision, tol):
    """Each compiled part 3 times with different inputs, all outputs kept, compared with eager fp32 afterwards."""
    model = _micro(256, "cuda")
    ref = TorchBackend(model)
    fast = TorchBackend(model, precision=precision, compile="reduce-overhead")
    fast.warm_up(max_objects=2)
    gen = torch.Generator().manual_seed(0)
    images = [torch.randn(1, 3, 256, 256, generator=gen).cuda() for _ in range(3)]
    h, d = model.config.feat_size, model.config.mem_dim
    with torch.inference_mode():
        kept = [fast.encode_image(im) for im in images]
        refs = [ref.encode_image(im) for im in images]
        for k, r in zip(kept, refs):
            err = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(k, r))
            print(f"{precision} encode_image rel err {err:.1e}")
            assert err <= tol
        outs = []
        for i, (_, _, embed, pos) in enumerate(refs):
            memory = torch.randn(2, (i + 1) * h * h, d, generator=gen).cuda()
            ptrs = torch.randn(2, 2 * (i + 1), d, generator=gen).cuda()
            args = (embed.expand(2, -1, -1, -1), pos.expand(2, -1, -1, -1), memory, memory.clone(), ptrs,
                    ptrs.clone())
            outs.append((fast.attend_memory(*args), ref.attend_memory(*args)))
        for got, want in outs:
            assert float((got - want).abs().max() / want.abs().max()) <= tol


@pytest.mark.cuda
@needs_cuda
def test_compiled_tracker_takes_a_late_prompt_without_recompiling():
    """The compiled tracker equals the eager one through a late prompt on an older history frame, and nothing is
    compiled after the warm-up (2 objects, pointers appearing)."""
    model = _micro(256, "cuda")
    fast = TorchBackend(model, compile="reduce-overhead")
    fast.warm_up(max_objects=2)
    compiled = _graph_count()
    scene = SyntheticScene(240, 320, num_objects=2, seed=0)
    frames = [scene.frame(i) for i in range(8)]
    runs = []
    for backend in (fast, TorchBackend(model)):
        tracker = StreamingTracker(backend, TrackerOptions(history=8))
        out = [tracker.track(f.rgb, stamp=f.index) for f in frames[:3]]
        out.append(tracker.add_prompt(1, points=np.array([frames[2].inner_point(0)]), labels=np.array([1])))
        out += [tracker.track(f.rgb, stamp=f.index) for f in frames[3:6]]
        out.append(tracker.add_prompt(2, box=np.array(frames[3].box(1), float), stamp=3))  # an older frame
        out += [tracker.track(f.rgb, stamp=f.index) for f in frames[6:]]
        runs.append(out)
    assert _graph_count() == compiled, "torch.compile recompiled mid-stream"
    for got, want in zip(*runs):
        assert got.object_ids == want.object_ids
        if len(want):
            assert float(np.abs(got.mask_logits - want.mask_logits).max()) <= 1e-2
