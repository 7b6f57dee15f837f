"""TorchScript and ONNX exports of the inference graph match eager PyTorch (atol 1e-4)."""
import numpy as np
import pytest
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.export import EXPORT_ATOL, export_onnx, export_torchscript, onnx_separate

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
