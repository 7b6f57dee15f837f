#!/usr/bin/env python
"""Quality per wall-clock minute: several systems on the same data, test set, cores and budget.

Each system is trained by ``python -m twostep_asteroid.train`` subprocesses (one at a time, so
that each has the same cores), with ``--budget_minutes`` of wall time in all:

- ``twostep``: step 1 (``--step1_fraction`` of the budget at most) then step 2 on the frozen
  encoder for the rest (the configuration's ``step2.train_decoder``); step 1's time is counted;
- ``twostep_frozen``: the same step 1 (run once per seed, its time counted again), then step 2 on
  the whole front end frozen, as in the paper (``step2.train_decoder=false``; the default trains
  the decoder beside the masker, the encoder frozen);
- ``twostep_step3``: the same step 1 (run once per seed, its time counted again), step 2 until
  ``1 - --step3_fraction`` of the budget, then step 3 (joint fine-tuning) for the rest;
- ``e2e``: the same separator trained end to end (``step2.train_front_end=true
  step2.latent_weight=0``);
- ``convtasnet``, ``sudormrf``: Asteroid's ``ConvTasNet`` and ``SuDORMRFNet`` at the recipe's
  front-end size (N, L, hop; ConvTasNet with the ``masker`` section's B, H, X, R and skip = B;
  SuDORMRFNet with ``masker_sudormrf``), trained end to end with PIT SI-SDR.

The configuration (``--conf``, trailing ``section.key=value`` overrides) applies to every system,
e.g. ``masker.type=sudormrf`` changes the separator of the two-step and e2e systems. Validation
SI-SDRi comes from the runs' ``logs/version_*/metrics.csv`` (``val_sisdri``), timed by the
``WallClock`` callback (``time_unix``, ``train_audio_s``). Wall minutes of a point = the wall time
of the system's earlier stages (whole processes, start-up included) + the time since its stage's
process started.

Outputs in ``--out_dir``: ``curves.csv`` (system, seed, stage, step, wall_min, audio_s,
val_sisdri), ``results.md`` and ``results.json`` (per system: best validation SI-SDRi within the
budget, wall minutes used, steps, parameters, test SI-SDRi on the first ``--test_utterances``
mixtures of ``tt/``), ``curves.png``. Resumable: finished stages are skipped; a stage interrupted
part-way is restarted from scratch, so that its wall time stays honest.

Usage::

    python bench/quality_per_minute.py --data_dir data/prompts/json --out_dir bench/results/qpm \\
        --conf egs/wsj0-2mix/twostep/conf/default.yml --budget_minutes 30 --seeds 0,1
"""
import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from twostep_asteroid.config import load_config  # noqa: E402
from twostep_asteroid.fileio import atomic_savefig, atomic_write_csv, atomic_write_json, atomic_write_text  # noqa: E402
from twostep_asteroid.serialization import best_model_path  # noqa: E402

SYSTEMS = ("twostep", "twostep_frozen", "e2e", "convtasnet", "sudormrf", "twostep_step3")
E2E = ["step2.train_front_end=true", "step2.latent_weight=0", "step2.waveform_weight=1"]
# Sizes for the smoke test: seconds, not results.
TINY = [
    "data.segment=0.5", "data.val_segment=0.5", "data.num_workers=0",
    "front_end.n_filters=16", "front_end.kernel_size=16", "front_end.stride=8",
    "step1.batch_size=2", "step1.max_steps=4", "step1.val_every_n_steps=2", "step1.limit_val_batches=1",
    "masker.bn_chan=8", "masker.hid_chan=8", "masker.n_blocks=2", "masker.n_repeats=1",
    "masker_sudormrf.bn_chan=8", "masker_sudormrf.num_blocks=1", "masker_sudormrf.upsampling_depth=2",
    "step2.batch_size=2", "step2.max_steps=4", "step2.val_every_n_steps=2", "step2.limit_val_batches=1",
    "step2.ckpt_every_n_steps=2",
    "step3.batch_size=2", "step3.max_steps=4", "step3.val_every_n_steps=2", "step3.limit_val_batches=1",
    "step3.ckpt_every_n_steps=2",
    "trainer.accelerator=cpu", "trainer.devices=1", "trainer.strategy=auto", "trainer.compile=false",
]


def asteroid_model_args(conf, name):
    """``(model name, args)`` of an Asteroid baseline at the recipe's size."""
    fe, masker = conf["front_end"], conf["masker"]
    if name == "convtasnet":
        return "ConvTasNet", dict(n_filters=fe["n_filters"], kernel_size=fe["kernel_size"], stride=fe["stride"],
                                  bn_chan=masker["bn_chan"], hid_chan=masker["hid_chan"],
                                  skip_chan=masker["bn_chan"], n_blocks=masker["n_blocks"],
                                  n_repeats=masker["n_repeats"], conv_kernel_size=masker["conv_kernel_size"])
    if name == "sudormrf":
        # SuDORMRFNet's hop is kernel_size // 2 whatever its stride argument says.
        sudo = conf["masker_sudormrf"]
        return "SuDORMRFNet", dict(n_filters=fe["n_filters"], kernel_size=fe["kernel_size"],
                                   bn_chan=sudo["bn_chan"], num_blocks=sudo["num_blocks"],
                                   upsampling_depth=sudo["upsampling_depth"])
    raise ValueError(name)


def plan(system, seed_dir, conf):
    """The stages of ``system``: dicts with ``name``, ``exp_dir``, ``step``, ``args``, ``ends_at``
    (fraction of the budget at which the stage's training must stop), ``shared``."""
    step1 = {"name": "step1", "exp_dir": seed_dir / "step1", "step": "step1", "args": [], "shared": True}
    fe = ["--front_end", str(best_model_path(seed_dir / "step1"))]
    sys_dir = seed_dir / system
    if system == "twostep":
        return [step1, {"name": "step2", "exp_dir": sys_dir / "step2", "step": "step2", "args": fe}]
    if system == "twostep_frozen":
        return [step1, {"name": "step2", "exp_dir": sys_dir / "step2", "step": "step2",
                        "args": fe + ["step2.train_decoder=false"]}]
    if system == "twostep_step3":
        return [step1, {"name": "step2", "exp_dir": sys_dir / "step2", "step": "step2", "args": fe, "step3": True},
                {"name": "step3", "exp_dir": sys_dir / "step3", "step": "step3",
                 "args": ["--init", str(best_model_path(sys_dir / "step2"))]}]
    if system == "e2e":
        return [{"name": "e2e", "exp_dir": sys_dir / "e2e", "step": "step2", "args": E2E}]
    name, args = asteroid_model_args(conf, system)
    return [{"name": name, "exp_dir": sys_dir / name, "step": "asteroid",
             "args": ["--model", name, "--model_args", json.dumps(args)]}]


def stage_minutes(stage, budget, step1_fraction, step3_fraction, spent):
    """Training minutes left to ``stage`` once ``spent`` minutes of the budget are used."""
    if stage["name"] == "step1":
        end = step1_fraction * budget
    elif stage.get("step3"):
        end = (1.0 - step3_fraction) * budget
    else:
        end = budget
    return max(end - spent, 0.05)


def _timing_path(stage):
    return Path(stage["exp_dir"]) / "bench_timing.json"


def run_stage(stage, common, minutes, threads, log):
    """Run one stage (skipped when done); returns its timing ``{"start", "end"}`` (unix seconds)."""
    exp_dir = Path(stage["exp_dir"])
    timing = _timing_path(stage)
    if (exp_dir / "done").is_file() and timing.is_file():
        return json.loads(timing.read_text())
    if exp_dir.exists():
        log(f"  {exp_dir}: interrupted before; restarting it from scratch (honest wall time)")
        shutil.rmtree(exp_dir)
    section = {"step1": "step1", "step2": "step2", "step3": "step3", "asteroid": "step2"}[stage["step"]]
    cmd = [sys.executable, "-m", "twostep_asteroid.train", stage["step"], "--exp_dir", str(exp_dir),
           *common["args"], *stage["args"], *common["overrides"], f"{section}.max_minutes={minutes:.4f}"]
    if stage["step"] == "step3" and common["conf"]["step3"]["max_steps"] <= 0:
        cmd.append(f"step3.max_steps={common['conf']['step2']['max_steps']}")  # off in the confs: on here
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    exp_dir.mkdir(parents=True, exist_ok=True)
    log(f"  {stage['name']}: {minutes:.2f} min -> {exp_dir}")
    start = time.time()
    with open(exp_dir / "bench_train.log", "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO), env=env)
    end = time.time()
    if proc.returncode != 0 or not (exp_dir / "done").is_file():
        tail = (exp_dir / "bench_train.log").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    result = {"start": start, "end": end, "command": cmd}
    atomic_write_json(timing, result)
    return result


def read_points(exp_dir):
    """Validation points of one run: ``[{step, val_sisdri, time_unix, train_audio_s}]``.

    Lightning logs a validation's metrics at its own step count (one less than the optimizer
    steps at an epoch-end validation), the ``WallClock`` row comes right after at the true step;
    each ``val_sisdri`` row is paired with the clock row that follows it.
    """
    points = []
    for metrics in sorted(Path(exp_dir).glob("logs/version_*/metrics.csv"),
                          key=lambda p: int(p.parent.name.split("_")[-1])):
        pending = None
        with open(metrics) as f:
            for row in csv.DictReader(f):
                if row.get("val_sisdri") not in (None, ""):
                    pending = float(row["val_sisdri"])
                elif row.get("time_unix") not in (None, "") and pending is not None:
                    points.append({"step": int(row["step"]), "val_sisdri": pending,
                                   "time_unix": float(row["time_unix"]),
                                   "train_audio_s": float(row.get("train_audio_s") or 0.0)})
                    pending = None
    return points


def _stage_audio(exp_dir):
    """Training audio seconds of a finished stage: its steps times the audio per step."""
    summary = json.loads((Path(exp_dir) / "summary.json").read_text())
    steps = summary["global_step"]
    per_step = None
    for metrics in Path(exp_dir).glob("logs/version_*/metrics.csv"):
        with open(metrics) as f:
            for row in csv.DictReader(f):
                if row.get("train_audio_s") and int(row["step"]) > 0:
                    per_step = float(row["train_audio_s"]) / int(row["step"])
    return steps * per_step if per_step else 0.0, steps


def system_curve(stages, timings):
    """Points ``{stage, step, wall_min, audio_s, val_sisdri}`` of a system, with the earlier
    stages' wall time and audio added."""
    points, offset, audio_offset = [], 0.0, 0.0
    for stage, timing in zip(stages, timings):
        for p in read_points(stage["exp_dir"]):
            points.append({"stage": stage["name"], "step": p["step"],
                           "wall_min": (offset + p["time_unix"] - timing["start"]) / 60.0,
                           "audio_s": audio_offset + p.get("train_audio_s", 0.0),
                           "val_sisdri": p["val_sisdri"]})
        offset += timing["end"] - timing["start"]
        audio_offset += _stage_audio(stage["exp_dir"])[0]
    return points, offset / 60.0, audio_offset


def test_sisdri(model_path, data_dir, n_utterances, n_src, sample_rate):
    """Mean SI-SDRi (PIT) of a model over the first ``n_utterances`` mixtures of ``data_dir/tt``."""
    import torch
    from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr

    from twostep_asteroid.data.datasets import make_dataset
    from twostep_asteroid.evaluate import si_sdr_improvement
    from twostep_asteroid.inference import load_model

    model = load_model(str(model_path), device="cpu")
    dataset = make_dataset(Path(data_dir) / "tt", n_src=n_src, sample_rate=int(sample_rate), segment=None)
    pit = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")
    values = []
    with torch.inference_mode():
        for idx in range(min(n_utterances, len(dataset))):
            mix, sources = dataset[idx]
            mix, sources = mix.unsqueeze(0), sources.unsqueeze(0)
            _, est = pit(model(mix), sources, return_est=True)
            values.append(si_sdr_improvement(est, sources, mix).item())
    return sum(values) / len(values) if values else None


def _mean_std(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, std


def _fmt(mean, std, digits=2):
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


def summarize(rows, budget):
    """Per system, over seeds: mean ± std of each figure. ``rows``: one dict per (system, seed)."""
    out = {}
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        out[system] = {key: _mean_std([r[key] for r in mine])
                       for key in ("val_sisdri_at_budget", "val_sisdri_best", "wall_min", "audio_min", "steps",
                                   "n_params", "test_sisdri")}
        out[system]["seeds"] = [r["seed"] for r in mine]
    return out


def results_markdown(summary, budget, header):
    lines = [header, "",
             f"| system | val SI-SDRi within {budget:g} min (dB) | best val SI-SDRi (dB) | test SI-SDRi (dB) | "
             "wall (min) | training audio (min) | steps (last stage) | parameters | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for system, s in summary.items():
        n_params = s["n_params"][0]
        lines.append(f"| {system} | {_fmt(*s['val_sisdri_at_budget'])} | {_fmt(*s['val_sisdri_best'])} | "
                     f"{_fmt(*s['test_sisdri'])} | {_fmt(*s['wall_min'], 1)} | {_fmt(*s['audio_min'], 1)} | "
                     f"{_fmt(*s['steps'], 0)} | {'-' if n_params is None else f'{n_params / 1e3:.0f} k'} | "
                     f"{','.join(map(str, s['seeds']))} |")
    return "\n".join(lines) + "\n"


def plot_curves(curves, budget, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {}
    for (system, seed), points in curves.items():
        if not points:
            continue
        colour = colours.setdefault(system, f"C{len(colours)}")
        label = system if seed == min(s for (n, s) in curves if n == system) else None
        axes[0].plot([p["wall_min"] for p in points], [p["val_sisdri"] for p in points], "o-", ms=3,
                     color=colour, label=label)
        axes[1].plot([p["audio_s"] / 60 for p in points], [p["val_sisdri"] for p in points], "o-", ms=3,
                     color=colour, label=label)
    axes[0].axvline(budget, color="k", ls=":", lw=1)
    axes[0].set(xlabel="wall minutes (step 1 included)", ylabel="validation SI-SDRi (dB)",
                title="Quality per wall-clock minute")
    axes[1].set(xlabel="training audio (minutes, all stages)", ylabel="validation SI-SDRi (dB)",
                title="Quality per minute of training audio")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def run(args):
    # The trainings run as subprocesses from the repository root: paths given relative to the
    # caller's folder are made absolute first.
    args.data_dir = str(Path(args.data_dir).resolve())
    if args.conf:
        args.conf = str(Path(args.conf).resolve())
    args.out_dir = str(Path(args.out_dir).resolve())
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = (TINY if args.tiny else []) + list(args.overrides)
    if args.val_every:
        overrides += [f"step2.val_every_n_steps={args.val_every}", f"step3.val_every_n_steps={args.val_every}"]
    overrides.append(f"trainer.num_threads={args.threads}")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"Unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    seeds = [int(s) for s in str(args.seeds).split(",")]

    def log(message):
        print(message, flush=True)

    rows, curves = [], {}
    for seed in seeds:
        seed_dir = out_dir / f"seed{seed}"
        seed_overrides = overrides + [f"trainer.seed={seed}"]
        conf = load_config(args.conf, seed_overrides)  # fails here, naming the key, on a bad override
        common = {"conf": conf, "overrides": seed_overrides,
                  "args": ["--data_dir", str(args.data_dir)] + (["--conf", str(args.conf)] if args.conf else [])}
        for system in systems:
            log(f"[seed {seed}] {system}")
            stages = plan(system, seed_dir, conf)
            timings, spent = [], 0.0
            for stage in stages:
                minutes = stage_minutes(stage, args.budget_minutes, args.step1_fraction, args.step3_fraction, spent)
                timing = run_stage(stage, common, minutes, args.threads, log)
                timings.append(timing)
                spent += (timing["end"] - timing["start"]) / 60.0
            points, wall_min, audio_s = system_curve(stages, timings)
            curves[(system, seed)] = points
            last = Path(stages[-1]["exp_dir"])
            summary = json.loads((last / "summary.json").read_text())
            test_path = seed_dir / system / "test.json"
            test = None
            if args.test_utterances > 0:
                if test_path.is_file():
                    test = json.loads(test_path.read_text())["test_sisdri"]
                else:
                    test = test_sisdri(best_model_path(last), args.data_dir, args.test_utterances,
                                       conf["data"]["n_src"], conf["data"]["sample_rate"])
                    atomic_write_json(test_path, {"test_sisdri": test, "n_utterances": args.test_utterances})
            within = [p["val_sisdri"] for p in points if p["wall_min"] <= args.budget_minutes]
            rows.append({"system": system, "seed": seed,
                         "val_sisdri_at_budget": max(within) if within else None,
                         "val_sisdri_best": max((p["val_sisdri"] for p in points), default=None),
                         "wall_min": wall_min, "audio_min": audio_s / 60.0, "steps": summary["global_step"],
                         "n_params": summary.get("n_params_total"), "test_sisdri": test})
    atomic_write_csv(out_dir / "curves.csv",
                     [{"system": system, "seed": seed, **p} for (system, seed), points in curves.items() for p in points],
                     fieldnames=["system", "seed", "stage", "step", "wall_min", "audio_s", "val_sisdri"])
    summary = summarize(rows, args.budget_minutes)
    header = (f"Budget {args.budget_minutes:g} min per system, {args.threads} thread(s) per process, seeds "
              f"{','.join(map(str, seeds))}, conf {args.conf or 'defaults'}"
              + (f", overrides {' '.join(args.overrides)}" if args.overrides else "")
              + (", --tiny" if args.tiny else "") + f"; test: first {args.test_utterances} mixtures of tt/.")
    atomic_write_json(out_dir / "results.json", {"budget_minutes": args.budget_minutes, "rows": rows,
                                                 "summary": {k: {m: list(v) if isinstance(v, tuple) else v
                                                                 for m, v in s.items()} for k, s in summary.items()}})
    table = results_markdown(summary, args.budget_minutes, header)
    atomic_write_text(out_dir / "results.md", table)
    plot_curves(curves, args.budget_minutes, out_dir / "curves.png")
    print(table)
    return rows


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder with tr/ cv/ tt/ manifests")
    parser.add_argument("--out_dir", default="bench/results/quality_per_minute")
    parser.add_argument("--conf", help="recipe YAML applied to every system (default: the schema's defaults)")
    parser.add_argument("--budget_minutes", type=float, default=30.0, help="wall budget of each system")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated trainer seeds")
    parser.add_argument("--threads", type=int, default=1, help="trainer.num_threads and OMP_NUM_THREADS of each process")
    parser.add_argument("--step1_fraction", type=float, default=0.2, help="step 1's share of the budget, at most")
    parser.add_argument("--step3_fraction", type=float, default=0.25, help="step 3's share (twostep_step3)")
    parser.add_argument("--val_every", type=int, default=None, help="validation interval (steps) of steps 2 and 3")
    parser.add_argument("--test_utterances", type=int, default=100, help="test mixtures scored per system (0: none)")
    parser.add_argument("--tiny", action="store_true", help="tiny models and data settings (the smoke test)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, for every system")
    return parser


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
