"""The one SI-SDR: Asteroid's, per source, and what is built on it."""
import torch

from asteroid.losses import multisrc_neg_sisdr, pairwise_neg_sisdr

from twostep_asteroid.metrics import mixture_sisdr, si_sdr, si_sdr_improvement, sisdr_per_example


def _by_hand(estimates, sources, eps=1e-8):
    """Zero-mean SI-SDR written out (what evaluate.py computed before it used Asteroid's)."""
    estimates = estimates - estimates.mean(-1, keepdim=True)
    sources = sources - sources.mean(-1, keepdim=True)
    scale = (estimates * sources).sum(-1, keepdim=True) / (sources.square().sum(-1, keepdim=True) + eps)
    target = scale * sources
    noise = estimates - target
    return 10 * torch.log10(target.square().sum(-1) / (noise.square().sum(-1) + eps) + eps)


def test_si_sdr_is_asteroids_per_source_in_any_leading_shape():
    gen = torch.Generator().manual_seed(0)
    sources = torch.randn(3, 2, 500, generator=gen)
    estimates = sources + 0.3 * torch.randn(3, 2, 500, generator=gen)
    values = si_sdr(estimates, sources)
    assert values.shape == (3, 2)
    torch.testing.assert_close(values, _by_hand(estimates, sources), rtol=0, atol=1e-4)
    diagonal = -torch.diagonal(pairwise_neg_sisdr(estimates, sources), dim1=1, dim2=2)
    torch.testing.assert_close(values, diagonal, rtol=0, atol=1e-5)
    torch.testing.assert_close(sisdr_per_example(estimates, sources), -multisrc_neg_sisdr(estimates, sources),
                               rtol=0, atol=1e-5)
    assert si_sdr(estimates[0], sources[0]).shape == (2,)  # no batch axis


def test_improvement_counts_from_the_mixture():
    gen = torch.Generator().manual_seed(1)
    sources = torch.randn(2, 2, 400, generator=gen)
    mixture = sources.sum(1)
    estimates = sources + 0.1 * torch.randn(2, 2, 400, generator=gen)
    improvement = si_sdr_improvement(estimates, sources, mixture)
    torch.testing.assert_close(improvement, sisdr_per_example(estimates, sources) - mixture_sisdr(mixture, sources),
                               rtol=0, atol=1e-4)
    torch.testing.assert_close(si_sdr_improvement(mixture.unsqueeze(1).expand_as(sources), sources, mixture),
                               torch.zeros(2), rtol=0, atol=1e-6)
