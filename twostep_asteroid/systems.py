"""Lightning systems for the two steps, built on :class:`asteroid.engine.System`.

Both log ``val_loss`` with ``self.log`` so that checkpointing, early stopping and
``ReduceLROnPlateau`` see it. Nothing here picks devices or a strategy: the Trainer does.
"""
import logging

import torch

from asteroid.engine import System

from .losses import TwoStepLoss
from .metrics import mixture_sisdr, si_sdr_improvement

log = logging.getLogger(__name__)


class _GuardedSystem(System):
    """A System that skips steps with a non-finite loss and stops when they persist.

    Args:
        max_nonfinite_steps (int): Consecutive non-finite losses tolerated before raising.
    """

    def __init__(self, *args, max_nonfinite_steps=20, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_nonfinite_steps = max_nonfinite_steps
        self._nonfinite_streak = 0
        self.nonfinite_steps = 0

    def training_step(self, batch, batch_nb):
        loss = self.common_step(batch, batch_nb, train=True)
        if not torch.isfinite(loss):
            self._nonfinite_streak += 1
            self.nonfinite_steps += 1
            log.warning("Non-finite training loss at step %d (%d in a row): step skipped.",
                        self.global_step, self._nonfinite_streak)
            if self._nonfinite_streak >= self.max_nonfinite_steps:
                raise RuntimeError(
                    f"{self._nonfinite_streak} consecutive non-finite losses: training stopped so that "
                    "no NaN weights reach the checkpoints. Check the data (NaN/Inf or silent sources) "
                    "or lower the learning rate."
                )
            return None  # Lightning skips the optimizer step
        self._nonfinite_streak = 0
        self.log("loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_nb):
        """Log ``val_loss`` (the subclass's ``common_step`` with ``train=False``), averaged over the
        epoch and across processes, for checkpointing, early stopping and the LR schedule."""
        loss = self.common_step(batch, batch_nb, train=False)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=batch[0].shape[0],
                 sync_dist=True)

    def on_validation_epoch_end(self):
        # asteroid's System assumes a logger is configured; Lightning allows logger=False.
        if self.trainer.logger is not None:
            super().on_validation_epoch_end()


class FrontEndSystem(_GuardedSystem):
    """Step 1: learn the front end by decoding the ideal latent targets (no PIT).

    ``model`` is a :class:`~twostep_asteroid.models.TwoStepFrontEnd`; ``loss_func`` is
    :func:`~twostep_asteroid.losses.front_end_loss`. Batches are ``(mixture [B, T], sources [B, C, T])``.
    Validation logs ``val_loss`` and ``val_oracle_sisdri`` (dB), the oracle upper bound.
    """

    def common_step(self, batch, batch_nb, train=True):
        mixture, sources = batch
        out = self.model(mixture, sources)
        targets = self.model.training_sources(mixture, sources)
        loss = self.loss_func(out["estimates"], targets)
        if not train:
            improvement = si_sdr_improvement(out["estimates"][:, : sources.shape[1]], sources, mixture)
            self.log("val_oracle_sisdri", improvement.mean(), on_epoch=True, prog_bar=True,
                     batch_size=mixture.shape[0], sync_dist=True)
        return loss


class SeparatorSystem(_GuardedSystem):
    """Step 2: train the TDCN on the frozen front end's ideal latent targets.

    ``model`` is a :class:`~twostep_asteroid.models.TwoStepTDCN`; ``loss_func`` a
    :class:`~twostep_asteroid.losses.TwoStepLoss`. The latent targets are computed once per batch
    without grad. Validation works in the waveform domain: ``val_loss`` is the negative PIT
    SI-SDR of the decoded estimates; ``val_sisdri`` and ``val_latent_sisdr`` are logged beside it,
    because a high latent SI-SDR alone does not mean the waveforms separate.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.validation_loss = TwoStepLoss(latent_weight=0.0, waveform_weight=1.0)

    def _latent_targets(self, mixture, sources):
        with torch.no_grad():
            return self.model.front_end.ideal_latents(mixture, sources)[2]

    def common_step(self, batch, batch_nb, train=True):
        mixture, sources = batch
        est_latents, _ = self.model.estimate_latents(mixture)
        need_latents = not train or self.loss_func.latent_weight > 0
        targets = self._latent_targets(mixture, sources) if need_latents else est_latents.detach()
        need_wavs = not train or self.loss_func.waveform_weight > 0
        est_wavs = self.model.decode_latents(est_latents, mixture) if need_wavs else None
        if train:
            out = self.loss_func(est_latents, targets, est_wavs, sources)
            if need_wavs:
                self.log("train_sisdr", out["waveform_sisdr"], prog_bar=True)
            return out["loss"]
        out = self.validation_loss(est_latents, targets, est_wavs, sources)
        batch_size = mixture.shape[0]
        baseline = mixture_sisdr(mixture, sources).mean()
        self.log("val_sisdr", out["waveform_sisdr"], on_epoch=True, batch_size=batch_size, sync_dist=True)
        self.log("val_sisdri", out["waveform_sisdr"] - baseline, on_epoch=True, prog_bar=True,
                 batch_size=batch_size, sync_dist=True)
        self.log("val_latent_sisdr", out["latent_sisdr"], on_epoch=True, prog_bar=True,
                 batch_size=batch_size, sync_dist=True)
        return out["loss"]


class WaveformSystem(_GuardedSystem):
    """End-to-end training of a model that maps ``[B, T]`` mixtures to ``[B, n_src, T]``
    estimates (Asteroid's own models, for comparison), with ``loss_func`` a waveform PIT loss
    (:func:`~twostep_asteroid.losses.pit_sisdr_loss`).

    Validation logs what :class:`SeparatorSystem` logs for waveforms: ``val_loss`` (negative PIT
    SI-SDR), ``val_sisdr`` and ``val_sisdri`` (against the mixture), so the CSV logs compare.
    """

    def common_step(self, batch, batch_nb, train=True):
        mixture, sources = batch
        loss = self.loss_func(self.model(mixture), sources)
        if train:
            self.log("train_sisdr", -loss.detach(), prog_bar=True)
        else:
            batch_size = mixture.shape[0]
            self.log("val_sisdr", -loss, on_epoch=True, batch_size=batch_size, sync_dist=True)
            self.log("val_sisdri", -loss - mixture_sisdr(mixture, sources).mean(), on_epoch=True,
                     prog_bar=True, batch_size=batch_size, sync_dist=True)
        return loss
