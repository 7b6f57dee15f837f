"""Evaluation of TwoStep models and front ends: per-utterance metrics, tables, plots, examples.

``python -m twostep_asteroid.evaluate --model exp/tag/step2/best_model.pth --data_dir data/.../json/tt
--out_dir exp/tag/eval`` writes ``metrics.csv`` (one row per utterance), ``results.json`` (means),
``results.md`` (a markdown table), ``examples/`` (mixture, estimates and references of a few test
mixtures as wav: the best, median and worst SI-SDRi...), ``report.png`` (the learned filters'
frequency responses and the SI-SDRi histogram) and ``report.html``, the page that shows it all
(:mod:`twostep_asteroid.report`).

``--unseen_dir data/.../json/tt_unseen`` (repeatable) also evaluates test sets of speakers the
model never heard: each in ``out_dir/<name>/`` (``name``: the folder's name without ``tt_``, e.g.
``unseen``, ``codec2``), its means nested under ``results.json["<name>"]`` (the seen test's keys
stay at the top level), and one table of all test sets in ``results.md``.

Noise (the noisy variant of a clean corpus, :mod:`twostep_asteroid.data.datasets`): the test sets
get the noise of the configuration's ``data.noise`` and ``data.noise_snr_db`` (``--conf``: the
run's frozen ``conf.yml``), or of ``--noise pink --noise_snr_db 0 10``, which override it (``--noise
none``: clean), so that any model can be scored on the noisy test set. Its seed is
``data.corpus_seed``, so every model is scored on the same noisy mixtures. The noisy mixture is the
models' input and the baseline of the improvements; the references are the clean speakers.
``results.json`` records it: ``"noise": {"color": "pink", "snr_db": [0.0, 10.0]}`` or ``null``.
"""
import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr

from .data.mixing import noise_label, noise_record
from .fileio import atomic_savefig, atomic_write_csv, atomic_write_json, atomic_write_text
from .metrics import si_sdr_improvement
from .serialization import BEST_MODEL_NAME
from .targets import front_end_oracle_separation, stft_oracle_separation
from .utterances import count_utterances, iter_utterances, utterance_id

log = logging.getLogger("twostep_asteroid.evaluate")


@torch.inference_mode()
def front_end_oracle(front_end, dataset, max_items=None, mask="softmax"):
    """Mean oracle SI-SDRi of a front end's ideal latent masks over ``dataset`` (dB).

    ``mask`` is the oracle mask (``"softmax"``: the paper's, see
    :func:`~twostep_asteroid.targets.front_end_oracle_separation`)."""
    front_end = front_end.eval()
    values = []
    for _, mix, sources in iter_utterances(dataset, max_items):
        est = front_end_oracle_separation(front_end, mix, sources, mask=mask)
        values.append(si_sdr_improvement(est, sources, mix).item())
    return float(np.mean(values))


def _score(job):
    """Metrics of one utterance (runs in a worker process: mir_eval's SDR is the slow part)."""
    from asteroid.metrics import get_metrics

    mix, sources, est, sample_rate, metrics_list = job
    scores = get_metrics(mix, sources, est, sample_rate=sample_rate, metrics_list=list(metrics_list),
                         ignore_metrics_errors=True)
    row = {}
    for metric in metrics_list:
        value, base = scores.get(metric), scores.get(f"input_{metric}")
        row[metric] = float(value) if value is not None else float("nan")
        row[f"{metric}_imp"] = float(value - base) if value is not None and base is not None else float("nan")
    return row


@torch.inference_mode()
def _separate_all(model, dataset, max_items, stft_n_fft):
    pit = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")
    n = count_utterances(dataset, max_items)
    for idx, mix, sources in tqdm(iter_utterances(dataset, max_items), total=n, desc="separate", unit="utt"):
        est = model(mix)
        _, est = pit(est, sources, return_est=True)
        oracle = model.front_end(mix, sources)["estimates"][:, : sources.shape[1]]
        irm = stft_oracle_separation(mix, sources, n_fft=stft_n_fft, mask="irm")
        yield idx, mix[0].numpy(), sources[0].numpy(), est[0].numpy(), {
            "oracle_latent_si_sdr_imp": si_sdr_improvement(oracle, sources, mix).item(),
            "oracle_stft_irm_si_sdr_imp": si_sdr_improvement(irm, sources, mix).item(),
        }


def evaluate_model(model, dataset, out_dir, metrics_list=("si_sdr", "sdr", "stoi", "pesq"),
                   n_examples=4, stft_n_fft=256, max_items=None, num_workers=2):
    """Separate every mixture of ``dataset`` and score it; write CSV/JSON/markdown/plots/examples.

    Besides the model, each row has the oracle SI-SDRi of the model's front end (ideal latent
    masks) and of an STFT ideal ratio mask on the same mixture. The metrics (asteroid's
    ``get_metrics``, i.e. pb_bss_eval) are computed in ``num_workers`` processes. The
    ``n_examples`` listening examples span the SI-SDRi ranking (best, median, worst...: see
    :func:`~twostep_asteroid.report.write_examples`).

    Returns:
        dict: The means written to ``results.json``.
    """
    import multiprocessing

    from .report import write_examples

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    sample_rate = int(model.sample_rate)
    rows, jobs = [], []
    for idx, mix, sources, est, oracles in _separate_all(model, dataset, max_items, stft_n_fft):
        rows.append({"utt_id": utterance_id(dataset, idx), **oracles})
        jobs.append((mix, sources, est, sample_rate, tuple(metrics_list)))
    if not rows:
        raise ValueError("The test set is empty: nothing to evaluate.")
    if num_workers > 1:
        with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
            scores = list(tqdm(pool.imap(_score, jobs, chunksize=4), total=len(jobs), desc="metrics", unit="utt"))
    else:
        scores = [_score(job) for job in tqdm(jobs, desc="metrics", unit="utt")]
    rows = [{"utt_id": row["utt_id"], **score, **{k: v for k, v in row.items() if k != "utt_id"}}
            for row, score in zip(rows, scores)]
    means = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if k != "utt_id"}
    means["n_utterances"] = len(rows)
    means["noise"] = getattr(dataset, "noise_info", None)
    atomic_write_csv(out_dir / "metrics.csv", rows)
    write_examples(out_dir / "examples", [{"utt_id": row["utt_id"], "mixture": job[0], "sources": job[1],
                                           "estimates": job[2], "scores": row} for row, job in zip(rows, jobs)],
                   sample_rate, n_examples)
    atomic_write_json(out_dir / "results.json", means)
    atomic_write_text(out_dir / "results.md", results_markdown(means))
    plot_report(model, [r["si_sdr_imp"] for r in rows], out_dir / "report.png")
    return means




SYSTEM_ROWS = (
    ("TwoStepTDCN", ("si_sdr_imp", "sdr_imp", "stoi", "pesq")),
    ("Oracle: learned front end (ideal latent masks)", ("oracle_latent_si_sdr_imp",)),
    ("Oracle: STFT ideal ratio mask", ("oracle_stft_irm_si_sdr_imp",)),
)


# Keys of results.json that say how the test sets were made, not what was measured on them.
SETTING_KEYS = ("noise",)


def result_sets(means):
    """``[(name, means)]`` of the test sets in ``results.json``: the seen test (``"seen"``, the
    top-level keys) then the nested unseen-speaker blocks (:data:`SETTING_KEYS` are neither)."""
    means = {k: v for k, v in means.items() if k not in SETTING_KEYS}
    sets = [("seen", {k: v for k, v in means.items() if not isinstance(v, dict)})]
    return sets + [(k, v) for k, v in means.items() if isinstance(v, dict)]


def results_markdown(means):
    """Markdown table of the means written by :func:`evaluate_model` (and by :func:`main`: one
    row per system and test set when ``means`` has nested unseen-speaker blocks)."""
    def fmt(m, key):
        return f"{m[key]:.2f}" if key in m and np.isfinite(m[key]) else "—"

    sets = result_sets(means)
    noise = (f"Noise: {noise_label(means['noise'])} (added to each mixture; the references are the clean "
             "speakers).\n" if means.get("noise") else "")
    if len(sets) == 1:
        lines = ["| System | SI-SDRi (dB) | SDRi (dB) | STOI | PESQ |", "|---|---|---|---|---|"]
        for system, keys in SYSTEM_ROWS:
            cells = [fmt(means, k) for k in keys] + ["—"] * (4 - len(keys))
            lines.append(f"| {system} | {' | '.join(cells)} |")
        return "\n".join(lines) + f"\n\n{means.get('n_utterances', 0)} test mixtures.\n" + noise
    lines = ["| System | Test speakers | SI-SDRi (dB) | SDRi (dB) | STOI | PESQ |",
             "|---|---|---|---|---|---|"]
    for system, keys in SYSTEM_ROWS:
        for name, m in sets:
            cells = [fmt(m, k) for k in keys] + ["—"] * (4 - len(keys))
            lines.append(f"| {system} | {name} ({m.get('n_utterances', 0)}) | {' | '.join(cells)} |")
    return "\n".join(lines) + ("\n\nTest speakers: seen = speakers of the training set (other "
                               "utterances); the others are speakers in no training or validation "
                               "mixture. In brackets: number of test mixtures.\n") + noise


def unseen_name(data_dir):
    """Name of an unseen-speaker test set from its folder: ``.../tt_unseen`` -> ``unseen``."""
    name = Path(data_dir).name
    return name[3:] if name.startswith("tt_") and len(name) > 3 else name


def filter_responses(encoder_filters, n_fft=256):
    """Magnitude responses (dB) of ``[N, 1, L]`` filters, sorted by centre frequency.

    Returns:
        tuple: ``(responses [N, n_fft // 2 + 1] in dB, centre frequencies in bins)``.
    """
    filters = encoder_filters.detach().reshape(encoder_filters.shape[0], -1).cpu()
    mags = torch.fft.rfft(filters, n=n_fft).abs()
    bins = torch.arange(mags.shape[-1], dtype=mags.dtype)
    centres = (mags.square() * bins).sum(-1) / mags.square().sum(-1).clamp_min(1e-12)
    order = torch.argsort(centres)
    responses = 20 * torch.log10(mags[order] / mags.max(-1, keepdim=True).values[order].clamp_min(1e-12) + 1e-6)
    return responses.numpy(), centres[order].numpy()


def plot_report(model, sisdri, path):
    """PNG: the encoder's filters' responses sorted by centre frequency, and the SI-SDRi histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    responses, _ = filter_responses(model.encoder.filterbank.filters())
    nyquist = model.sample_rate / 2
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].imshow(responses.T, origin="lower", aspect="auto", vmin=-40, vmax=0, cmap="magma",
                   extent=[0, responses.shape[0], 0, nyquist])
    axes[0].set(title="Learned encoder filters (sorted by centre frequency)", xlabel="filter", ylabel="Hz")
    axes[1].hist(sisdri, bins=30, color="tab:blue")
    axes[1].axvline(float(np.mean(sisdri)), color="k", ls="--", label=f"mean {np.mean(sisdri):.2f} dB")
    axes[1].set(title="Per-utterance SI-SDRi", xlabel="dB", ylabel="utterances")
    axes[1].legend()
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def evaluate_test_sets(model, data_dir, unseen_dirs, out_dir, eval_conf, data_conf=None):
    """:func:`evaluate_model` on the seen-speaker test set and on each unseen-speaker one.

    Args:
        model: The separation model.
        data_dir (str or Path): Manifests of the seen-speaker test set (``json/tt``).
        unseen_dirs (dict): ``name -> manifests folder`` of the unseen-speaker test sets; each is
            written under ``out_dir/<name>/``.
        out_dir (str or Path): Output folder.
        eval_conf (dict): The ``eval`` section of the configuration.
        data_conf (dict, optional): The ``data`` section: the noise added to every test set
            (``noise``, ``noise_snr_db``) and its seed (``corpus_seed``); None: clean.

    Returns:
        dict: The seen test's means, with each unseen test's means under its name; ``results.json``
        and ``results.md`` of ``out_dir`` hold them all.
    """
    from .data.datasets import make_dataset, noise_options

    noisy = {} if data_conf is None else {"seed": data_conf["corpus_seed"], **noise_options(data_conf)}

    def run(folder, out):
        dataset = make_dataset(folder, n_src=model.n_src, sample_rate=int(model.sample_rate), segment=None, **noisy)
        return evaluate_model(model, dataset, out, metrics_list=eval_conf["metrics"],
                              n_examples=eval_conf["n_examples"], stft_n_fft=eval_conf["stft_oracle_n_fft"],
                              max_items=eval_conf["max_utterances"], num_workers=eval_conf["num_workers"])

    means = run(data_dir, out_dir)
    for name, folder in unseen_dirs.items():
        means[name] = run(folder, Path(out_dir) / name)
    if unseen_dirs:  # the seen test's files, rewritten with every test set
        atomic_write_json(Path(out_dir) / "results.json", means)
        atomic_write_text(Path(out_dir) / "results.md", results_markdown(means))
    return means


def main(argv=None):
    from .config import ConfigError, load_config
    from .data.mixing import NOISE_COLORS
    from .models import load_separator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=f"{BEST_MODEL_NAME} of a training run, a folder, or a Hub id")
    parser.add_argument("--data_dir", required=True, help="test manifests folder (mix.json, s1.json...)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--unseen_dir", action="append", default=[],
                        help="manifests of a test set of unseen speakers (repeatable), e.g. json/tt_unseen")
    parser.add_argument("--conf", help="YAML configuration (eval section; data.noise, data.noise_snr_db)")
    parser.add_argument("--noise", choices=sorted(NOISE_COLORS) + ["none"],
                        help="add this noise to the test sets (none: clean), whatever the conf says (data.noise)")
    parser.add_argument("--noise_snr_db", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="its SNR range in dB, uniform per mixture (data.noise_snr_db)")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    noise = [] if args.noise is None else [f"data.noise={'null' if args.noise == 'none' else args.noise}"]
    if args.noise_snr_db is not None:
        noise.append(f"data.noise_snr_db=[{args.noise_snr_db[0]}, {args.noise_snr_db[1]}]")
    try:
        conf = load_config(args.conf, list(args.overrides) + noise)
    except ConfigError as err:
        parser.error(str(err))
    names = [unseen_name(d) for d in args.unseen_dir]
    clash = {n for n in names if names.count(n) > 1 or n == "seen"}
    if clash:
        parser.error(f"--unseen_dir folders must have distinct names other than 'seen': {sorted(clash)}")
    model = load_separator(args.model)
    if conf["data"]["noise"]:
        log.info("Test sets with %s noise (data.noise).",
                 noise_label(noise_record(conf["data"]["noise"], conf["data"]["noise_snr_db"])))
    means = evaluate_test_sets(model, args.data_dir, dict(zip(names, args.unseen_dir)), args.out_dir, conf["eval"],
                               conf["data"])
    print(results_markdown(means))
    from .report import evaluation_report

    # The page shows the training run's own conf.yml (beside --model), not this evaluation's --conf.
    print(f"Report (open in a browser): {evaluation_report(args.out_dir, args.model, data_dir=args.data_dir)}")


if __name__ == "__main__":
    main()
