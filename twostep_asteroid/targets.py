"""Ideal latent masks and targets (step 1 of the two-step method) and oracle separations.

Shapes follow Asteroid: waveforms ``[batch, n_src, time]``, latents
``[batch, n_src, n_filters, frames]``, encoded mixture ``[batch, n_filters, frames]``.
"""
import torch


def with_residual_source(sources, mixture):
    """Turn a single target into the pair (source, mixture - source).

    Filterbank learning does not converge with one source (Asteroid issue #227): the softmax over a
    single source is constant. The residual gives the softmax something to split.

    Args:
        sources (torch.Tensor): ``[batch, 1, time]``.
        mixture (torch.Tensor): ``[batch, time]`` or ``[batch, 1, time]``.

    Returns:
        torch.Tensor: ``[batch, 2, time]``.
    """
    if sources.shape[1] != 1:
        raise ValueError(f"with_residual_source expects one source, got {sources.shape[1]}")
    mixture = mixture.reshape(sources.shape[0], 1, -1)
    return torch.cat([sources, mixture - sources], dim=1)


def ideal_latent_masks(encoded_sources):
    """Softmax over sources of the encoded clean sources (paper, eq. 3).

    Args:
        encoded_sources (torch.Tensor): ``[batch, n_src, n_filters, frames]``.

    Returns:
        torch.Tensor: Masks of the same shape, summing to one over sources.
    """
    return torch.softmax(encoded_sources, dim=1)


def ideal_latent_targets(masks, encoded_mixture):
    """Masked encoded mixture: the latent targets of step 2.

    Args:
        masks (torch.Tensor): ``[batch, n_src, n_filters, frames]``.
        encoded_mixture (torch.Tensor): ``[batch, n_filters, frames]``.

    Returns:
        torch.Tensor: ``[batch, n_src, n_filters, frames]``.
    """
    return masks * encoded_mixture.unsqueeze(1)


def _stft(wav, n_fft, hop):
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    flat = wav.reshape(-1, wav.shape[-1])
    spec = torch.stft(flat, n_fft, hop, window=window, return_complex=True, center=True)
    return spec.reshape(*wav.shape[:-1], *spec.shape[-2:]), window


def stft_oracle_separation(mixture, sources, n_fft=256, hop=None, mask="irm"):
    """Oracle separation with STFT masks, the baseline of the paper's first claim.

    Args:
        mixture (torch.Tensor): ``[batch, time]``.
        sources (torch.Tensor): ``[batch, n_src, time]``.
        n_fft (int): Window length in samples (Hann window).
        hop (int, optional): Hop; defaults to ``n_fft // 4``.
        mask (str): ``"irm"`` (ideal ratio mask ``|S_i| / sum_j |S_j|``) or ``"softmax"``
            (softmax over sources of the magnitudes, the STFT analogue of the latent masks).

    Returns:
        torch.Tensor: ``[batch, n_src, time]`` estimates.
    """
    hop = hop or n_fft // 4
    mix_spec, window = _stft(mixture, n_fft, hop)
    src_spec, _ = _stft(sources, n_fft, hop)
    mags = src_spec.abs()
    if mask == "irm":
        masks = mags / mags.sum(dim=1, keepdim=True).clamp_min(1e-8)
    elif mask == "softmax":
        masks = torch.softmax(mags, dim=1)
    else:
        raise ValueError(f"mask must be 'irm' or 'softmax', got {mask!r}")
    est_spec = masks * mix_spec.unsqueeze(1)
    flat = est_spec.reshape(-1, *est_spec.shape[-2:])
    est = torch.istft(flat, n_fft, hop, window=window, center=True, length=mixture.shape[-1])
    return est.reshape(*sources.shape)
