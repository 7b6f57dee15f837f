"""The causal model is causal, and streaming it block by block gives its offline output."""
import numpy as np
import pytest
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.layers import FusedChanLN
from twostep_asteroid.masknn import TDCN
from twostep_asteroid.streaming import STREAM_ATOL, StreamingTwoStep

from tests.synthetic import SMALL

assert STREAM_ATOL == 1e-5


def causal_model(seed=0, **options):
    torch.manual_seed(seed)
    args = dict(SMALL, norm_type="cLN", causal=True)
    args.update(options)
    model = TwoStepTDCN(n_src=2, **args).eval()
    # Sharper masks than at initialisation, so that differences are not hidden by ~1/2 masks.
    with torch.no_grad():
        for p in model.masker.head.parameters():
            p.mul_(10)
    return model


def offline(model, wav):
    with torch.no_grad():
        return model(torch.as_tensor(wav)[None])[0].numpy()


def stream(separator, wav, sizes):
    """Push ``wav`` in blocks cycling through ``sizes``; return the concatenated output."""
    outs, pos, i = [], 0, 0
    while pos < len(wav):
        size = sizes[i % len(sizes)]
        out = separator.push(wav[pos : pos + size])
        assert out.shape[0] == separator.n_src and out.dtype == np.float32
        outs.append(out)
        pos += size
        i += 1
    outs.append(separator.flush())
    return np.concatenate(outs, axis=1)


def assert_stream_equals_offline(out, ref):
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=STREAM_ATOL * max(1.0, float(np.abs(ref).max())))


@pytest.fixture(scope="module")
def wav():
    return 0.5 * np.random.default_rng(0).standard_normal(10000 + 13).astype(np.float32)  # 1.25 s


# Frame = hop (8 samples here), odd sizes, 1 s, and a mix of all (with 1-sample blocks); the blocks of
# a few samples on the first 0.5 s only (one step per block).
@pytest.mark.parametrize("sizes,seconds,jit", [([8], 0.5, True), ([7], 0.5, True), ([333], None, True),
                                               ([8000], None, True), ([1, 8, 3, 100, 8000, 5], None, True),
                                               ([1, 8, 3, 100, 8000, 5], None, False)],
                         ids=["hop", "7", "333", "1s", "mixed", "mixed-eager"])
def test_stream_equals_offline_for_any_block_size(wav, sizes, seconds, jit):
    model = causal_model()
    wav = wav[: int(seconds * 8000) + 5] if seconds else wav
    assert_stream_equals_offline(stream(StreamingTwoStep(model, jit=jit), wav, sizes), offline(model, wav))


@pytest.mark.parametrize("options", [dict(kernel_size=21, stride=10, mask_head="toeplitz"),
                                     dict(skip_chan=8, mask_head="dense"),
                                     dict(kernel_size=16, stride=16)],
                         ids=["L21-hop10-toeplitz", "skip-dense", "no-overlap"])
def test_stream_equals_offline_for_other_geometries_and_paths(wav, options):
    model = causal_model(seed=1, **options)
    # max_frames=3 cuts the 1 s blocks into several steps.
    separator = StreamingTwoStep(model, max_frames=3)
    assert_stream_equals_offline(stream(separator, wav, [8000, 37]), offline(model, wav))


def test_emission_schedule_and_reset(wav):
    model = causal_model()
    sep = StreamingTwoStep(model)
    L, S = 16, 8
    assert sep.latency_samples == L and model.latency_samples == L
    assert sep.push(wav[: L - S]).shape == (2, 0)   # the first frame is not complete yet
    assert sep.push(wav[L - S : L]).shape == (2, S)  # first frame in: its first S samples are final
    assert sep.push(wav[L : L + 3 * S + 5]).shape == (2, 3 * S)
    assert sep.n_emitted == ((sep.n_pushed - (L - S)) // S) * S
    tail = sep.flush()
    assert sep.n_emitted == sep.n_pushed == L + 3 * S + 5 and tail.shape == (2, L - S + 5)
    with pytest.raises(RuntimeError, match="flush"):
        sep.push(wav[:10])
    sep.reset()  # a new stream gives the same output as a fresh separator
    assert_stream_equals_offline(stream(sep, wav, [333]), offline(model, wav))


def test_short_stream_is_all_zeros_like_no_frame():
    sep = StreamingTwoStep(causal_model())
    assert sep.push(np.ones(10, dtype=np.float32)).shape == (2, 0)
    out = sep.flush()
    assert out.shape == (2, 10) and not out.any()


def _perturbed_outputs(model, wav, start):
    changed = wav.copy()
    changed[start:] += np.random.default_rng(1).standard_normal(len(wav) - start).astype(np.float32)
    return offline(model, wav), offline(model, changed)


def test_causal_model_ignores_the_future_and_latency_is_one_frame(wav):
    """Changing input samples from p = t*S + L - 1 on (the last sample of frame t) leaves every output
    sample before t*S unchanged, and changes sample t*S: the look-ahead is exactly L - 1 samples."""
    model = causal_model()
    L, S, t = 16, 8, 500
    p = t * S + L - 1
    ref, out = _perturbed_outputs(model, wav, p)
    np.testing.assert_allclose(out[:, : t * S], ref[:, : t * S], rtol=0, atol=1e-6)
    assert np.abs(out[:, t * S] - ref[:, t * S]).max() > 1e-4
    assert np.abs(out[:, p:] - ref[:, p:]).max() > 1e-2


def test_non_causal_model_sees_the_future(wav):
    """The same check on the (default) non-causal model fails: it is what makes the check meaningful."""
    torch.manual_seed(0)
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    ref, out = _perturbed_outputs(model, wav, 500 * 8 + 15)
    assert np.abs(out[:, : 500 * 8] - ref[:, : 500 * 8]).max() > 1e-4


def test_causal_settings_are_checked():
    with pytest.raises(ValueError, match="causal norm_type"):
        TwoStepTDCN(n_src=2, **SMALL, causal=True)  # gLN
    with pytest.raises(ValueError, match="feature_norm"):
        TwoStepTDCN(n_src=2, **SMALL, norm_type="cLN", causal=True, feature_norm=True)
    with pytest.raises(ValueError, match="not a causal"):
        StreamingTwoStep(TwoStepTDCN(n_src=2, **SMALL))
    with pytest.raises(ValueError, match="cLN only"):
        StreamingTwoStep(TwoStepTDCN(n_src=2, **SMALL, norm_type="cgLN", causal=True))
    TwoStepTDCN(n_src=2, **SMALL, norm_type="cgLN", causal=True)(torch.randn(1, 800))  # causal, offline only


def test_channel_layer_norm_is_asteroids_cln():
    from asteroid.masknn import norms

    ours, theirs = FusedChanLN(12), norms.get("cLN")(12)
    with torch.no_grad():
        ours.gamma.normal_(), ours.beta.normal_()
    theirs.load_state_dict(ours.state_dict())
    x = 3 * torch.randn(2, 12, 50) + 1
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(x[..., :7]), ours(x)[..., :7])  # per frame


def test_masker_step_state_is_the_depthwise_history():
    masker = TDCN(16, 2, n_blocks=3, n_repeats=2, bn_chan=8, hid_chan=12, norm_type="cLN", causal=True)
    assert masker.state_frames == 2 * 2 * (1 + 2 + 4)
    assert masker.initial_state(3).shape == (3, masker.state_frames, 12)


def test_from_pretrained_and_hub_folder_give_a_model_that_streams(tmp_path, wav):
    from twostep_asteroid.serialization import save_pretrained
    from twostep_asteroid.inference import load_model

    model = causal_model()
    loaded = TwoStepTDCN.from_pretrained(model.serialize())
    assert loaded.causal and loaded.get_model_args()["causal"]
    folder = save_pretrained(model, tmp_path / "causal")
    for source in (loaded, load_model(str(folder), "cpu"), str(folder)):
        sep = StreamingTwoStep(source, jit=False)
        assert_stream_equals_offline(stream(sep, wav[:4000], [1000]), offline(model, wav[:4000]))
