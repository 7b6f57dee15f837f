"""The paper's two comparisons as tables: front-end oracle bounds, and two-step versus end to end.

``python -m twostep_asteroid.compare frontends --data_dir data/prompts/json/tt --out_dir DIR
[--front_ends exp/.../step1/best_model.pth ...] [--windows 16 32 64 128 256 512] [--masks irm softmax binary]``
    Oracle SI-SDRi, on the same test mixtures, of STFT masks at several window sizes (Hann window,
    hop = window / 2, or window / ``--hop_divisor``) and of learned step-1 front ends, each with the
    oracle masks ``irm`` (ratio), ``softmax`` (over sources: the paper's latent mask) and ``binary``
    (argmax). Writes
    ``frontends.csv`` (one row per system and mask: mean, std and number of mixtures),
    ``frontends_per_utterance.csv``, ``frontends.md`` (a markdown table), ``frontends.png`` and
    ``report.html`` (the page with them, :func:`twostep_asteroid.report.comparison_report`).

``python -m twostep_asteroid.compare runs RUN_DIR [RUN_DIR ...] --out_dir DIR``
    One table of finished step-2 runs (a ``RUN_DIR`` is a ``train step2 --exp_dir``: ``conf.yml``,
    ``summary.json``, and the ``results.json`` of ``python -m twostep_asteroid.evaluate`` in
    ``RUN_DIR/eval/``, ``RUN_DIR/`` or ``RUN_DIR/../eval/``): system (two-step or end-to-end), dynamic
    mixing, seed, steps, test SI-SDRi; mean +- std over seeds; the paired differences two-step -
    end-to-end and dynamic mixing on - off, seed by seed. Writes ``runs.csv``, ``runs_summary.csv``,
    ``runs.md``, ``runs.png`` and ``report.html`` (tables, plot, and links to each run's evaluation page).

References
    Tzinis et al., "Two-Step Sound Source Separation: Training on Learned Latent Targets",
    ICASSP 2020, arXiv:1910.09804.
"""
import argparse
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import yaml

from .fileio import atomic_savefig, atomic_write_csv, atomic_write_text
from .metrics import si_sdr_improvement
from .report import REPORT_NAME, comparison_report
from .serialization import BEST_MODEL_NAME
from .targets import MASK_TYPES, check_mask_types, front_end_oracle_separation, stft_oracle_separation
from .utterances import iter_utterances, utterance_id

log = logging.getLogger("twostep_asteroid.compare")

DEFAULT_WINDOWS = (16, 32, 64, 128, 256, 512)
TWO_STEP, END_TO_END = "two-step", "end-to-end"


# ----------------------------------------------------------------------------------------------
# Front-end oracle comparison
# ----------------------------------------------------------------------------------------------
@dataclass
class OracleSystem:
    """A front end whose oracle masks are scored: an STFT or a learned step-1 front end.

    Attributes:
        name (str): Label in the tables.
        kind (str): ``"stft"`` or ``"learned"``.
        n_bases (int): Number of bases (STFT: frequency bins ``window // 2 + 1``; learned: N).
        window (int): Window / filter length in samples (L).
        hop (int): Hop in samples.
        separate (callable): ``separate(mixture [B, T], sources [B, C, T], masks) -> {mask: [B, C, T]}``,
            one analysis of the mixture and sources for all the masks.
        steps (int, optional): Step-1 training steps of a learned front end.
        sample_rate (float, optional): Sample rate a learned front end was trained at.
    """

    name: str
    kind: str
    n_bases: int
    window: int
    hop: int
    separate: Callable
    steps: Optional[int] = None
    sample_rate: Optional[float] = None


def stft_system(window, hop=None):
    """STFT oracle masks with a Hann window of ``window`` samples.

    Args:
        window (int): Window length = FFT size, in samples.
        hop (int, optional): Hop; defaults to ``window // 2`` (50 % overlap, as the learned front ends).

    Returns:
        OracleSystem: Separation by :func:`~twostep_asteroid.targets.stft_oracle_separation`.
    """
    hop = hop or window // 2

    def separate(mixture, sources, masks):
        return stft_oracle_separation(mixture, sources, n_fft=window, hop=hop, mask=tuple(masks))

    return OracleSystem(f"STFT {window}/{hop}", "stft", window // 2 + 1, window, hop, separate)


def learned_system(front_end, name=None, steps=None):
    """Oracle masks in a learned front end's latent space.

    Args:
        front_end (TwoStepFrontEnd or str): The front end, or a path to its ``best_model.pth`` (anything
            :meth:`TwoStepFrontEnd.from_pretrained` takes). For a path, the training steps are read
            from the ``summary.json`` beside it when there is one.
        name (str, optional): Label; defaults to ``"learned N=.. L=.."``.
        steps (int, optional): Training steps, for the tables.

    Returns:
        OracleSystem: Separation by :func:`~twostep_asteroid.targets.front_end_oracle_separation`.
    """
    from .models import TwoStepFrontEnd

    if isinstance(front_end, (str, os.PathLike)):
        summary = Path(front_end).parent / "summary.json"
        if steps is None and summary.is_file():
            steps = json.loads(summary.read_text()).get("global_step")
        front_end = TwoStepFrontEnd.from_pretrained(str(front_end))
    front_end = front_end.eval()
    fb = front_end.encoder.filterbank

    def separate(mixture, sources, masks):
        return front_end_oracle_separation(front_end, mixture, sources, mask=tuple(masks))

    name = name or f"learned N={fb.n_filters} L={fb.kernel_size}"
    return OracleSystem(name, "learned", fb.n_filters, fb.kernel_size, fb.stride, separate, steps, fb.sample_rate)


@torch.inference_mode()
def oracle_scores(systems, dataset, masks=MASK_TYPES, max_items=None):
    """Per-utterance oracle SI-SDRi of every system and mask on the same mixtures.

    Args:
        systems (list of OracleSystem): The front ends to score.
        dataset: Items ``(mixture [T], sources [n_src, T])``, whole utterances.
        masks (tuple of str): Oracle masks, see :func:`~twostep_asteroid.targets.oracle_masks`.
        max_items (int, optional): Score only the first ``max_items`` mixtures.

    Returns:
        list of dict: One row per (utterance, system, mask): ``utt_id``, ``system``, ``mask``,
        ``si_sdr_imp`` (dB, sources in order: oracles need no permutation).
    """
    masks = check_mask_types(masks)
    rows = []
    for idx, mix, sources in iter_utterances(dataset, max_items):
        utt = utterance_id(dataset, idx)
        for system in systems:
            for mask, est in system.separate(mix, sources, masks).items():  # one analysis per system
                rows.append({"utt_id": utt, "system": system.name, "mask": mask,
                             "si_sdr_imp": si_sdr_improvement(est, sources, mix).item()})
    if not rows:
        raise ValueError("The test set is empty: nothing to compare.")
    return rows


def summarize_oracles(rows, systems):
    """Mean, standard deviation and count of the oracle SI-SDRi per system and mask.

    Args:
        rows (list of dict): Output of :func:`oracle_scores`.
        systems (list of OracleSystem): The systems, in the order of the table.

    Returns:
        list of dict: ``system, kind, n_bases, window, hop, steps, mask, si_sdr_imp, std, n_utts``.
    """
    summary = []
    for system in systems:
        for mask in dict.fromkeys(r["mask"] for r in rows):
            values = [r["si_sdr_imp"] for r in rows if r["system"] == system.name and r["mask"] == mask]
            if not values:
                continue
            summary.append({"system": system.name, "kind": system.kind, "n_bases": system.n_bases,
                            "window": system.window, "hop": system.hop, "steps": system.steps, "mask": mask,
                            "si_sdr_imp": float(np.mean(values)), "std": float(np.std(values)),
                            "n_utts": len(values)})
    return summary


def best_oracles(summary, learned_mask="softmax"):
    """The best STFT oracle (any window and mask) and the best learned one (``learned_mask``).

    Args:
        summary (list of dict): Output of :func:`summarize_oracles`.
        learned_mask (str): Mask of the learned front ends to compare (the paper's: softmax).

    Returns:
        dict: ``{"stft": row or None, "learned": row or None, "margin": learned - stft (dB) or None}``.
    """
    stft = [r for r in summary if r["kind"] == "stft"]
    learned = [r for r in summary if r["kind"] == "learned" and r["mask"] == learned_mask]
    best_stft = max(stft, key=lambda r: r["si_sdr_imp"]) if stft else None
    best_learned = max(learned, key=lambda r: r["si_sdr_imp"]) if learned else None
    margin = (best_learned["si_sdr_imp"] - best_stft["si_sdr_imp"]) if best_stft and best_learned else None
    return {"stft": best_stft, "learned": best_learned, "margin": margin}


def frontends_markdown(summary):
    """Markdown table of :func:`summarize_oracles`: one row per front end, one column per mask.

    Returns:
        str: The table, followed by the best STFT and best learned (softmax) oracles.
    """
    masks = list(dict.fromkeys(r["mask"] for r in summary))
    systems = list(dict.fromkeys(r["system"] for r in summary))
    cell = {(r["system"], r["mask"]): r for r in summary}
    header = ["Front end", "bases", "L (samples)", "hop", "step-1 steps"] + [f"{m} (dB)" for m in masks]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in systems:
        first = next(r for r in summary if r["system"] == name)
        steps = "—" if first["steps"] is None else str(first["steps"])
        values = [f"{cell[name, m]['si_sdr_imp']:.2f}" if (name, m) in cell else "—" for m in masks]
        lines.append("| " + " | ".join([name, str(first["n_bases"]), str(first["window"]), str(first["hop"]), steps]
                                       + values) + " |")
    n_utts = sorted({r["n_utts"] for r in summary})
    text = "\n".join(lines) + f"\n\nMean oracle SI-SDRi over {', '.join(map(str, n_utts))} test mixtures. " \
        "STFT: Hann window, FFT size = window; bases = frequency bins.\n"
    best = best_oracles(summary)
    if best["stft"]:
        text += f"\nBest STFT oracle: {best['stft']['si_sdr_imp']:.2f} dB ({best['stft']['system']}, " \
                f"{best['stft']['mask']}).\n"
    if best["learned"]:
        text += f"Best learned oracle (softmax, the paper's mask): {best['learned']['si_sdr_imp']:.2f} dB " \
                f"({best['learned']['system']}).\n"
    if best["margin"] is not None:
        verdict = "above" if best["margin"] > 0 else "NOT above"
        text += f"Learned - best STFT: {best['margin']:+.2f} dB: the learned front end's oracle is {verdict} " \
                "the best STFT oracle.\n"
    return text


def plot_frontends(summary, path):
    """PNG: oracle SI-SDRi against window length, one panel per mask; STFT and learned (one line per N).

    Args:
        summary (list of dict): Output of :func:`summarize_oracles`.
        path (str or Path): The PNG to write (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    masks = list(dict.fromkeys(r["mask"] for r in summary))
    fig, axes = plt.subplots(1, len(masks), figsize=(4.2 * len(masks), 3.8), sharey=True, squeeze=False)
    curves = {}  # (mask, n_bases or -1 for the STFT) -> [(window, SI-SDRi)]
    for r in summary:
        curves.setdefault((r["mask"], -1 if r["kind"] == "stft" else int(r["n_bases"])), []).append(
            (int(r["window"]), float(r["si_sdr_imp"])))
    for ax, mask in zip(axes[0], masks):
        for (m, n_bases), points in sorted(curves.items()):
            if m != mask:
                continue
            label = "STFT" if n_bases < 0 else f"learned N={n_bases}"
            points.sort()
            style = dict(color="k", marker="s", ls="--") if label == "STFT" else dict(marker="o")
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, **style)
        ax.set_xscale("log", base=2)
        ax.set(title=f"{mask} mask", xlabel="window / filter length L (samples)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("oracle SI-SDRi (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def compare_frontends(dataset, systems, out_dir, masks=MASK_TYPES, max_items=None):
    """Score every system's oracle masks on ``dataset`` and write the CSVs, the table and the plot.

    Args:
        dataset: Test items ``(mixture [T], sources [n_src, T])``.
        systems (list of OracleSystem): e.g. :func:`stft_system` and :func:`learned_system` outputs.
        out_dir (str or Path): Where ``frontends.csv``, ``frontends_per_utterance.csv``,
            ``frontends.md``, ``frontends.png`` and ``report.html`` go.
        masks (tuple of str): Oracle masks.
        max_items (int, optional): Only the first ``max_items`` mixtures.

    Returns:
        list of dict: The summary (:func:`summarize_oracles`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = oracle_scores(systems, dataset, masks, max_items)
    summary = summarize_oracles(rows, systems)
    atomic_write_csv(out_dir / "frontends_per_utterance.csv", rows)
    atomic_write_csv(out_dir / "frontends.csv", summary)
    atomic_write_text(out_dir / "frontends.md", frontends_markdown(summary))
    plot_frontends(summary, out_dir / "frontends.png")
    comparison_report(out_dir)
    return summary


# ----------------------------------------------------------------------------------------------
# Runs table: two-step versus end to end, dynamic mixing on/off, over seeds
# ----------------------------------------------------------------------------------------------
def find_results(run_dir):
    """The evaluation ``results.json`` of a step-2 run: ``eval/``, the run itself, or ``../eval/``.

    Returns:
        Path: The first that exists.

    Raises:
        FileNotFoundError: Naming the places looked at.
    """
    run_dir = Path(run_dir)
    candidates = [run_dir / "eval" / "results.json", run_dir / "results.json", run_dir.parent / "eval" / "results.json"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"No evaluation results for {run_dir}: looked for "
                            f"{', '.join(map(str, candidates))}. Run python -m twostep_asteroid.evaluate first.")


def load_run(run_dir):
    """One row of the runs table from a finished step-2 experiment folder.

    Args:
        run_dir (str or Path): A ``train step2 --exp_dir`` with ``conf.yml``, ``summary.json``
            (and ``done``), and an evaluation ``results.json`` (see :func:`find_results`).

    Returns:
        dict: ``run, system, dynamic_mixing, seed, steps, max_steps, front_end_steps, train_minutes,
        si_sdr_imp, n_utts``. ``system`` is ``"end-to-end"`` when ``step2.train_front_end`` is true,
        else ``"two-step"``; ``front_end_steps`` comes from ``../step1/summary.json`` when present.
    """
    run_dir = Path(run_dir)
    for name in ("conf.yml", "summary.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} is missing: is {run_dir} a finished step-2 run?")
    conf = yaml.safe_load((run_dir / "conf.yml").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    results = json.loads(find_results(run_dir).read_text())
    step1 = run_dir.parent / "step1" / "summary.json"
    end_to_end = bool(conf["step2"]["train_front_end"])
    return {
        "run": str(run_dir),
        "system": END_TO_END if end_to_end else TWO_STEP,
        "dynamic_mixing": bool(conf["data"]["dynamic_mixing"]),
        "seed": int(conf["trainer"]["seed"]),
        "steps": int(summary["global_step"]),
        "max_steps": int(conf["step2"]["max_steps"]),
        "front_end_steps": (json.loads(step1.read_text()).get("global_step")
                            if step1.is_file() and not end_to_end else None),
        "train_minutes": round(summary.get("train_seconds", float("nan")) / 60, 2),
        "si_sdr_imp": float(results["si_sdr_imp"]),
        "n_utts": int(results.get("n_utterances", 0)),
    }


def mean_std(values):
    """Mean and sample standard deviation (``ddof=1``; NaN for fewer than 2 values).

    Returns:
        tuple: ``(mean, std, n)``.
    """
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        return float("nan"), float("nan"), 0
    std = float(np.std(values, ddof=1)) if values.size > 1 else float("nan")
    return float(np.mean(values)), std, int(values.size)


def aggregate_runs(rows):
    """Mean +- std of the test SI-SDRi over seeds, per (system, dynamic mixing).

    Returns:
        list of dict: ``system, dynamic_mixing, si_sdr_imp, std, n_seeds, seeds, steps``.
    """
    groups = {}
    for r in rows:
        groups.setdefault((r["system"], r["dynamic_mixing"]), []).append(r)
    out = []
    for (system, dm), runs in sorted(groups.items(), key=lambda kv: (kv[0][0] != TWO_STEP, not kv[0][1])):
        mean, std, n = mean_std(r["si_sdr_imp"] for r in runs)
        out.append({"system": system, "dynamic_mixing": dm, "si_sdr_imp": mean, "std": std, "n_seeds": n,
                    "seeds": " ".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"])),
                    "steps": " ".join(sorted({str(r["steps"]) for r in runs}, key=int))})
    return out


def paired_differences(rows, key, a, b, group_key):
    """Seed-by-seed differences ``a - b`` of the test SI-SDRi between values of ``key``.

    Args:
        rows (list of dict): Output of :func:`load_run` for each run.
        key (str): What differs within a pair (``"system"`` or ``"dynamic_mixing"``).
        a, b: The two values of ``key`` compared (``a - b``).
        group_key (str): What a pair shares besides the seed (``"dynamic_mixing"`` or ``"system"``).

    Returns:
        list of dict: Per value of ``group_key`` with pairs: ``comparison, group, mean, std,
        n_pairs, per_seed`` (``"seed:diff"``, space-separated) and ``same_steps`` (whether every
        pair trained for the same number of steps).
    """
    out = []
    for group in sorted({r[group_key] for r in rows}, key=str, reverse=True):
        by_seed = {}
        for r in rows:
            if r[group_key] == group and r[key] in (a, b):
                by_seed.setdefault(r["seed"], {})[r[key]] = r
        pairs = {s: v for s, v in sorted(by_seed.items()) if a in v and b in v}
        if not pairs:
            continue
        diffs = {s: v[a]["si_sdr_imp"] - v[b]["si_sdr_imp"] for s, v in pairs.items()}
        mean, std, n = mean_std(diffs.values())
        out.append({"comparison": f"{_label(key, a)} - {_label(key, b)}", "group": _label(group_key, group),
                    "mean": mean, "std": std, "n_pairs": n,
                    "per_seed": " ".join(f"{s}:{d:+.2f}" for s, d in diffs.items()),
                    "same_steps": all(v[a]["steps"] == v[b]["steps"] for v in pairs.values())})
    return out


def _label(key, value):
    if key == "dynamic_mixing":
        return f"dynamic mixing {'on' if value else 'off'}"
    return str(value)


def _pm(mean, std, signed=True):
    """``"+1.50 ± 0.71"`` (``"+1.50"`` without a std, ``"—"`` without a mean)."""
    if not math.isfinite(mean):
        return "—"
    text = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return text if not math.isfinite(std) else f"{text} ± {std:.2f}"


def runs_markdown(rows, groups, diffs):
    """Markdown: the runs, the mean +- std per system, and the paired differences.

    Args:
        rows (list of dict): :func:`load_run` rows.
        groups (list of dict): :func:`aggregate_runs` output.
        diffs (list of dict): :func:`paired_differences` outputs, concatenated.

    Returns:
        str: Three markdown tables.
    """
    lines = ["| System | Dynamic mixing | Seed | Step-2 steps (max) | Step-1 steps | Train (min) | "
             "Test SI-SDRi (dB) | Test mixtures |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["system"] != TWO_STEP, not r["dynamic_mixing"], r["seed"])):
        fe = "—" if r["front_end_steps"] is None else str(r["front_end_steps"])
        lines.append(f"| {r['system']} | {'on' if r['dynamic_mixing'] else 'off'} | {r['seed']} | "
                     f"{r['steps']} ({r['max_steps']}) | {fe} | {r['train_minutes']:.1f} | {r['si_sdr_imp']:.2f} | "
                     f"{r['n_utts']} |")
    lines += ["", "| System | Dynamic mixing | Test SI-SDRi, mean ± std over seeds (dB) | Seeds | Steps |",
              "|---|---|---|---|---|"]
    for g in groups:
        lines.append(f"| {g['system']} | {'on' if g['dynamic_mixing'] else 'off'} | "
                     f"{_pm(g['si_sdr_imp'], g['std'], signed=False)} | {g['seeds']} | {g['steps']} |")
    if diffs:
        lines += ["", "| Paired difference (same seed) | For | Mean ± std (dB) | Pairs | Per seed | Same steps |",
                  "|---|---|---|---|---|---|"]
        for d in diffs:
            lines.append(f"| {d['comparison']} | {d['group']} | {_pm(d['mean'], d['std'])} | {d['n_pairs']} | "
                         f"{d['per_seed']} | {'yes' if d['same_steps'] else 'NO'} |")
    lines.append("\nStd: sample standard deviation over seeds (— with one seed). Step-1 steps: the two-step "
                 "front end's training, on top of step 2; end to end trains everything in its step-2 steps.")
    return "\n".join(lines) + "\n"


def runs_table(run_dirs, out_dir=None):
    """The runs table of finished step-2 runs; written to ``out_dir`` when given.

    Args:
        run_dirs (list of str or Path): Step-2 experiment folders (see :func:`load_run`).
        out_dir (str or Path, optional): Where ``runs.csv`` (one row per run),
            ``runs_summary.csv`` (means and paired differences), ``runs.md``, ``runs.png`` and
            ``report.html`` go.

    Returns:
        str: The markdown tables.
    """
    if not run_dirs:
        raise ValueError("No runs given.")
    rows = [load_run(d) for d in run_dirs]
    groups = aggregate_runs(rows)
    diffs = (paired_differences(rows, "system", TWO_STEP, END_TO_END, "dynamic_mixing")
             + paired_differences(rows, "dynamic_mixing", True, False, "system"))
    text = runs_markdown(rows, groups, diffs)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out_dir / "runs.csv", rows)
        summary = ([{"what": "mean", "system": g["system"], "dynamic_mixing": g["dynamic_mixing"],
                     "si_sdr_imp": g["si_sdr_imp"], "std": g["std"], "n": g["n_seeds"], "detail": g["seeds"]}
                    for g in groups]
                   + [{"what": "paired difference", "system": d["comparison"], "dynamic_mixing": d["group"],
                       "si_sdr_imp": d["mean"], "std": d["std"], "n": d["n_pairs"], "detail": d["per_seed"]}
                      for d in diffs])
        atomic_write_csv(out_dir / "runs_summary.csv", summary)
        atomic_write_text(out_dir / "runs.md", text)
        plot_runs(rows, out_dir / "runs.png")
        reports = [(f"{r['system']}, dynamic mixing {'on' if r['dynamic_mixing'] else 'off'}, seed {r['seed']}: "
                    f"{r['run']}", find_results(r["run"]).parent / REPORT_NAME) for r in rows]
        comparison_report(out_dir, run_reports=reports)
    return text


def plot_runs(rows, path):
    """PNG: the test SI-SDRi of every run (one dot per seed) and the mean, per system and dynamic mixing.

    Args:
        rows (list of dict): :func:`load_run` rows.
        path (str or Path): The PNG to write (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = aggregate_runs(rows)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(groups), 3.6))
    for x, g in enumerate(groups):
        values = [r for r in rows if r["system"] == g["system"] and r["dynamic_mixing"] == g["dynamic_mixing"]]
        ax.scatter([x] * len(values), [r["si_sdr_imp"] for r in values], color="tab:blue", zorder=3)
        for r in values:
            ax.annotate(f"seed {r['seed']}", (x, r["si_sdr_imp"]), xytext=(6, 0), textcoords="offset points",
                        fontsize=7, va="center")
        ax.hlines(g["si_sdr_imp"], x - 0.25, x + 0.25, color="k", lw=2, zorder=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g['system']}\nDM {'on' if g['dynamic_mixing'] else 'off'}" for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set(ylabel="test SI-SDRi (dB)", title="Runs (dots) and mean over seeds (bars)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _frontends_main(args):
    from .data.datasets import make_dataset

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    systems = [stft_system(w, max(1, w // args.hop_divisor)) for w in args.windows]
    systems += [learned_system(p) for p in args.front_ends]
    learned = [s for s in systems if s.kind == "learned"]
    names = [s.name for s in learned]
    for system, path in zip(learned, args.front_ends):
        if names.count(system.name) > 1:  # same N and L: tell them apart by their folder
            system.name = f"{system.name} ({Path(path).parent})"
        if system.sample_rate is not None and int(system.sample_rate) != args.sample_rate:
            raise SystemExit(f"{path} works at {system.sample_rate:g} Hz, not --sample_rate {args.sample_rate}.")
    dataset = make_dataset(args.data_dir, n_src=args.n_src, sample_rate=args.sample_rate, segment=None)
    summary = compare_frontends(dataset, systems, args.out_dir, masks=args.masks, max_items=args.max_utterances)
    print(frontends_markdown(summary))


UNSEEN_COLUMNS = ("si_sdr_imp", "oracle_latent_si_sdr_imp", "oracle_stft_irm_si_sdr_imp")


def unseen_table(eval_dirs, out_dir=None):
    """One row per evaluated run and test set (seen, and each unseen-speaker set nested in its
    ``results.json``): the noise added to the test set, model, learned-front-end oracle and STFT
    oracle SI-SDRi.

    Args:
        eval_dirs (list): ``exp/<tag>/eval`` folders; a run is named by its tag.
        out_dir (str, optional): write ``unseen.csv`` and ``unseen.md`` here.

    Returns:
        str: The markdown table.
    """
    from .data.mixing import noise_label
    from .evaluate import result_sets

    rows = []
    for eval_dir in eval_dirs:
        results = json.loads((Path(eval_dir) / "results.json").read_text())
        for name, block in result_sets(results):
            rows.append({"run": Path(eval_dir).parent.name, "test_set": name,
                         "noise": noise_label(results.get("noise")), "n_utterances": block.get("n_utterances"),
                         **{k: block.get(k, float("nan")) for k in UNSEEN_COLUMNS}})
    if not rows:
        raise SystemExit("No results.json in the given folders: run stage 3 first.")
    lines = ["| Run | Test speakers | Noise | Mixtures | SI-SDRi (dB) | Oracle: learned front end (dB) | "
             "Oracle: STFT IRM (dB) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['test_set']} | {r['noise']} | {r['n_utterances']} | "
                     + " | ".join(f"{r[k]:.2f}" for k in UNSEEN_COLUMNS) + " |")
    table = "\n".join(lines) + "\n"
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_csv(Path(out_dir) / "unseen.csv", rows)
        atomic_write_text(Path(out_dir) / "unseen.md", table)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fe = sub.add_parser("frontends", help="oracle SI-SDRi of STFT and learned front ends")
    fe.add_argument("--data_dir", required=True, help="test manifests folder (mix.json, s1.json...)")
    fe.add_argument("--out_dir", required=True)
    fe.add_argument("--front_ends", nargs="*", default=[], help=f"step-1 {BEST_MODEL_NAME} files")
    fe.add_argument("--windows", nargs="*", type=int, default=list(DEFAULT_WINDOWS),
                    help="STFT window sizes in samples")
    fe.add_argument("--hop_divisor", type=int, default=2, help="STFT hop = window / hop_divisor")
    fe.add_argument("--masks", nargs="+", choices=MASK_TYPES, default=list(MASK_TYPES))
    fe.add_argument("--max_utterances", type=int, default=None)
    fe.add_argument("--n_src", type=int, default=2)
    fe.add_argument("--sample_rate", type=int, default=8000)
    fe.add_argument("--num_threads", type=int, default=None, help="torch intra-op threads")
    runs = sub.add_parser("runs", help="table of finished step-2 runs (two-step / end-to-end, seeds)")
    runs.add_argument("run_dirs", nargs="+", help="step-2 experiment folders")
    runs.add_argument("--out_dir", help="write runs.csv, runs_summary.csv and runs.md here")
    unseen = sub.add_parser("unseen", help="seen and unseen-speaker SI-SDRi of evaluated runs")
    unseen.add_argument("eval_dirs", nargs="+", help="exp/<tag>/eval folders")
    unseen.add_argument("--out_dir", help="write unseen.csv and unseen.md here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "frontends":
        _frontends_main(args)
    elif args.command == "unseen":
        print(unseen_table(args.eval_dirs, args.out_dir))
    else:
        print(runs_table(args.run_dirs, args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
