import asteroid_filterbanks
import pytest
import torch
import torch.nn.functional as F

import twostep_asteroid  # noqa: F401  (registers TwoStepFB)
from twostep_asteroid.filterbanks import TwoStepFB


def test_registered_with_asteroid_filterbanks():
    assert asteroid_filterbanks.get("TwoStepFB") is TwoStepFB
    enc, dec = asteroid_filterbanks.make_enc_dec("TwoStepFB", n_filters=32, kernel_size=16, stride=8)
    assert isinstance(enc.filterbank, TwoStepFB) and isinstance(dec.filterbank, TwoStepFB)
    wav = torch.randn(3, 1, 800)
    latents = enc(wav)
    assert latents.shape == (3, 32, (800 - 16) // 8 + 1)
    assert (latents >= 0).all(), "the encoder ends with a ReLU"
    assert dec(latents).shape[-1] == 800


def test_default_stride_is_half_kernel():
    assert TwoStepFB(16, 21).stride == 10


def test_grouped_decoder_is_one_transposed_conv_per_source():
    fb = TwoStepFB(8, 6, stride=3, n_groups=3, relu=False)
    dec = asteroid_filterbanks.Decoder(fb)
    latents = torch.randn(2, 3, 8, 20)
    out = dec(latents)
    assert out.shape == (2, 3, 19 * 3 + 6)
    expected = torch.stack(
        [F.conv_transpose1d(latents[:, c], fb._filters[c].unsqueeze(1), stride=3)[:, 0] for c in range(3)], dim=1
    )
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_grouped_filterbank_is_synthesis_only():
    enc = asteroid_filterbanks.Encoder(TwoStepFB(8, 6, n_groups=2))
    with pytest.raises(RuntimeError, match="synthesis only"):
        enc(torch.randn(1, 1, 100))
    dec = asteroid_filterbanks.Decoder(TwoStepFB(8, 6, n_groups=2))
    with pytest.raises(ValueError, match="expects latents"):
        dec(torch.randn(1, 3, 8, 10))


def test_config_round_trip():
    fb = TwoStepFB(8, 6, stride=2, sample_rate=16000, n_groups=2, relu=False)
    conf = fb.get_config()
    assert conf["fb_name"] == "TwoStepFB"
    conf.pop("fb_name")
    assert TwoStepFB(**conf).get_config() == fb.get_config()
