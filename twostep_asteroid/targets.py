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


MASK_TYPES = ("irm", "softmax", "binary")


def check_mask_types(masks):
    """``masks`` (a name or several) as a tuple, or ``ValueError`` naming the known masks; called
    before any analysis, so that a typo fails before the work."""
    kinds = (masks,) if isinstance(masks, str) else tuple(masks)
    for kind in kinds:
        if kind not in MASK_TYPES:
            raise ValueError(f"mask must be one of {MASK_TYPES}, got {kind!r}")
    return kinds


def oracle_masks(representations, mask="softmax"):
    """Oracle masks over sources from non-negative per-source representations.

    Args:
        representations (torch.Tensor): ``[batch, n_src, ...]``, e.g. encoded sources
            ``[batch, n_src, n_filters, frames]`` or STFT magnitudes ``[batch, n_src, freqs, frames]``.
        mask (str): ``"irm"`` (ratio mask ``r_i / sum_j r_j``), ``"softmax"`` (softmax over sources,
            the paper's ideal latent mask, see :func:`ideal_latent_masks`) or ``"binary"`` (one-hot
            argmax over sources, an ideal binary mask; ties, such as latent bins where every
            source is silent and encodes to ReLU(bias), go to the first source).

    Returns:
        torch.Tensor: Masks of the same shape, summing to one over sources.

    References
        Tzinis et al., "Two-Step Sound Source Separation: Training on Learned Latent Targets",
        ICASSP 2020, arXiv:1910.09804 (eq. 3 for the softmax mask).
    """
    (mask,) = check_mask_types(mask)  # one mask
    if mask == "irm":
        return representations / representations.sum(dim=1, keepdim=True).clamp_min(1e-8)
    if mask == "softmax":
        return ideal_latent_masks(representations)
    winners = representations.argmax(dim=1)  # "binary"
    return torch.nn.functional.one_hot(winners, representations.shape[1]).movedim(-1, 1).to(representations.dtype)


def front_end_oracle_separation(front_end, mixture, sources, mask="softmax"):
    """Oracle separation through a learned front end's latent space, with a choice of mask.

    With ``mask="softmax"`` this is the front end's own oracle (its ideal latent targets decoded,
    ``front_end(mixture, sources)["estimates"]``), the paper's upper bound.

    Args:
        front_end (TwoStepFrontEnd): A (trained) step-1 front end.
        mixture (torch.Tensor): ``[batch, time]``.
        sources (torch.Tensor): ``[batch, n_src, time]``.
        mask (str or tuple of str): One of :data:`MASK_TYPES` (see :func:`oracle_masks`), or several:
            the mixture and sources are then encoded once for all of them.

    Returns:
        torch.Tensor: ``[batch, n_src, time]`` estimates; for a tuple, a dict mask -> estimates.
    """
    kinds = check_mask_types(mask)
    encoded_mixture = front_end.encode(mixture)
    encoded_sources = front_end.encode(front_end.training_sources(mixture, sources))

    def separate(kind):
        masks = oracle_masks(encoded_sources, kind)
        return front_end.decode(ideal_latent_targets(masks, encoded_mixture), mixture)[:, : sources.shape[1]]

    return separate(mask) if isinstance(mask, str) else {kind: separate(kind) for kind in kinds}


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
        mask (str or tuple of str): ``"irm"`` (ideal ratio mask ``|S_i| / sum_j |S_j|``),
            ``"softmax"`` (softmax over sources of the magnitudes, the STFT analogue of the latent
            masks) or ``"binary"`` (ideal binary mask, argmax over sources), see
            :func:`oracle_masks`; or several of them, sharing one analysis.

    Returns:
        torch.Tensor: ``[batch, n_src, time]`` estimates; for a tuple, a dict mask -> estimates.
    """
    kinds = check_mask_types(mask)
    hop = hop or n_fft // 4
    mix_spec, window = _stft(mixture, n_fft, hop)
    src_mag = _stft(sources, n_fft, hop)[0].abs()

    def separate(kind):
        est_spec = oracle_masks(src_mag, kind) * mix_spec.unsqueeze(1)
        flat = est_spec.reshape(-1, *est_spec.shape[-2:])
        est = torch.istft(flat, n_fft, hop, window=window, center=True, length=mixture.shape[-1])
        return est.reshape(*sources.shape)

    return separate(mask) if isinstance(mask, str) else {kind: separate(kind) for kind in kinds}