"""TorchScript and ONNX exports of the inference graph match eager PyTorch (atol 1e-4)."""
import numpy as np
import pytest
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.export import export_onnx, export_torchscript, onnx_separate
from twostep_asteroid.parity import EXPORT_ATOL

from tests.synthetic import SMALL

# (batch, time): lengths on and off the frame grid, shorter and longer than the export example.
SHAPES = [(1, 8000), (2, 3001), (3, 12345), (1, 64)]

assert EXPORT_ATOL == 1e-4


def _close(out, ref):
    np.testing.assert_allclose(out, ref, atol=EXPORT_ATOL * max(1.0, float(np.abs(ref).max())), rtol=0)


# The second model also takes the optional masker paths (skip connections, per-basis feature norm).
@pytest.fixture(scope="module", params=[(1, {}), (2, {"skip_chan": 16, "feature_norm": True})],
                ids=["1src", "2src-skip-featnorm"])
def model(request):
    n_src, options = request.param
    torch.manual_seed(n_src)
    model = TwoStepTDCN(n_src=n_src, **SMALL, **options).eval()
    # Sharper masks than at initialisation, so that numerical differences are not hidden by ~1/n_src masks.
    with torch.no_grad():
        for p in model.masker.head.parameters():
            p.mul_(10)
    return model


def reference(model, wav):
    with torch.no_grad():
        return model(wav).numpy()


def test_torchscript_parity(model, tmp_path):
    path = export_torchscript(model, tmp_path / "model.pt")
    scripted = torch.jit.load(str(path))
    for batch, time in SHAPES:
        wav = torch.randn(batch, time)
        with torch.no_grad():
            out = scripted(wav).numpy()
        assert out.shape == (batch, model.n_src, time)
        _close(out, reference(model, wav))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left


def test_onnx_parity_with_dynamic_batch_and_time(model, tmp_path):
    import onnx  # the `export` extra, installed by `make env`
    import onnxruntime as ort
    path = export_onnx(model, tmp_path / "model.onnx", opset=17)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == ["mixture"] and [o.name for o in proto.graph.output] == ["sources"]
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, time in SHAPES:
        wav = torch.randn(batch, time)
        out = onnx_separate(session, wav.numpy())
        assert out.shape == (batch, model.n_src, time)
        _close(out, reference(model, wav))
    wav = torch.randn(5000)
    _close(onnx_separate(path, wav.numpy()), reference(model, wav[None])[0])


def test_export_refuses_a_graph_that_does_not_match(tmp_path, monkeypatch):
    """The built-in check can fail: a model whose traced graph is wrong for other lengths."""

    class LengthBaked(torch.nn.Module):
        sample_rate = 8000.0

        def forward(self, wav):
            n = int(wav.shape[-1])  # a Python int: frozen into the trace
            return torch.stack([wav[..., :n] * 0 + float(n), wav], dim=1)

    with pytest.raises(RuntimeError, match="does not match"):
        export_torchscript(LengthBaked(), tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    with pytest.raises(ValueError, match="opset"):
        export_onnx(LengthBaked(), tmp_path / "bad.onnx", opset=13)


# --- streaming step of a causal model ---------------------------------------------------------
@pytest.fixture(scope="module")
def causal_model():
    torch.manual_seed(3)
    model = TwoStepTDCN(n_src=2, **dict(SMALL, kernel_size=21, stride=10), norm_type="cLN", causal=True,
                        skip_chan=8).eval()
    with torch.no_grad():
        for p in model.masker.head.parameters():
            p.mul_(10)
    return model


def _run_stream(step_fn, model, wav, frames_per_call):
    """Drive an exported step (numpy in, numpy out) over ``wav`` as StreamingTwoStep would."""
    from twostep_asteroid.streaming import StreamingStep

    eager = StreamingStep(model)
    ctx, hop = eager.context, eager.stride
    enc, masker, dec = (t.numpy() for t in eager.initial_state(1, first_samples=torch.from_numpy(wav[None, :ctx])))
    outs, pos, i = [], ctx, 0
    while pos + hop <= len(wav):
        k = min(frames_per_call[i % len(frames_per_call)], (len(wav) - pos) // hop)
        out, enc, masker, dec = step_fn(wav[None, pos : pos + k * hop], enc, masker, dec)
        outs.append(np.asarray(out)[0])
        pos, i = pos + k * hop, i + 1
    tail = np.zeros((model.n_src, len(wav) - sum(o.shape[1] for o in outs)), dtype=np.float32)
    tail[:, : min(ctx, tail.shape[1])] = np.asarray(dec)[0, :, : tail.shape[1]]
    return np.concatenate(outs + [tail], axis=1)


def test_streaming_torchscript_parity_over_a_stream(causal_model, tmp_path):
    from twostep_asteroid.export import export_streaming_torchscript

    scripted = torch.jit.load(str(export_streaming_torchscript(causal_model, tmp_path / "step.pt")))
    wav = np.random.default_rng(0).standard_normal(4003).astype(np.float32)

    def step(*arrays):
        with torch.no_grad():
            return [t.numpy() for t in scripted(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])]

    _close(_run_stream(step, causal_model, wav, [1, 3, 16, 2]), reference(causal_model, torch.from_numpy(wav[None]))[0])
    assert [p.name for p in tmp_path.iterdir()] == ["step.pt"]


def test_streaming_onnx_parity_over_a_stream_with_state_io(causal_model, tmp_path):
    import onnx
    import onnxruntime as ort

    from twostep_asteroid.export import export_streaming_onnx
    from twostep_asteroid.streaming import STREAM_INPUTS, STREAM_OUTPUTS

    path = export_streaming_onnx(causal_model, tmp_path / "step.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == STREAM_INPUTS
    assert [o.name for o in proto.graph.output] == STREAM_OUTPUTS
    meta = {p.key: p.value for p in proto.metadata_props}
    assert (meta["kernel_size"], meta["stride"], meta["latency_samples"]) == ("21", "10", "21")
    assert meta["masker_state_shape"] == f"[batch, {causal_model.masker.state_frames}, 24]"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wav = np.random.default_rng(1).standard_normal(4003).astype(np.float32)
    out = _run_stream(lambda *a: session.run(None, dict(zip(STREAM_INPUTS, a))), causal_model, wav, [1, 5, 16])
    _close(out, reference(causal_model, torch.from_numpy(wav[None]))[0])


def test_streaming_export_refuses_a_non_causal_model(model, tmp_path):
    from twostep_asteroid.export import export_streaming_onnx

    with pytest.raises(ValueError, match="not a causal"):
        export_streaming_onnx(model, tmp_path / "step.onnx")
    assert not list(tmp_path.iterdir())
