"""Lightning callbacks of the training runs: atomic checkpoints, epoch seeding, the wall clock
and a clean stop on SIGTERM / Ctrl-C (the DDP peer watchdog is :mod:`twostep_asteroid.watchdog`).
"""
import logging
import signal
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from .fileio import atomic_write

log = logging.getLogger("twostep_asteroid.train")  # the training log: these callbacks speak for it


def resume_hint(exp_dir, stage):
    """What to run to continue an interrupted step."""
    last = Path(exp_dir) / "checkpoints" / "last.ckpt"
    number = {"step1": 1, "step2": 2}.get(stage)
    where = f" (under run.sh: ./run.sh --stage {number} with the same options)" if number else ""
    return (f"Resume with the same command{where}: it continues from {last} if it exists, else starts "
            f"{stage} again.")


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it, so that a kill during a
    save never leaves a truncated checkpoint where a resume would look for it. A full disk raises
    :class:`~twostep_asteroid.fileio.DiskFullError` and keeps the previous checkpoint.

    Args:
        advice (str): Appended to the full-disk message (how to resume).
    """

    def __init__(self, *args, advice="", **kwargs):
        super().__init__(*args, **kwargs)
        self.advice = advice

    def _save_checkpoint(self, trainer, filepath):
        if trainer.is_global_zero:
            atomic_write(filepath, lambda tmp: trainer.save_checkpoint(tmp, self.save_weights_only),
                         advice=f"The previous {Path(filepath).name} is unchanged. {self.advice}")
        else:  # only global rank 0 writes; the others join Trainer.save_checkpoint's barrier
            trainer.save_checkpoint(filepath, self.save_weights_only)
        trainer.strategy.barrier("atomic_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)


class EpochSetter(pl.Callback):
    """Tells the training set the epoch, so that random crops and dynamic mixtures change per
    epoch yet are reproducible (the dataset seeds each item from (seed, epoch, index))."""

    def on_train_epoch_start(self, trainer, pl_module):
        from .data.datasets import set_epoch

        set_epoch(trainer.train_dataloader.dataset, trainer.current_epoch)


class WallClock(pl.Callback):
    """Logs at each validation the training wall time and the training audio seen, so that runs
    can be compared per minute and per second of audio (``bench/quality_per_minute.py``).

    Metrics (CSV logger, on their own row at the validation's step): ``wall_s``, seconds since the
    training started, carried over a resume through the checkpoint; ``train_audio_s``, seconds of
    training audio (steps x batch x segment x processes); ``time_unix``, the clock time.

    Args:
        audio_per_step (float): Seconds of training audio per optimizer step, all processes.
    """

    def __init__(self, audio_per_step):
        self.audio_per_step = audio_per_step
        self._offset = 0.0
        self._start = None

    def elapsed(self):
        return self._offset + (time.time() - self._start if self._start is not None else 0.0)

    def on_train_start(self, trainer, pl_module):
        self._start = time.time()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or trainer.logger is None or self._start is None:
            return
        trainer.logger.log_metrics({"wall_s": self.elapsed(),
                                    "train_audio_s": trainer.global_step * self.audio_per_step,
                                    "time_unix": time.time()}, step=trainer.global_step)

    def state_dict(self):
        return {"wall_s": self.elapsed()}

    def load_state_dict(self, state_dict):
        self._offset = float(state_dict.get("wall_s", 0.0))


class TrainingInterrupted(Exception):
    """Training stopped by SIGTERM or Ctrl-C after saving ``last.ckpt``; the step is not done.

    Attributes:
        exit_status (int): 143 after SIGTERM, 130 after Ctrl-C (128 + the signal number).
    """

    def __init__(self, message, exit_status):
        super().__init__(message)
        self.exit_status = exit_status


class StopOnSignal(pl.Callback):
    """On SIGTERM (what a scheduler sends before it kills or preempts a job) or a first Ctrl-C:
    finish the current training step, save ``last.ckpt``, then stop; the command run again resumes.

    The handler only records the signal. At the end of each training batch the ranks agree, with
    Lightning's ``strategy.reduce_boolean_decision``, whether any of them got one; if so all of
    them save through ``checkpoint`` at that same step and set ``trainer.should_stop``. This
    replaces Lightning's own SIGTERM handler for the duration of the fit: under DDP that one
    broadcasts from inside the handler, once per signal received, and a SIGTERM sent to every
    process at once (as SLURM does, or ``kill -TERM -<pgid>``) then left the two CPU processes
    waiting for each other (docs/reliability.md). A second Ctrl-C stops at once (KeyboardInterrupt).

    Args:
        checkpoint (AtomicModelCheckpoint): The callback that writes ``last.ckpt``.
        last_path (Path): ``checkpoints/last.ckpt``.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, checkpoint, last_path):
        self.checkpoint = checkpoint
        self.last_path = Path(last_path)
        self.received = None
        self.saved_step = None
        self._previous = {}

    def on_train_start(self, trainer, pl_module):
        # After Lightning's Trainer registered its handlers (Trainer._run), before the first step.
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signal.Signals(signum)
            log.warning("%s received: saving %s at the end of this training step, then stopping%s.",
                        self.received.name, self.last_path,
                        " (Ctrl-C again stops at once, without saving)" if signum == signal.SIGINT else "")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        if self.received is None:
            self.received = signal.SIGTERM  # another rank got it: stop with the same status
        self.checkpoint._save_checkpoint(trainer, str(self.last_path))
        self.saved_step = trainer.global_step
        trainer.should_stop = True
        if trainer.is_global_zero:
            log.warning("%s: saved step %d to %s; stopping.", self.received.name, trainer.global_step, self.last_path)

    def teardown(self, trainer, pl_module, stage):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def raise_if_stopped(self, stage, exp_dir):
        """After ``trainer.fit``: raise :class:`TrainingInterrupted` if a signal stopped it."""
        if self.received is None:
            return
        where = f"saved step {self.saved_step} to {self.last_path}" if self.saved_step is not None else "nothing saved"
        raise TrainingInterrupted(f"{stage} stopped by {self.received.name} ({where}). {resume_hint(exp_dir, stage)}",
                                  128 + int(self.received))
