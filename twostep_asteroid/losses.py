"""Losses of the two-step method.

Step 1 needs no PIT: the ideal latent targets fix the order of the sources. Step 2 is
permutation-invariant: the paper's loss is SI-SDR between the estimated and the target latents,
each flattened over bases x frames, with zero-mean off (Asteroid's
``PairwiseNegSDR("sisdr", zero_mean=False)`` under ``PITLossWrapper``). A second term through the
frozen decoder (waveform SI-SDR) can be added: see :class:`TwoStepLoss` and the README for why.
"""
import torch
from torch import nn

from asteroid.losses import PITLossWrapper, PairwiseNegSDR, multisrc_neg_sisdr

pairwise_neg_latent_sisdr = PairwiseNegSDR("sisdr", zero_mean=False)
pairwise_neg_waveform_sisdr = PairwiseNegSDR("sisdr", zero_mean=True)


def flatten_latents(latents):
    """``[batch, n_src, N, frames] -> [batch, n_src, N * frames]``."""
    return latents.reshape(*latents.shape[:2], -1)


def front_end_loss(estimates, sources):
    """Step-1 loss: negative SI-SDR of the decoded ideal targets, source by source (no PIT).

    Args:
        estimates (torch.Tensor): ``[batch, n_src, time]`` decoded ideal latent targets.
        sources (torch.Tensor): ``[batch, n_src, time]`` in the same order.

    Returns:
        torch.Tensor: Scalar loss (mean over batch and sources).
    """
    return multisrc_neg_sisdr(estimates, sources).mean()


def latent_pit_loss(est_latents, target_latents):
    """The paper's step-2 loss: PIT negative SI-SDR over flattened latents, zero_mean off."""
    loss_func = PITLossWrapper(pairwise_neg_latent_sisdr, pit_from="pw_mtx")
    return loss_func(flatten_latents(est_latents), flatten_latents(target_latents))


def pit_sisdr_loss():
    """Waveform PIT negative SI-SDR (zero-mean), Asteroid's usual end-to-end loss: for models that
    output ``[batch, n_src, time]`` directly (the Asteroid baselines)."""
    return PITLossWrapper(pairwise_neg_waveform_sisdr, pit_from="pw_mtx")


class TwoStepLoss(nn.Module):
    """Step-2 loss: weighted latent and waveform PIT SI-SDR, sharing one best permutation.

    ``latent_weight=1, waveform_weight=0`` is the paper's loss (:func:`latent_pit_loss`).
    ``waveform_weight > 0`` adds negative SI-SDR of the decoded estimates against the sources,
    back-propagated through the frozen decoder. The permutation is chosen once, on the weighted
    sum of both pairwise matrices, so the two terms agree on which estimate is which source.

    Args:
        latent_weight (float): Weight of the latent term.
        waveform_weight (float): Weight of the waveform term.

    Forward args:
        est_latents, target_latents (torch.Tensor): ``[batch, n_src, N, frames]``.
        est_wavs, target_wavs (torch.Tensor, optional): ``[batch, n_src, time]``, needed when
            ``waveform_weight > 0``.

    Returns:
        dict: ``loss`` (scalar to minimise), ``latent_sisdr`` and ``waveform_sisdr`` (dB, mean
        over the batch at the chosen permutation; ``nan`` when not computed).
    """

    def __init__(self, latent_weight=1.0, waveform_weight=0.0):
        super().__init__()
        if latent_weight < 0 or waveform_weight < 0 or latent_weight + waveform_weight <= 0:
            raise ValueError("The loss weights must be >= 0 and not both zero, got "
                             f"latent_weight={latent_weight}, waveform_weight={waveform_weight}")
        self.latent_weight = latent_weight
        self.waveform_weight = waveform_weight

    def forward(self, est_latents, target_latents, est_wavs=None, target_wavs=None):
        pw_latent = pairwise_neg_latent_sisdr(flatten_latents(est_latents), flatten_latents(target_latents))
        total = self.latent_weight * pw_latent
        pw_wave = None
        if self.waveform_weight > 0:
            if est_wavs is None or target_wavs is None:
                raise ValueError("waveform_weight > 0 needs est_wavs and target_wavs")
            pw_wave = pairwise_neg_waveform_sisdr(est_wavs, target_wavs)
        n_latent = pw_latent.shape[-1]
        if pw_wave is not None and pw_wave.shape[-1] != n_latent:
            # One source plus the front end's residual latent: the order is fixed, no PIT.
            perms = torch.arange(n_latent, device=total.device).expand(total.shape[0], n_latent)
        else:
            if pw_wave is not None:
                total = total + self.waveform_weight * pw_wave
            _, perms = PITLossWrapper.find_best_perm(total)
        latent_terms = _at_permutation(pw_latent, perms)
        loss = self.latent_weight * latent_terms.mean(dim=1)
        waveform_sisdr = torch.tensor(float("nan"))
        if pw_wave is not None:
            wave_terms = _at_permutation(pw_wave, perms[:, : pw_wave.shape[-1]])
            loss = loss + self.waveform_weight * wave_terms.mean(dim=1)
            waveform_sisdr = -wave_terms.detach().mean()
        return {
            "loss": loss.mean(),
            "latent_sisdr": -latent_terms.detach().mean(),
            "waveform_sisdr": waveform_sisdr,
        }


def _at_permutation(pair_wise, perms):
    """``pair_wise[b, perms[b, j], j]`` for each target j: ``[batch, n_targets]``.

    ``pair_wise[b, i, j]`` is the loss of estimate i against target j (Asteroid's convention) and
    ``perms[b, j]`` the estimate assigned to target j (as returned by ``find_best_perm``).
    """
    return pair_wise.gather(1, perms.unsqueeze(1)).squeeze(1)
