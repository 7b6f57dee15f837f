"""Training entry points: ``python -m twostep_asteroid.train {step1,step2,step3,asteroid}``.

- ``step1``: the front end; ``step2``: the separator on the frozen front end (``--front_end``);
- ``step3``: joint fine-tuning of front end and separator on waveforms, from step 2's best_model.pth
  (``--init``; off while ``step3.max_steps`` is 0);
- ``asteroid``: one of Asteroid's own models (``--model ConvTasNet --model_args '{...}'``) trained
  end to end with PIT SI-SDR under the ``step2`` settings, as a baseline;
- ``check_init --conf C [overrides]``: check ``step2.init_from`` against the configuration
  (run.sh runs it before it creates the experiment folder).

Fine-tuning (``step2.init_from``, run.sh ``--init_from MODEL``): a trained separator (a Hub id
``org/name[@revision]``, a folder or a ``.pth``/``.safetensors`` file, resolved as ``from_pretrained``
does) is the starting point instead of random weights. See :func:`load_init_model`:

- step 1, under ``step1.init_from_model``: ``skip`` (default) writes the model's front end as step 1's
  result without training (its validation oracle on the new data is still measured); ``finetune``
  trains step 1 as usual, starting from the model's front end;
- step 2 builds the separator from the configuration around step 1's front end (so, with ``skip``,
  the model's: the ideal latent targets are the model's), loads the model's masker weights and
  trains as usual (front end frozen unless ``step2.train_front_end``). Without ``--front_end`` it
  uses the model's front end directly;
- the model's n_src, sample rate, front-end shape and masker type and sizes must be the
  configuration's: a mismatch fails before anything trains, naming the key (:func:`check_init_model`);
- the parent is recorded in ``conf.yml`` (``step2.init_from``), in each ``summary.json``
  (``init_from``) and in the models' infos (``infos["init_from"]``, kept through step 3 and Hub packaging).

Each run writes into its ``--exp_dir``:

- ``checkpoints/``: Lightning checkpoints (``last.ckpt`` every ``ckpt_every_n_steps`` and at each
  validation, the best by ``val_loss``), written atomically; a rerun resumes from ``last.ckpt``
  (model, optimizer, scheduler, step and RNG states);
- ``logs/version_<k>/metrics.csv``: the CSV logger, one version per (re)start;
- ``best_model.pth`` (:data:`~twostep_asteroid.serialization.BEST_MODEL_NAME`, Asteroid's name): the best
  model, serialized (``from_pretrained``-able);
- ``summary.json`` and the completion marker ``done``: a run with ``done`` present is skipped.

Faults (docs/reliability.md): a full disk raises ``DiskFullError`` (the previous checkpoint is
kept); SIGTERM and a first Ctrl-C stop every rank at the end of the same step, after saving
``last.ckpt``, and exit 143 or 130; under DDP, :class:`~twostep_asteroid.watchdog.PeerWatchdog` ends the run
soon after a process dies, and the process group's timeout is ``trainer.ddp_timeout_minutes``.
"""
import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader

from .callbacks import (AtomicModelCheckpoint, EpochSetter, StopOnSignal, TrainingInterrupted, WallClock,
                        resume_hint)
from .config import DEFAULTS, ConfigError, load_config, save_config
from .fileio import DiskFullError, atomic_torch_save, atomic_write_json, atomic_write_text
from .data.datasets import make_dataset, noise_options
from .losses import TwoStepLoss, front_end_loss, pit_sisdr_loss
from .models import TwoStepFrontEnd, TwoStepSeparator, TwoStepTDCN, load_separator
from .separators import MASKERS, masker_from_conf
from .sources import load_model_conf
from .serialization import BEST_MODEL_NAME, best_model_path
from .systems import FrontEndSystem, SeparatorSystem, WaveformSystem
from .watchdog import PeerWatchdog

log = logging.getLogger("twostep_asteroid.train")
DONE = "done"


def check_writable(exp_dir):
    """Fail early, naming the folder, if outputs cannot be written there."""
    exp_dir = Path(exp_dir)
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
        probe = exp_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"Cannot write to the experiment folder {exp_dir}: {err}. Choose another "
                          "--exp_dir/--tag or fix its permissions.") from err


def _loaders(conf, data_dir, stage_conf, sample_rate, world_size=1):
    batch_size = stage_conf["batch_size"]
    data = conf["data"]
    data_dir = Path(data_dir)
    n_items = None
    if data["dynamic_mixing"]:
        # One epoch is one validation interval: epoch-wise callbacks then see every validation.
        # Under DDP each process gets 1/world_size of the items, hence the factor.
        n_items = stage_conf["val_every_n_steps"] * batch_size * world_size
    augment = {"max_snr_db": data["max_snr_db"]} if data["dynamic_mixing"] else {}
    if data["speed_perturb"] > 0:
        if not data["dynamic_mixing"]:
            raise ConfigError("data.speed_perturb (pseudo-speakers) is part of dynamic mixing: set "
                              "data.dynamic_mixing: true, or data.speed_perturb: 0.0.")
        augment.update(speed_perturb=data["speed_perturb"], speed_range=tuple(data["speed_range"]))
    train_set = make_dataset(data_dir / "tr", n_src=data["n_src"], sample_rate=sample_rate,
                             segment=data["segment"], dynamic_mixing=data["dynamic_mixing"],
                             n_items=n_items, seed=conf["trainer"]["seed"], **augment, **noise_options(data))
    val_set = make_dataset(data_dir / "cv", n_src=data["n_src"], sample_rate=sample_rate,
                           segment=data["val_segment"], seed=conf["trainer"]["seed"], **noise_options(data))
    # Workers are kept for the whole run (the datasets' epoch is shared with them): forking new
    # ones at every epoch, beside DDP's threads, is where PyTorch's DataLoader can hang (pytorch#25158).
    # The timeout turns a worker that stops delivering into an error (main() names the key).
    workers = data["num_workers"]
    loader_opts = dict(num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
                       timeout=float(data["loader_timeout_s"]) if workers > 0 else 0.0)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True, **loader_opts)
    val_batch = batch_size if data["val_segment"] is not None else 1
    val_loader = DataLoader(val_set, batch_size=val_batch, shuffle=False, **loader_opts)
    return train_loader, val_loader


def _strategy(trainer_conf):
    """``trainer.strategy``, with the process group's timeout for DDP: how long a process waits
    in a collective for the others (Lightning's default is 30 minutes)."""
    if trainer_conf["strategy"] == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        return DDPStrategy(timeout=timedelta(minutes=trainer_conf["ddp_timeout_minutes"]))
    return trainer_conf["strategy"]


def _trainer(conf, exp_dir, stage_conf, callbacks, stage="step2"):
    trainer_conf = conf["trainer"]
    ckpt_dir = Path(exp_dir) / "checkpoints"
    hint = resume_hint(exp_dir, stage)
    best_ckpt = AtomicModelCheckpoint(dirpath=ckpt_dir, filename="best-{step}", monitor="val_loss",
                                      mode="min", save_top_k=1, advice=hint)
    # last.ckpt, for resuming after a crash, more often than validations happen.
    periodic = AtomicModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True,
                                     every_n_train_steps=stage_conf.get("ckpt_every_n_steps", 250), advice=hint)
    clock = WallClock(audio_per_step=0.0)  # set below, once the trainer knows its world size
    stopper = StopOnSignal(periodic, ckpt_dir / "last.ckpt")
    faults = [PeerWatchdog(resume_hint=hint), stopper]
    trainer = pl.Trainer(
        max_steps=stage_conf["max_steps"],
        max_time={"minutes": stage_conf["max_minutes"]} if stage_conf["max_minutes"] else None,
        val_check_interval=stage_conf["val_every_n_steps"] if not conf["data"]["dynamic_mixing"] else None,
        check_val_every_n_epoch=None if not conf["data"]["dynamic_mixing"] else 1,
        limit_val_batches=stage_conf["limit_val_batches"],
        gradient_clip_val=stage_conf["grad_clip"],
        accelerator=trainer_conf["accelerator"],
        devices=trainer_conf["devices"],
        num_nodes=trainer_conf["num_nodes"],
        strategy=_strategy(trainer_conf),
        precision=trainer_conf["precision"],
        # One version folder per (re)start, so that a resumed run never overwrites earlier metrics.
        logger=CSVLogger(str(exp_dir), name="logs"),
        callbacks=[best_ckpt, periodic, EpochSetter(), LearningRateMonitor("step"), clock] + faults + callbacks,
        default_root_dir=str(exp_dir),
        num_sanity_val_steps=0,
        log_every_n_steps=min(50, stage_conf["val_every_n_steps"]),
        enable_model_summary=True,
    )
    clock.audio_per_step = stage_conf["batch_size"] * conf["data"]["segment"] * trainer.world_size
    trainer.stopper = stopper
    return trainer, best_ckpt


def _resume_step(exp_dir):
    """The global step a rerun resumes from (0 for a fresh run)."""
    last = Path(exp_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return 0
    return int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])


def _resume_path(exp_dir):
    last = Path(exp_dir) / "checkpoints" / "last.ckpt"
    if last.is_file():
        log.info("Resuming from %s", last)
        return str(last)
    return None


def _best_state_dict(best_ckpt, system):
    """State dict of the best checkpoint's model (falls back to the current weights)."""
    path = best_ckpt.best_model_path
    if not path or not Path(path).is_file():
        log.warning("No best checkpoint was recorded; keeping the last weights.")
        return system.model.state_dict()
    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # our own, local checkpoint
    return {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}


def _is_rank_zero():
    # Under DDP the script is relaunched once per process, before any Trainer exists.
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    return rank_zero_only.rank == 0


def _setup(conf, exp_dir, stage):
    if _is_rank_zero():
        check_writable(exp_dir)
    threads = conf["trainer"]["num_threads"]
    if threads:
        torch.set_num_threads(threads)
    pl.seed_everything(conf["trainer"]["seed"], workers=True)
    if _is_rank_zero():
        save_config(conf, Path(exp_dir) / "conf.yml")
    return conf[stage]


def system_config(conf):
    """The configuration as asteroid's System stores it: its ``config_to_hparams`` turns lists into
    tensors, which fails on lists of strings, so lists are joined into strings here."""
    return {section: {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                      for k, v in values.items()}
            for section, values in conf.items()}


def _scheduler(conf, stage_conf, optimizer):
    kind = stage_conf.get("scheduler", "none")
    if kind == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=stage_conf["max_steps"])
        return {"scheduler": sched, "interval": "step"}
    if kind == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5,
                                                           patience=stage_conf["plateau_patience"])
        return {"scheduler": sched, "interval": "epoch", "monitor": "val_loss", "strict": False}
    return None


def budget_summary(trainer, stage_conf, start_step):
    """How much of its step budget a run trained, and what stopped it.

    The configured budget is ``max_steps``; ``max_minutes`` is a safety cap. When the cap (or early
    stopping) ends a run before ``max_steps``, the result depends on the machine's speed, not only
    on the configuration, so it is logged loudly and recorded.

    Returns:
        dict: ``max_steps``, ``full_budget`` (bool), ``stopped_by`` (``"max_steps"``,
        ``"max_minutes"`` or ``"early_stopping"``), ``steps_this_run`` and ``steps_per_second``.
    """
    max_steps = stage_conf["max_steps"]
    done = trainer.global_step
    full = done >= max_steps
    if full:
        stopped_by = "max_steps"
    elif any(isinstance(cb, EarlyStopping) and cb.stopped_epoch > 0 for cb in trainer.callbacks):
        stopped_by = "early_stopping"
    else:
        stopped_by = "max_minutes"
    if stopped_by == "max_minutes" and trainer.is_global_zero:
        log.warning("=" * 78)
        log.warning("WALL-CLOCK CAP: stopped at step %d of %d after max_minutes=%s. The result now depends "
                    "on this machine's speed and will be below the README's figures; raise max_minutes "
                    "(or set it to null) and rerun the same command to finish the budget.",
                    done, max_steps, stage_conf["max_minutes"])
        log.warning("=" * 78)
    return {"max_steps": max_steps, "full_budget": full, "stopped_by": stopped_by,
            "steps_this_run": done - start_step}


def budget_report(exp_dir):
    """One line per finished training step of an experiment: steps run against the budget.

    Returns:
        tuple: ``(lines, all_full)``; ``all_full`` is False when a run stopped short of max_steps.
    """
    lines, all_full = [], True
    for step in ("step1", "step2", "step3"):
        path = Path(exp_dir) / step / "summary.json"
        if not path.is_file():
            continue
        summary = json.loads(path.read_text())
        if summary.get("skipped"):
            lines.append(f"{step}: skipped, the front end of {summary.get('init_from')} (step1.init_from_model: skip)")
            continue
        max_steps = summary.get("max_steps")
        full = summary.get("full_budget", max_steps is None or summary["global_step"] >= max_steps)
        all_full &= bool(full)
        rate = summary.get("steps_per_second")
        speed = f", {rate:.2f} steps/s" if rate else ""
        verdict = "full budget" if full else f"NOT the full budget (stopped by {summary.get('stopped_by')})"
        lines.append(f"{step}: {summary['global_step']} of {max_steps} steps{speed}: {verdict}")
    return lines, all_full


def _write_outputs(exp_dir, model, summary):
    atomic_torch_save(model.serialize(), Path(exp_dir) / BEST_MODEL_NAME)
    atomic_write_json(Path(exp_dir) / "summary.json", summary)
    atomic_write_text(Path(exp_dir) / DONE, json.dumps({"finished": time.time()}))


def _finish(exp_dir, model, summary, trainer):
    if trainer.is_global_zero:
        _write_outputs(exp_dir, model, summary)
    trainer.strategy.barrier("finish")


SEPARATOR_CLASSES = ("TwoStepTDCN", "TwoStepSeparator")


def _fmt(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _plain(value):
    """Tuples as lists, recursively: a model read from config.json has lists where a fresh one has tuples."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _args_by_conf_key(model_name, model_args):
    """A separator's ``model_args`` keyed by the configuration key that sets each (``data.n_src``,
    ``front_end.stride``, ``masker.bn_chan``, ``masker_sudormrf.num_blocks``...); ``conv_impl``,
    an implementation choice with the same weights, is left out."""
    out = {"masker.type": "tdcn" if model_name == "TwoStepTDCN" else model_args.get("masker_type")}
    for key, value in model_args.items():
        if key in ("n_src", "sample_rate"):
            out[f"data.{key}"] = value
        elif key in ("n_filters", "kernel_size", "stride"):
            out[f"front_end.{key}"] = value
        elif key == "masker_args":
            section = MASKERS.get(out["masker.type"], (None, "masker"))[1]
            out.update({f"{section}.{k}": v for k, v in (value or {}).items()})
        elif key not in ("masker_type", "conv_impl"):
            out[f"masker.{key}"] = value
    return {k: _plain(v) for k, v in out.items()}


def check_init_model(conf, parent, source):
    """Check that the model ``parent`` (a serialized dict from ``source``) is what the configuration
    would build: n_src, sample rate, front-end shape (n_filters, kernel_size, stride), masker type
    and every masker size. A mismatch would otherwise train something else than the conf says, or
    load weights into a differently shaped model (Asteroid issue #687: an n_src mismatch silently
    broke transfer learning).

    Raises:
        ConfigError: naming each differing key, the model's and the configuration's values and the fix.
    """
    name = parent["model_name"]
    if name not in SEPARATOR_CLASSES:
        raise ConfigError(f"--init_from {source} (step2.init_from) holds a {name}, not a two-step separation "
                          f"model ({', '.join(SEPARATOR_CLASSES)}). A step-1 front end is step 2's --front_end.")
    got = _args_by_conf_key(name, parent["model_args"])
    if got["masker.type"] != conf["masker"]["type"]:
        differ = ["masker.type"]
        want = {"masker.type": conf["masker"]["type"]}
    else:
        fresh = _separator_around(conf, TwoStepFrontEnd(n_src=conf["data"]["n_src"],
                                                        sample_rate=conf["data"]["sample_rate"], **conf["front_end"]))
        want = _args_by_conf_key(type(fresh).__name__, fresh.get_model_args())
        differ = [k for k in want if k in got and got[k] != want[k]]
    if not differ:
        return
    has = ", ".join(f"{k}={_fmt(got[k])}" for k in differ)
    says = ", ".join(f"{k}={_fmt(want[k])}" for k in differ)
    settable = [k for k in differ if k.split(".")[1] in DEFAULTS.get(k.split(".")[0], {})]
    fix = (f"set {', '.join(f'{k}: {_fmt(got[k])}' for k in settable)} (run.sh --overrides "
           f"\"{' '.join(f'{k}={_fmt(got[k])}' for k in settable)}\") or " if settable else "")
    raise ConfigError(f"--init_from {source} (step2.init_from) has {has} but the configuration says {says}; "
                      f"{fix}pick a model with {says}. Nothing was trained.")


def load_init_model(conf):
    """The model to fine-tune from (``step2.init_from``), loaded and checked against ``conf``.

    Design: the conf stays the one description of the model. Step 2 builds what the conf says and
    loads the parent's weights into it, after :func:`check_init_model` has checked that the two
    agree; so a conf file can be reused for fine-tuning by adding ``step2.init_from`` only, and the
    experiment's ``conf.yml`` both rebuilds the model and names its parent. Step 1 either reuses
    the parent's front end as its result (``step1.init_from_model: skip``, the default: the
    separator was trained on that front end's latent targets, so keeping it keeps the masker's
    input and targets as they were) or fine-tunes it on the new data (``finetune``: the masker then
    starts from weights trained on a slightly different latent space).

    Returns:
        dict or None: The serialized parent (``model_name``, ``model_args``, ``state_dict``, ``infos``),
        ``None`` when ``step2.init_from`` is null.

    Raises:
        ConfigError: It cannot be loaded, or it does not match the configuration.
    """
    source = conf["step2"]["init_from"]
    if source is None:
        return None
    from .serialization import UnsafeCheckpointError

    try:
        parent = load_model_conf(os.path.expanduser(source))
    except (OSError, ValueError, UnsafeCheckpointError) as err:
        raise ConfigError(f"--init_from {source} (step2.init_from) cannot be loaded: {err}") from err
    check_init_model(conf, parent, source)
    return parent


def _parent_front_end(parent, source):
    """The parent separator's front end (its encoder and decoder weights), trainable."""
    front_end = load_separator(parent).front_end
    front_end.requires_grad_(True)
    front_end.init_from = source
    return front_end


def train_step1(conf, data_dir, exp_dir):
    """Learn the front end (step 1) and save its best weights and validation oracle."""
    exp_dir = Path(exp_dir)
    if (exp_dir / DONE).is_file():
        log.info("Step 1 already done in %s (remove %s to redo it).", exp_dir, exp_dir / DONE)
        return best_model_path(exp_dir)
    parent = load_init_model(conf)
    if parent is not None and conf["step1"]["init_from_model"] == "skip":
        return _step1_from_parent(conf, data_dir, exp_dir, parent)
    stage_conf = _setup(conf, exp_dir, "step1")
    data = conf["data"]
    trainer, best_ckpt = _trainer(conf, exp_dir, stage_conf, [], stage="step1")
    train_loader, val_loader = _loaders(conf, data_dir, stage_conf, data["sample_rate"], trainer.world_size)
    if parent is not None:  # step1.init_from_model: finetune
        front_end = _parent_front_end(parent, conf["step2"]["init_from"])
    else:
        front_end = TwoStepFrontEnd(n_src=data["n_src"], sample_rate=data["sample_rate"], **conf["front_end"])
    optimizer = torch.optim.Adam(front_end.parameters(), lr=stage_conf["lr"])
    system = FrontEndSystem(front_end, optimizer, front_end_loss, train_loader, val_loader,
                            config=system_config(conf))
    start, start_step = time.time(), _resume_step(exp_dir)
    trainer.fit(system, ckpt_path=_resume_path(exp_dir))
    trainer.stopper.raise_if_stopped("step1", exp_dir)
    budget = budget_summary(trainer, stage_conf, start_step)
    front_end.load_state_dict(_best_state_dict(best_ckpt, system))
    oracle = None
    if trainer.is_global_zero:
        # The oracle bound of the chosen front end, on the whole validation set (whole utterances).
        from .evaluate import front_end_oracle

        oracle = front_end_oracle(front_end.cpu(), _oracle_set(conf, data_dir))
    summary = {"step": "step1", "global_step": trainer.global_step, "train_seconds": time.time() - start,
               "best_checkpoint": best_ckpt.best_model_path,
               "best_val_loss": float(best_ckpt.best_model_score) if best_ckpt.best_model_score is not None else None,
               "val_oracle_sisdri": oracle, **budget}
    summary["steps_per_second"] = budget["steps_this_run"] / max(summary["train_seconds"], 1e-9)
    if parent is not None:
        summary["init_from"] = conf["step2"]["init_from"]
    if trainer.is_global_zero:
        print(f"Step 1: oracle SI-SDRi of the learned front end on the validation set: {oracle:.2f} dB")
    _finish(exp_dir, front_end, summary, trainer)
    return exp_dir / BEST_MODEL_NAME


def _oracle_set(conf, data_dir):
    """The validation set of step 1's oracle: whole ``cv`` utterances, with the noise (and its seed)
    of validation."""
    data = conf["data"]
    return make_dataset(Path(data_dir) / "cv", n_src=data["n_src"], sample_rate=data["sample_rate"], segment=None,
                        seed=conf["trainer"]["seed"], **noise_options(data))


def _step1_from_parent(conf, data_dir, exp_dir, parent):
    """``step1.init_from_model: skip``: the parent's front end is step 1's result (no training, no
    Trainer, so no DDP processes either); its validation oracle on this corpus is still measured."""
    from .evaluate import front_end_oracle

    source = conf["step2"]["init_from"]
    _setup(conf, exp_dir, "step1")
    front_end = _parent_front_end(parent, source)
    oracle = front_end_oracle(front_end, _oracle_set(conf, data_dir))
    summary = {"step": "step1", "global_step": 0, "train_seconds": 0.0, "best_checkpoint": None,
               "best_val_loss": None, "val_oracle_sisdri": oracle, "max_steps": 0, "full_budget": True,
               "stopped_by": "init_from", "steps_this_run": 0, "steps_per_second": 0.0,
               "skipped": True, "init_from": source}
    print(f"Step 1 skipped (step1.init_from_model: skip): the front end of {source}; its oracle SI-SDRi "
          f"on the validation set: {oracle:.2f} dB")
    _write_outputs(exp_dir, front_end, summary)
    return exp_dir / BEST_MODEL_NAME


def compile_masker(model, on_cpu):
    """``torch.compile`` the masker in place (``Module.compile``), so that the state dict keeps its
    keys and checkpoints and best_model.pth are the same as without compilation.

    On CPU, inductor builds C++ kernels. Without a C++ compiler on PATH this fails before training
    with the fix named, rather than at the first step or, worse, as a quiet eager run that trains
    fewer steps than the configuration was sized for.

    Raises:
        ConfigError: on CPU with no C++ compiler (g++, c++, clang++ or ``$CXX``) on PATH.
    """
    if on_cpu:
        candidates = [os.environ.get("CXX"), "g++", "c++", "clang++"]
        if not any(shutil.which(c) for c in candidates if c):
            raise ConfigError("trainer.compile: true needs a C++ compiler on CPU (torch.compile builds C++ "
                              "kernels), and none of g++, c++, clang++ or $CXX is on PATH. Install one "
                              "(e.g. apt-get install g++) or set trainer.compile: false (--overrides "
                              "trainer.compile=false), which trains about 1.2x fewer steps per second.")
    import torch._dynamo

    torch._dynamo.utils.counters.clear()
    model.masker.compile()


def compiled_graphs():
    """How many graphs ``torch.compile`` built in this process since :func:`compile_masker`: 0 when
    the masker ran eager (the evidence that a compiled run was compiled)."""
    import torch._dynamo

    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def build_separator(conf, front_end_path=None, parent=None):
    """The step-2 model (``masker.type``): around the trained front end, or a fresh trainable one
    (end to end). :class:`TwoStepTDCN` for ``tdcn``, :class:`TwoStepSeparator` for the others.

    With ``step2.init_from`` (``parent``: its serialized dict, else loaded here), the masker's
    weights are the parent's, and the front end is step 1's (``front_end_path``) or, without one,
    the parent's; trainable only under ``step2.train_front_end`` (the decoder alone under
    ``step2.train_decoder``: the encoder, hence the latent targets, stay step 1's)."""
    data = conf["data"]
    train_front_end = conf["step2"]["train_front_end"]
    source = conf["step2"]["init_from"]
    if source is not None and parent is None:
        parent = load_init_model(conf)
    if front_end_path is None and parent is not None:
        front_end = _parent_front_end(parent, source)
    elif train_front_end and parent is None:
        front_end = TwoStepFrontEnd(n_src=data["n_src"], sample_rate=data["sample_rate"], **conf["front_end"])
    else:
        if front_end_path is None or not Path(front_end_path).is_file():
            raise ConfigError(f"Step 2 needs the step-1 front end, not found at {front_end_path}: run step 1 "
                              "first (run.sh --stage 1) or set step2.train_front_end: true (end to end).")
        front_end = TwoStepFrontEnd.from_pretrained(str(front_end_path))
        if parent is not None:
            _check_front_end_fits(front_end, parent, front_end_path, source)
    model = _separator_around(conf, front_end, train_front_end)
    if conf["step2"]["train_decoder"]:
        model.set_decoder_trainable(True)
    if parent is not None:
        masker_state = {k[len("masker."):]: v for k, v in parent["state_dict"].items() if k.startswith("masker.")}
        try:
            model.masker.load_state_dict(masker_state)
        except RuntimeError as err:  # check_init_model passed, so a layout the check does not know
            raise ConfigError(f"--init_from {source} (step2.init_from): its masker weights do not fit the "
                              f"masker of the configuration: {err}") from err
        model.init_from = source
    return model


def _check_front_end_fits(front_end, parent, front_end_path, source):
    have, want = front_end.get_model_args(), parent["model_args"]
    keys = ("n_src", "n_filters", "kernel_size", "stride", "sample_rate")
    differ = [k for k in keys if have[k] != want[k]]
    if differ:
        has = ", ".join(f"{k}={_fmt(have[k])}" for k in differ)
        parents = ", ".join(f"{k}={_fmt(want[k])}" for k in differ)
        raise ConfigError(f"The step-1 front end {front_end_path} has {has} but --init_from {source} has "
                          f"{parents}: its masker cannot run on that front end. Rerun step 1 with "
                          "step2.init_from set (another --tag).")


def _separator_around(conf, front_end, train_front_end=False):
    """The configured masker around ``front_end`` (random weights)."""
    masker_type, masker_args = masker_from_conf(conf)
    if masker_type == "tdcn":
        return TwoStepTDCN.from_front_end(front_end, train_front_end=train_front_end, **masker_args)
    try:
        return TwoStepSeparator.from_front_end(front_end, masker_type=masker_type, masker_args=masker_args,
                                               train_front_end=train_front_end)
    except ValueError as err:  # e.g. a masker that needs an even N, or a wrong activation
        raise ConfigError(f"masker.type {masker_type}: {err}") from err


def _fit_separator(conf, data_dir, exp_dir, stage, build_model, loss_func, system_cls=SeparatorSystem):
    """Train ``build_model()`` (called once seeded) under the ``stage`` section; load its best
    weights by validation waveform SI-SDR.

    Returns:
        tuple: ``(model, summary, trainer)``.
    """
    stage_conf = _setup(conf, exp_dir, stage)
    callbacks = []
    if stage_conf["early_stop_patience"]:
        callbacks.append(EarlyStopping("val_loss", patience=stage_conf["early_stop_patience"]))
    trainer, best_ckpt = _trainer(conf, exp_dir, stage_conf, callbacks, stage=stage)
    train_loader, val_loader = _loaders(conf, data_dir, stage_conf, conf["data"]["sample_rate"], trainer.world_size)
    model = build_model()
    if conf["trainer"]["compile"] and hasattr(model, "masker"):
        compile_masker(model, on_cpu=trainer.strategy.root_device.type == "cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=stage_conf["lr"])
    system = system_cls(model, optimizer, loss_func, train_loader, val_loader,
                        scheduler=_scheduler(conf, stage_conf, optimizer), config=system_config(conf))
    start, start_step = time.time(), _resume_step(exp_dir)
    trainer.fit(system, ckpt_path=_resume_path(exp_dir))
    trainer.stopper.raise_if_stopped(stage, exp_dir)
    budget = budget_summary(trainer, stage_conf, start_step)
    model.load_state_dict(_best_state_dict(best_ckpt, system))
    counted = model.masker if hasattr(model, "masker") else model
    summary = {"step": stage, "global_step": trainer.global_step, "train_seconds": time.time() - start,
               "best_checkpoint": best_ckpt.best_model_path,
               "best_val_sisdr": -float(best_ckpt.best_model_score) if best_ckpt.best_model_score is not None else None,
               "n_params": sum(p.numel() for p in counted.parameters()),
               "n_params_total": sum(p.numel() for p in model.parameters()),
               "nonfinite_steps": system.nonfinite_steps, **budget,
               "masker_compiled_graphs": compiled_graphs()}
    summary["steps_per_second"] = budget["steps_this_run"] / max(summary["train_seconds"], 1e-9)
    return model, summary, trainer


def _done(exp_dir, what):
    if (Path(exp_dir) / DONE).is_file():
        log.info("%s already done in %s (remove %s to redo it).", what, exp_dir, Path(exp_dir) / DONE)
        return True
    return False


def train_step2(conf, data_dir, exp_dir, front_end_path=None):
    """Train the separator on the frozen front end (step 2) and save the best by waveform SI-SDR.

    With ``step2.init_from`` the separator starts from that model's weights (see :func:`load_init_model`);
    without ``front_end_path`` it then runs on that model's front end."""
    exp_dir = Path(exp_dir)
    if _done(exp_dir, "Step 2"):
        return best_model_path(exp_dir)
    stage_conf = conf["step2"]
    if stage_conf["train_front_end"] and stage_conf["latent_weight"] > 0:
        raise ConfigError("step2.train_front_end: true trains end to end on waveforms; set "
                          "step2.latent_weight: 0 (latent targets of a moving front end are not targets).")
    parent = load_init_model(conf)  # checked before anything is written or trained
    loss_func = TwoStepLoss(stage_conf["latent_weight"], stage_conf["waveform_weight"])
    model, summary, trainer = _fit_separator(conf, data_dir, exp_dir, "step2",
                                             lambda: build_separator(conf, front_end_path, parent), loss_func)
    summary["masker_type"] = conf["masker"]["type"]
    if parent is not None:
        summary["init_from"] = stage_conf["init_from"]
    _finish(exp_dir, model, summary, trainer)
    return exp_dir / BEST_MODEL_NAME


def train_step3(conf, data_dir, exp_dir, init_path=None):
    """Step 3: fine-tune the front end and the separator jointly with the waveform loss (PIT
    SI-SDR), from step 2's best model, and save the best by validation waveform SI-SDR.

    Off (returns ``None``, writes nothing) while ``step3.max_steps`` is 0.

    Args:
        conf (dict): The recipe configuration (``step3`` section, ``data``, ``trainer``).
        data_dir: Folder with the ``tr/`` and ``cv/`` manifests.
        exp_dir: Output folder (``best_model.pth``, ``summary.json``, ``done``, checkpoints, logs).
        init_path: Step 2's ``best_model.pth`` (a :class:`TwoStepTDCN` or :class:`TwoStepSeparator`).

    Returns:
        Path or None: ``exp_dir / "best_model.pth"``, or ``None`` when step 3 is off.
    """
    exp_dir = Path(exp_dir)
    if conf["step3"]["max_steps"] <= 0:
        log.info("step3.max_steps is 0: step 3 is off, nothing to do.")
        return None
    if _done(exp_dir, "Step 3"):
        return best_model_path(exp_dir)
    if init_path is None or not Path(init_path).is_file():
        raise ConfigError(f"Step 3 starts from step 2's {BEST_MODEL_NAME}, not found at {init_path}: run step 2 "
                          f"first (run.sh --stage 2) and pass its {BEST_MODEL_NAME} with --init.")
    def build():
        model = load_separator(str(init_path))
        model.set_front_end_trainable(True)
        return model

    loss_func = TwoStepLoss(latent_weight=0.0, waveform_weight=1.0)
    model, summary, trainer = _fit_separator(conf, data_dir, exp_dir, "step3", build, loss_func)
    summary["init"] = str(init_path)
    _finish(exp_dir, model, summary, trainer)
    return exp_dir / BEST_MODEL_NAME


def build_asteroid_model(conf, model_name, model_args=None):
    """One of Asteroid's registered models (``asteroid.models.get(model_name)``), at the data's
    sample rate and source count unless ``model_args`` says otherwise."""
    import asteroid.models

    try:
        cls = asteroid.models.get(model_name)
    except ValueError as err:
        raise ConfigError(f"Unknown Asteroid model {model_name!r}: {err}") from err
    args = {"n_src": conf["data"]["n_src"], "sample_rate": conf["data"]["sample_rate"], **(model_args or {})}
    return cls(**args)


def train_asteroid_model(conf, data_dir, exp_dir, model_name, model_args=None):
    """Train one of Asteroid's own models end to end with PIT SI-SDR, under the ``step2`` settings
    (batch, lr, schedule, steps, minutes, validation), for comparison with the two-step models."""
    exp_dir = Path(exp_dir)
    if _done(exp_dir, model_name):
        return best_model_path(exp_dir)
    model, summary, trainer = _fit_separator(conf, data_dir, exp_dir, "step2",
                                             lambda: build_asteroid_model(conf, model_name, model_args),
                                             pit_sisdr_loss(), system_cls=WaveformSystem)
    summary.update({"step": "asteroid", "model_name": model_name})
    _finish(exp_dir, model, summary, trainer)
    return exp_dir / BEST_MODEL_NAME


def check_init_main(argv):
    """``python -m twostep_asteroid.train check_init --conf C [section.key=value ...]``: load
    ``step2.init_from`` and check it against the configuration (exit 2, naming the key, if it does not fit)."""
    parser = argparse.ArgumentParser(prog="python -m twostep_asteroid.train check_init")
    parser.add_argument("--conf")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    try:
        conf = load_config(args.conf, args.overrides)
        parent = load_init_model(conf)
    except ConfigError as err:
        print(f"Configuration error: {err}", file=sys.stderr)
        return 2
    if parent is None:
        print("step2.init_from is null: nothing to check.")
    else:
        print(f"--init_from {conf['step2']['init_from']}: a {parent['model_name']} that fits the configuration "
              f"(step 1: {conf['step1']['init_from_model']}).")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["budget"]:
        # `python -m twostep_asteroid.train budget EXP`: steps run against the budget (run.sh's last lines).
        lines, all_full = budget_report(argv[1])
        print("\n".join(lines) or f"No finished training step in {argv[1]}.")
        if not all_full:
            print("Results of a run that did not train its full step budget are lower than the README's "
                  "figures for this configuration (see the warnings above).")
        return 0
    if argv[:1] == ["check_init"]:
        return check_init_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["step1", "step2", "step3", "asteroid"])
    parser.add_argument("--conf", help="YAML configuration (see conf/default.yml)")
    parser.add_argument("--data_dir", required=True, help="folder with tr/ cv/ manifests")
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--front_end", help=f"step-1 {BEST_MODEL_NAME} (step 2)")
    parser.add_argument("--init", help=f"step-2 {BEST_MODEL_NAME} (step 3)")
    parser.add_argument("--model", help="an asteroid.models name, e.g. ConvTasNet (asteroid)")
    parser.add_argument("--model_args", default="{}", help="its keyword arguments as JSON (asteroid)")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    conf = load_config(args.conf, args.overrides)
    try:
        if args.step == "step1":
            train_step1(conf, args.data_dir, args.exp_dir)
        elif args.step == "step2":
            train_step2(conf, args.data_dir, args.exp_dir, args.front_end)
        elif args.step == "step3":
            train_step3(conf, args.data_dir, args.exp_dir, args.init)
        else:
            if not args.model:
                parser.error("asteroid needs --model (e.g. ConvTasNet, SuDORMRFNet)")
            train_asteroid_model(conf, args.data_dir, args.exp_dir, args.model, json.loads(args.model_args))
    except TrainingInterrupted as err:
        log.warning("%s", err)
        sys.exit(err.exit_status)
    except SIGTERMException:  # Lightning's own stop (a SystemExit with status 0): the step did not finish
        log.warning("Stopped by SIGTERM before the end of %s. %s", args.step, resume_hint(args.exp_dir, args.step))
        sys.exit(128 + signal.SIGTERM)
    except DiskFullError as err:
        log.error("%s", err)
        sys.exit(1)
    except RuntimeError as err:
        if "DataLoader timed out" not in str(err):
            raise
        log.error("%s: a DataLoader worker gave no batch for data.loader_timeout_s = %s s, so the run stopped "
                  "instead of hanging. %s If reading the data is that slow (a network disk), raise "
                  "data.loader_timeout_s (0: wait forever).", err, conf["data"]["loader_timeout_s"],
                  resume_hint(args.exp_dir, args.step))
        sys.exit(1)


if __name__ == "__main__":
    raise SystemExit(main())
