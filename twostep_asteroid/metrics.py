"""SI-SDR and SI-SDR improvement: the one implementation that training, evaluation, reports and
comparisons score with.

All of them are Asteroid's :func:`~asteroid.losses.singlesrc_neg_sisdr` (zero-mean SI-SDR, ``EPS =
1e-8``), negated and applied source by source, so that a figure here is the figure an Asteroid
recipe reports for the same signals. Sources are compared in the order given: permutation
(PIT) is the caller's business.

References
    Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019.
"""
from asteroid.losses import singlesrc_neg_sisdr


def si_sdr(estimates, sources):
    """SI-SDR of each estimate against the source at the same position.

    Args:
        estimates (torch.Tensor): ``[..., n_src, time]``.
        sources (torch.Tensor): Same shape.

    Returns:
        torch.Tensor: ``[..., n_src]``, in dB.
    """
    time = sources.shape[-1]
    values = -singlesrc_neg_sisdr(estimates.reshape(-1, time), sources.reshape(-1, time))
    return values.reshape(sources.shape[:-1])


def si_sdr_improvement(estimates, sources, mixture):
    """SI-SDRi: mean over sources of SI-SDR(estimate) - SI-SDR(mixture), sources in order.

    Args:
        estimates (torch.Tensor): ``[..., n_src, time]``.
        sources (torch.Tensor): Same shape.
        mixture (torch.Tensor): ``[..., time]``.

    Returns:
        torch.Tensor: ``[...]`` (``[batch]`` for batched inputs), in dB.
    """
    baseline = si_sdr(mixture.unsqueeze(-2).expand_as(sources), sources)
    return (si_sdr(estimates, sources) - baseline).mean(-1)


def sisdr_per_example(estimates, sources):
    """Mean SI-SDR over sources (same order), per example: ``[batch, n_src, time] -> [batch]`` in dB."""
    return si_sdr(estimates, sources).mean(-1)


def mixture_sisdr(mixture, sources):
    """SI-SDR of the unprocessed mixture ``[batch, time]`` against each source, averaged:
    ``[batch]`` in dB (the baseline an SI-SDRi is counted from)."""
    return sisdr_per_example(mixture.unsqueeze(-2).expand_as(sources), sources)
