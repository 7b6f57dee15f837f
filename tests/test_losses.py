import pytest
import torch

from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr
from twostep_asteroid.losses import TwoStepLoss, front_end_loss, latent_pit_loss


def test_paper_loss_is_latent_pit_sisdr_without_zero_mean():
    est, tgt = torch.rand(3, 2, 8, 20), torch.rand(3, 2, 8, 20)
    torch.testing.assert_close(TwoStepLoss()(est, tgt)["loss"], latent_pit_loss(est, tgt))
    # zero_mean off: adding a constant pedestal to the estimates changes the loss
    assert not torch.isclose(latent_pit_loss(est + 1.0, tgt), latent_pit_loss(est, tgt))


def test_latent_loss_is_permutation_invariant():
    est, tgt = torch.rand(2, 3, 8, 20), torch.rand(2, 3, 8, 20)
    torch.testing.assert_close(latent_pit_loss(est[:, [2, 0, 1]], tgt), latent_pit_loss(est, tgt))
    assert latent_pit_loss(tgt[:, [1, 0, 2]], tgt) < -50  # perfect up to order


def test_waveform_term_matches_asteroids_pit_wrapper():
    est, tgt = torch.rand(3, 2, 8, 20), torch.rand(3, 2, 8, 20)
    wavs, ref = torch.randn(3, 2, 100), torch.randn(3, 2, 100)
    out = TwoStepLoss(latent_weight=0.0, waveform_weight=1.0)(est, tgt, wavs, ref)
    torch.testing.assert_close(out["loss"], PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")(wavs, ref))
    torch.testing.assert_close(out["waveform_sisdr"], -out["loss"])


def test_combined_loss_shares_one_permutation():
    tgt = torch.rand(2, 2, 8, 20)
    ref = torch.randn(2, 2, 100)
    out = TwoStepLoss(1.0, 1.0)(tgt[:, [1, 0]], tgt, ref[:, [1, 0]], ref)
    assert out["latent_sisdr"] > 50 and out["waveform_sisdr"] > 50


def test_bad_weights_and_missing_waveforms_are_refused():
    with pytest.raises(ValueError):
        TwoStepLoss(0.0, 0.0)
    with pytest.raises(ValueError, match="est_wavs"):
        TwoStepLoss(1.0, 1.0)(torch.rand(1, 2, 4, 5), torch.rand(1, 2, 4, 5))


def test_front_end_loss_has_no_pit():
    src = torch.randn(2, 2, 100)
    assert front_end_loss(src, src) < -50
    assert front_end_loss(src[:, [1, 0]], src) > 0
