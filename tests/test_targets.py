import pytest
import torch

from twostep_asteroid.models import TwoStepFrontEnd
from twostep_asteroid.targets import (
    ideal_latent_masks,
    ideal_latent_targets,
    stft_oracle_separation,
    with_residual_source,
)
from twostep_asteroid.metrics import mixture_sisdr, sisdr_per_example
from tests.synthetic import HarmonicMixtures


def test_masks_sum_to_one_and_targets_sum_to_the_mixture():
    encoded_sources = torch.randn(2, 3, 8, 10) * 5
    masks = ideal_latent_masks(encoded_sources)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 8, 10))
    encoded_mixture = torch.rand(2, 8, 10)
    targets = ideal_latent_targets(masks, encoded_mixture)
    torch.testing.assert_close(targets.sum(1), encoded_mixture)


def test_residual_source_for_single_source_training():
    mixture, source = torch.randn(2, 100), torch.randn(2, 1, 100)
    pair = with_residual_source(source, mixture)
    assert pair.shape == (2, 2, 100)
    torch.testing.assert_close(pair.sum(1), mixture)
    with pytest.raises(ValueError):
        with_residual_source(torch.randn(2, 2, 100), mixture)


@pytest.mark.parametrize("n_src", [1, 2, 3])
def test_untrained_front_end_oracle_is_finite(n_src):
    mixture, sources = HarmonicMixtures(n_items=2, n_src=max(n_src, 2), n_samples=2000)[0]
    sources = sources[:n_src].unsqueeze(0)
    mixture = sources.sum(1) if n_src > 1 else mixture.unsqueeze(0)
    out = TwoStepFrontEnd(n_src=n_src, n_filters=32, kernel_size=16)(mixture, sources)
    n_latent = max(n_src, 2)
    assert out["masks"].shape[:2] == (1, n_latent)
    assert out["estimates"].shape == (1, n_latent, 2000)
    assert torch.isfinite(sisdr_per_example(out["estimates"][:, :n_src], sources)).all()


@pytest.mark.parametrize("mask", ["irm", "softmax"])
def test_stft_oracle_separates_harmonic_mixtures(mask):
    data = HarmonicMixtures(n_items=4, n_samples=4000)
    mixture = torch.stack([data[i][0] for i in range(4)])
    sources = torch.stack([data[i][1] for i in range(4)])
    est = stft_oracle_separation(mixture, sources, n_fft=256, mask=mask)
    assert est.shape == sources.shape
    improvement = sisdr_per_example(est, sources) - mixture_sisdr(mixture, sources)
    assert improvement.mean() > 5.0


def test_stft_oracle_rejects_unknown_mask():
    with pytest.raises(ValueError):
        stft_oracle_separation(torch.randn(1, 1000), torch.randn(1, 2, 1000), mask="ibm2")


def test_several_masks_share_one_analysis_and_equal_single_calls():
    from twostep_asteroid import TwoStepFrontEnd
    from twostep_asteroid.targets import MASK_TYPES, front_end_oracle_separation, stft_oracle_separation

    torch.manual_seed(0)
    front_end = TwoStepFrontEnd(2, 32, 16, 8).eval()
    mixture, sources = torch.randn(1, 2000), torch.randn(1, 2, 2000)
    with torch.no_grad():
        learned = front_end_oracle_separation(front_end, mixture, sources, MASK_TYPES)
        stft = stft_oracle_separation(mixture, sources, 64, 32, MASK_TYPES)
        assert set(learned) == set(stft) == set(MASK_TYPES)
        for kind in MASK_TYPES:
            torch.testing.assert_close(learned[kind], front_end_oracle_separation(front_end, mixture, sources, kind))
            torch.testing.assert_close(stft[kind], stft_oracle_separation(mixture, sources, 64, 32, kind))
    with pytest.raises(ValueError, match="mask must be one of"):
        stft_oracle_separation(mixture, sources, 64, 32, ("irm", "ibm"))
