"""HTML pages a person opens in a browser: listening examples, spectrograms, tables and plots.

Separation is judged by ear as much as by numbers, so each stage that produces audio or scores also
writes one page, in one style, that holds everything needed to judge it:

* :func:`evaluation_report` -> ``exp/<tag>/eval/report.html`` (``python -m twostep_asteroid.evaluate``):
  the results table (model, learned front-end oracle, STFT oracle), the run (configuration, steps,
  training time, corpus and licence), players and spectrograms of the mixture, estimates and
  references of the examples chosen by :func:`pick_examples` (best, median, worst SI-SDRi), the
  SI-SDRi histogram and filterbank plot (``report.png``) and the training curves read from the
  run's CSV logs;
* :func:`separation_report` -> ``report.html`` of ``twostep-separate --report``: players and
  spectrograms of each input and its separated sources (no references, so no scores);
* :func:`comparison_report` -> ``report.html`` of ``python -m twostep_asteroid.compare``
  (``local/compare_*.sh``): its markdown tables and plots, and links to each run's own report.

A page is self-contained: inline CSS, no script, no font or anything else from the network. Audio
and images are relative links to files next to it (the spectrograms are PNGs written beside the
wavs), so the folder can be opened, copied or served as it is.
"""
from __future__ import annotations

import html
import io
import json
import math
import os
import re
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .data.audio_io import wav_bytes
from .fileio import atomic_savefig, atomic_write_bytes, atomic_write_json, atomic_write_text

REPORT_NAME = "report.html"
EXAMPLES_JSON = "examples.json"
# Containers that browsers play in an <audio> element (Chromium, Firefox, Safari).
BROWSER_AUDIO = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a")
SPECTROGRAM_SECONDS = 30.0  # a spectrogram shows at most this much of a file

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;
  padding:0 18px 40px;color:#1d2329;background:#fff;line-height:1.45}
header{border-bottom:2px solid #2b6cb0;margin-bottom:14px}
h1{font-size:1.6em;margin:18px 0 4px}h2{font-size:1.25em;margin-top:30px;border-bottom:1px solid #d5dbe1}
h3{font-size:1.05em;margin:22px 0 6px}
.meta{color:#5a6570;font-size:.9em;margin:2px 0 10px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:.92em}
th,td{border:1px solid #cfd6dd;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0;padding:8px;border:1px solid #d5dbe1;border-radius:6px;background:#fafbfc;width:330px}
figure.mix{background:#f3f7fc}figure.ref{background:#f7f7f3}
figcaption{font-weight:600;font-size:.92em;margin-bottom:4px}
figure audio{width:100%;height:34px}figure img{width:100%;display:block;margin-top:4px}
img.plot{max-width:100%;border:1px solid #d5dbe1}
pre{background:#f5f7f9;border:1px solid #d5dbe1;padding:8px;overflow:auto;font-size:.85em;max-height:420px}
.note{color:#5a6570;font-size:.88em}
footer{margin-top:36px;color:#5a6570;font-size:.85em;border-top:1px solid #d5dbe1;padding-top:6px}
"""


# ---------------------------------------------------------------------------------------------
# HTML pieces
# ---------------------------------------------------------------------------------------------
def esc(value):
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def href(target, base_dir):
    """Relative, URL-quoted link from a page in ``base_dir`` to ``target`` (a local file)."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(base_dir))
    return quote(Path(rel).as_posix())


_NUMBER = re.compile(r"^[+\-−]?\d[\d.,]*( ± \d[\d.]*)?( \(\d+\))?$")


def _cell(tag, text):
    text = text.strip()
    cls = ' class="num"' if tag == "td" and _NUMBER.match(text) else ""
    return f"<{tag}{cls}>{esc(text)}</{tag}>"


def markdown_to_html(text):
    """The markdown this package writes (pipe tables and plain paragraphs) as HTML.

    Args:
        text (str): e.g. ``results.md``, ``frontends.md``, ``runs.md``.

    Returns:
        str: One ``<table>`` per pipe table (first row the header, the ``|---|`` row dropped) and
        one ``<p>`` per other block of lines; everything is escaped.
    """
    out, block = [], []

    def flush():
        if not block:
            return
        if block[0].lstrip().startswith("|"):
            rows = [[c for c in line.strip().strip("|").split("|")] for line in block]
            body = [r for r in rows[1:] if not all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in r)]
            out.append("<table><thead><tr>" + "".join(_cell("th", c) for c in rows[0]) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(_cell("td", c) for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
        else:
            out.append("<p>" + "<br>".join(esc(line.strip()) for line in block) + "</p>")
        block.clear()

    for line in text.splitlines():
        is_table = line.lstrip().startswith("|")
        if not line.strip() or (block and is_table != block[0].lstrip().startswith("|")):
            flush()
        if line.strip():
            block.append(line)
    flush()
    return "\n".join(out)


def table(rows, header=None):
    """HTML table of ``rows`` (lists of cells), with an optional header row."""
    head = "<thead><tr>" + "".join(_cell("th", str(h)) for h in header) + "</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(_cell("td", "—" if c is None else str(c)) for c in r) + "</tr>" for r in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def page(title, body, subtitle=None):
    """A whole HTML document in the reports' style (inline CSS, no script, nothing from the network)."""
    from . import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M")
    sub = f'<p class="meta">{esc(subtitle)}</p>' if subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><header><h1>{esc(title)}</h1>{sub}"
            f"</header>\n{body}\n<footer>Written by twostep-asteroid {esc(__version__)} on {stamp}. Open this file "
            f"from its folder: the audio and images are the files next to it.</footer></body></html>\n")


def audio_figure(label, wav, png, base_dir, kind=""):
    """A card: caption, ``<audio>`` player of ``wav`` and the spectrogram ``png`` (links relative to
    the page's folder ``base_dir``). ``wav=None``: no player (a format browsers cannot play)."""
    player = (f'<audio controls preload="metadata" src="{href(wav, base_dir)}"></audio>' if wav is not None
              else '<p class="note">(not playable in a browser)</p>')
    image = f'<img src="{href(png, base_dir)}" alt="spectrogram of {esc(label)}">' if png is not None else ""
    return f'<figure class="{kind}"><figcaption>{esc(label)}</figcaption>{player}{image}</figure>'


def plot_figure(png, base_dir, alt):
    return f'<p><img class="plot" src="{href(png, base_dir)}" alt="{esc(alt)}"></p>'


# ---------------------------------------------------------------------------------------------
# Spectrograms
# ---------------------------------------------------------------------------------------------
def spectrogram_png(wav_path, png_path, max_seconds=SPECTROGRAM_SECONDS, dynamic_range=80.0):
    """PNG spectrogram of (the first ``max_seconds`` of) an audio file: log magnitude, 32 ms windows.

    Each image is normalised to its own maximum (0 dB) and shows ``dynamic_range`` dB below it, so
    that a quiet estimate is as readable as a loud one.

    Returns:
        Path: ``png_path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf
    from scipy.signal import stft

    info = sf.info(str(wav_path))
    frames = int(min(info.frames, max_seconds * info.samplerate)) if max_seconds else -1
    x, rate = sf.read(str(wav_path), frames=frames, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    nperseg = max(16, int(2 ** round(math.log2(0.032 * rate))))
    freqs, times, spec = stft(x, fs=rate, nperseg=nperseg, noverlap=nperseg * 3 // 4)
    db = 20 * np.log10(np.abs(spec) + 1e-10)
    top = float(db.max()) if db.size else 0.0
    fig, ax = plt.subplots(figsize=(4.2, 1.75))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - dynamic_range, vmax=top,
              extent=[0, max(len(x) / rate, 1e-3), 0, rate / 2000])
    ax.set_xlabel("s", fontsize=7, labelpad=1)
    ax.set_ylabel("kHz", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=6, length=2, pad=1)
    if info.frames > len(x):
        ax.set_title(f"first {len(x) / rate:.0f} s of {info.frames / rate:.0f} s", fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    # A 256-colour palette (the colour map has 256 colours): a third of the RGBA file's size.
    from PIL import Image

    buffer.seek(0)
    out = io.BytesIO()
    Image.open(buffer).convert("RGB").quantize(256).save(out, format="PNG", optimize=True)
    return atomic_write_bytes(png_path, out.getvalue())


# ---------------------------------------------------------------------------------------------
# Example choice and writing (evaluation)
# ---------------------------------------------------------------------------------------------
def _quantile_priority(n):
    """Quantiles of the ranking (0 best, 1 worst) in the order they are picked: best, median,
    worst, then the middles of the widest gaps (1/4, 3/4, 1/8...)."""
    qs = [0.0, 0.5, 1.0]
    while len(qs) < n:
        edges = sorted(qs)
        gaps = sorted(((b - a, a) for a, b in zip(edges, edges[1:])), key=lambda g: (-g[0], g[1]))
        qs.append(gaps[0][1] + gaps[0][0] / 2)
    return qs[:n]


def pick_examples(values, n):
    """Indices of ``n`` examples that span a ranking: best, median and worst first.

    Args:
        values (sequence of float): One score per item, higher is better (e.g. SI-SDRi). NaNs are
            never picked.
        n (int): How many (fewer when there are fewer distinct items). 1: the best; 2: best and
            median; 3: best, median, worst; more: quantiles in between (upper and lower quartiles...).

    Returns:
        list of dict: ``index`` (into ``values``), ``rank`` (1 = best), ``n_ranked`` and ``label``
        (``"best"``, ``"median"``, ``"worst"`` or ``"Nth percentile"``), best first.
    """
    values = np.asarray(values, dtype=float)
    valid = np.flatnonzero(np.isfinite(values))
    order = valid[np.argsort(-values[valid], kind="stable")]
    m = len(order)
    picked = {}
    for q in _quantile_priority(max(0, int(n))) if m else []:
        pos = int(round(q * (m - 1)))
        if pos not in picked:
            label = {0.0: "best", 0.5: "median", 1.0: "worst"}.get(q, f"{round(100 * (1 - q))}th percentile")
            picked[pos] = "best" if pos == 0 else "worst" if pos == m - 1 else label
    return [{"index": int(order[pos]), "rank": pos + 1, "n_ranked": m, "label": label}
            for pos, label in sorted(picked.items())]


def _write_listening_wav(path, x, sample_rate):
    """16-bit WAV for listening; a signal that would clip is scaled down first. Returns the gain in dB."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    gain = 0.99 / peak if peak > 0.99 else 1.0
    atomic_write_bytes(path, wav_bytes(x * gain, sample_rate))
    return 0.0 if gain == 1.0 else 20 * math.log10(gain)


def write_examples(folder, items, sample_rate, n_examples, key="si_sdr_imp"):
    """Write the listening examples of an evaluation and ``examples.json`` describing them.

    The examples are chosen by :func:`pick_examples` on ``key`` (best, median, worst...). For each,
    ``<utt>_mix.wav``, ``<utt>_s<c>.wav`` (estimates, in the order of the references) and
    ``<utt>_ref<c>.wav`` are written as 16-bit WAV (a signal that would clip is scaled down, and the
    gain is recorded). Other ``.wav``/``.png`` files in ``folder`` (an earlier evaluation's) are removed.

    Args:
        folder (str or Path): ``<eval_dir>/examples``.
        items (list of dict): Per test mixture: ``utt_id``, ``mixture [T]``, ``sources [C, T]``,
            ``estimates [C, T]`` (numpy, permutation-aligned with the sources) and ``scores`` (the
            ``metrics.csv`` row).
        sample_rate (int): Of the signals.
        n_examples (int): How many examples.
        key (str): The score that ranks the mixtures.

    Returns:
        list of dict: The content of ``examples.json``: per example ``utt_id, label, rank, n_ranked,
        scores, per_source`` (SI-SDR and SI-SDRi of each estimate), ``mixture``, ``estimates``,
        ``references`` (file names) and ``gains_db`` (non-zero gains only).
    """
    import torch

    from .metrics import si_sdr

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    examples, written = [], set()
    for pick in pick_examples([item["scores"][key] for item in items], n_examples):
        item = items[pick["index"]]
        utt = item["utt_id"]
        mix, sources, est = (np.asarray(item[k]) for k in ("mixture", "sources", "estimates"))
        files = {"mixture": f"{utt}_mix.wav",
                 "estimates": [f"{utt}_s{c + 1}.wav" for c in range(est.shape[0])],
                 "references": [f"{utt}_ref{c + 1}.wav" for c in range(sources.shape[0])]}
        gains = {}
        for name, signal in [(files["mixture"], mix), *zip(files["estimates"], est), *zip(files["references"], sources)]:
            gain = _write_listening_wav(folder / name, signal, sample_rate)
            if gain:
                gains[name] = round(gain, 2)
            written.add(name)
        s, e = torch.from_numpy(sources.astype(np.float32)), torch.from_numpy(est.astype(np.float32))
        m = torch.from_numpy(mix.astype(np.float32)).expand_as(s)
        sisdr, base = si_sdr(e, s), si_sdr(m, s)
        per_source = [{"si_sdr": float(a), "si_sdr_imp": float(a - b)} for a, b in zip(sisdr, base)]
        scores = {k: (v if isinstance(v, str) or v is None or math.isfinite(v) else None)
                  for k, v in item["scores"].items()}
        examples.append({"utt_id": utt, "label": pick["label"], "rank": pick["rank"], "n_ranked": pick["n_ranked"],
                         "key": key, "scores": scores, "per_source": per_source, **files, "gains_db": gains})
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".wav", ".png") and path.name not in written:
            path.unlink()
    atomic_write_json(folder.parent / EXAMPLES_JSON, examples)
    return examples


# ---------------------------------------------------------------------------------------------
# Training curves (Lightning's CSVLogger: <exp_dir>/logs/version_<k>/metrics.csv)
# ---------------------------------------------------------------------------------------------
def read_csv_logs(exp_dir):
    """Logged values of a training run, all (re)starts together.

    Args:
        exp_dir (str or Path): A ``train step1/step2 --exp_dir``; every
            ``logs/version_<k>/metrics.csv`` is read in order of ``k`` (a resumed run starts a new
            version), a later version's value replacing an earlier one at the same step.

    Returns:
        dict: ``metric -> (steps, values)`` (numpy arrays sorted by step); empty without logs.
    """
    import csv

    versions = sorted(Path(exp_dir).glob("logs/version_*/metrics.csv"),
                      key=lambda p: int(p.parent.name.split("_")[-1]) if p.parent.name.split("_")[-1].isdigit() else -1)
    merged = {}
    for path in versions:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    step = int(float(row.get("step") or "nan"))
                except ValueError:
                    continue
                for key, value in row.items():
                    if key in ("step", "epoch") or value in (None, ""):
                        continue
                    try:
                        merged.setdefault(key, {})[step] = float(value)
                    except ValueError:
                        pass
    return {k: (np.array(sorted(v)), np.array([v[s] for s in sorted(v)])) for k, v in merged.items()}


# (metric, label, run) of the training-curve panels, in order.
CURVES = (("val_oracle_sisdri", "step 1: validation oracle SI-SDRi (dB)", "step1"),
          ("val_sisdri", "step 2: validation SI-SDRi (dB)", "step2"),
          ("val_latent_sisdr", "step 2: validation latent SI-SDR (dB)", "step2"))


def plot_training_curves(runs, path):
    """PNG of the validation curves against training steps, one panel per metric of :data:`CURVES`.

    Args:
        runs (dict): ``{"step1": exp_dir or None, "step2": exp_dir or None}``.
        path (str or Path): The PNG.

    Returns:
        list of str: The metrics plotted (empty: nothing logged, and no PNG is written).
    """
    logs = {name: read_csv_logs(d) if d is not None else {} for name, d in runs.items()}
    panels = [(m, label, logs[run][m]) for m, label, run in CURVES if m in logs.get(run, {})]
    if not panels:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.3), squeeze=False)
    for ax, (metric, label, (steps, values)) in zip(axes[0], panels):
        ax.plot(steps, values, marker="o", ms=3)
        ax.set(title=label, xlabel="training step")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return [m for m, _, _ in panels]


# ---------------------------------------------------------------------------------------------
# Evaluation report
# ---------------------------------------------------------------------------------------------
def _duration(seconds):
    if seconds is None or not math.isfinite(seconds):
        return None
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _read_json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def find_corpus_dir(data_dir, levels=3):
    """The corpus folder of a manifests folder: the first of ``data_dir`` and its parents (up to
    ``levels`` up) holding ``corpus.json``; ``None`` when there is none (e.g. wsj0-2mix)."""
    if data_dir is None:
        return None
    folder = Path(data_dir).resolve()
    for candidate in [folder, *folder.parents][: levels + 1]:
        if (candidate / "corpus.json").is_file():
            return candidate
    return None


def _fmt(value, digits=2):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "—"
    return str(value)


def _run_section(eval_dir, conf, run_dirs, data_dir, model_path):
    rows = []
    if model_path is not None:
        rows.append(["Model", str(model_path)])
    step_conf = conf or {}
    for name in ("step1", "step2"):
        folder = run_dirs.get(name)
        summary = _read_json(folder / "summary.json") if folder is not None else None
        if summary is None:
            continue
        max_steps = step_conf.get(name, {}).get("max_steps")
        steps = f"{summary.get('global_step')}" + (f" (max {max_steps})" if max_steps is not None else "")
        rows.append([f"{'Step 1 (front end)' if name == 'step1' else 'Step 2 (separator)'}: steps", steps])
        rows.append([f"{'Step 1' if name == 'step1' else 'Step 2'}: training time",
                     _duration(summary.get("train_seconds")) or "—"])
        if name == "step1" and summary.get("val_oracle_sisdri") is not None:
            rows.append(["Step 1: validation oracle SI-SDRi (dB)", _fmt(float(summary["val_oracle_sisdri"]))])
        if name == "step2" and summary.get("best_val_sisdr") is not None:
            rows.append(["Step 2: best validation SI-SDR (dB)", _fmt(float(summary["best_val_sisdr"]))])
        if name == "step2" and summary.get("n_params") is not None:
            rows.append(["Masker parameters", f"{summary['n_params']:,}"])
    if step_conf.get("step2", {}).get("train_front_end"):
        rows.append(["Training", "end to end (front end trained with the masker; no step 1)"])
    elif step_conf.get("step2", {}).get("train_decoder"):
        rows.append(["Training", "two-step, with the decoder trained beside the masker in step 2 "
                                 "(the encoder, hence the latent targets, stayed step 1's)"])
    corpus_dir = find_corpus_dir(data_dir)
    body = [table(rows) if rows else '<p class="note">No training summary found.</p>']
    body.append("<h3>Corpus and licence</h3>")
    body.append(_corpus_html(corpus_dir, data_dir, eval_dir))
    if conf:
        import yaml

        body.append("<details open><summary>Configuration (the run's <code>conf.yml</code>)</summary><pre>"
                    + esc(yaml.safe_dump(conf, sort_keys=False)) + "</pre></details>")
    return "<h2>The run</h2>" + "\n".join(body)


def _corpus_html(corpus_dir, data_dir, base_dir):
    from .hub import corpus_card_infos

    if data_dir is None:
        return '<p class="note">Test data: unknown (no --data_dir given).</p>'
    infos = corpus_card_infos(corpus_dir)
    rows = [["Test data", str(data_dir)], ["Corpus", infos["dataset_name"]],
            ["Licence of the trained model", infos["license"]]]
    parts = []
    if corpus_dir is not None and (corpus_dir / "LICENSES.md").is_file():
        parts.append(f'<p><a href="{href(corpus_dir / "LICENSES.md", base_dir)}">LICENSES.md</a> '
                     "(the corpus's licences and attributions)</p>")
    if corpus_dir is None:
        rows.append(["Licences", "wsj0-2mix is built from WSJ0 (LDC93S6A), under the LDC's licence; "
                                 "the model licence is Asteroid's default for its Hub models"])
    parts.insert(0, table(rows))
    if infos.get("data_licenses"):
        parts.append(table(sorted(infos["data_licenses"].items()), ["Speaker (source package)", "Licence"]))
    return "\n".join(parts)


def _example_html(ex, folder, base_dir, metric_names):
    files = [("Mixture", ex["mixture"], "mix")]
    files += [(f"Estimate {c + 1}", name, "est") for c, name in enumerate(ex["estimates"])]
    files += [(f"Reference {c + 1}", name, "ref") for c, name in enumerate(ex["references"])]
    cards = []
    for label, name, kind in files:
        wav = folder / name
        if not wav.is_file():
            raise FileNotFoundError(f"{wav}: an example of {EXAMPLES_JSON} is missing; rerun the evaluation.")
        png = spectrogram_png(wav, wav.with_suffix(".png"))
        gain = ex.get("gains_db", {}).get(name)
        cards.append(audio_figure(label + (f" (scaled {gain:+.1f} dB to avoid clipping)" if gain else ""),
                                  wav, png, base_dir, kind))
    scores = ex["scores"]
    score_rows = [[metric_names.get(k, k), _fmt(scores.get(k))] for k in metric_names if k in scores]
    per_source = [[f"Estimate {c + 1}", _fmt(s["si_sdr"]), _fmt(s["si_sdr_imp"])] for c, s in enumerate(ex["per_source"])]
    title = (f"{ex['label'].capitalize()} {ex['key'].replace('si_sdr_imp', 'SI-SDRi')}: {ex['utt_id']} "
             f"(rank {ex['rank']} of {ex['n_ranked']})")
    return (f'<h3 id="ex-{esc(ex["utt_id"])}">{esc(title)}</h3><div class="grid">'
            + table(score_rows, ["Score", "Value"]) + table(per_source, ["Source", "SI-SDR (dB)", "SI-SDRi (dB)"])
            + "</div>" + f'<div class="grid">{"".join(cards)}</div>')


METRIC_NAMES = {"si_sdr_imp": "SI-SDRi (dB)", "si_sdr": "SI-SDR (dB)", "sdr_imp": "SDRi (dB)", "sdr": "SDR (dB)",
                "stoi": "STOI", "stoi_imp": "STOI improvement", "pesq": "PESQ", "pesq_imp": "PESQ improvement",
                "oracle_latent_si_sdr_imp": "Oracle SI-SDRi, learned front end (dB)",
                "oracle_stft_irm_si_sdr_imp": "Oracle SI-SDRi, STFT IRM (dB)"}


def evaluation_report(eval_dir, model_path=None, conf=None, data_dir=None, run_dir=None, title=None):
    """Write ``<eval_dir>/report.html`` from an evaluation folder and its training run.

    Args:
        eval_dir (str or Path): Written by :func:`twostep_asteroid.evaluate.evaluate_model`:
            ``results.json``, ``results.md``, ``report.png``, ``examples.json`` and ``examples/``.
        model_path (str, optional): The evaluated model (shown; when it is a file, its folder is
            the step-2 run unless ``run_dir`` is given).
        conf (dict, optional): The run's configuration; defaults to ``<run_dir>/conf.yml``.
        data_dir (str or Path, optional): The test manifests; their corpus folder (see
            :func:`find_corpus_dir`) gives the corpus name and licences.
        run_dir (str or Path, optional): The step-2 ``--exp_dir`` (``summary.json``, ``logs/``);
            step 1 is its sibling ``step1/`` unless the run trained end to end.
        title (str, optional): Page title.

    Returns:
        Path: The page. The examples' spectrograms (``examples/*.png``) and ``training_curves.png``
        are written beside it.

    Raises:
        FileNotFoundError: When ``results.json`` or an example wav listed in ``examples.json`` is missing.
    """
    eval_dir = Path(eval_dir)
    results = json.loads((eval_dir / "results.json").read_text())
    if run_dir is None and model_path is not None and Path(model_path).is_file():
        run_dir = Path(model_path).resolve().parent
    run_dir = Path(run_dir) if run_dir is not None else None
    if conf is None and run_dir is not None and (run_dir / "conf.yml").is_file():
        import yaml

        conf = yaml.safe_load((run_dir / "conf.yml").read_text())
    end_to_end = bool((conf or {}).get("step2", {}).get("train_front_end"))
    step1 = run_dir.parent / "step1" if run_dir is not None and not end_to_end else None
    run_dirs = {"step1": step1 if step1 is not None and step1.is_dir() else None, "step2": run_dir}

    sections = ["<h2>Results</h2>"]
    results_md = eval_dir / "results.md"
    if results_md.is_file():
        sections.append(markdown_to_html(results_md.read_text()))
    sections.append('<p class="note">Means over the test mixtures (<code>results.json</code>; one row per '
                    'mixture in <code>metrics.csv</code>). Oracles: the same mixtures separated with ideal '
                    'masks, in the learned front end\'s latent space and in an STFT.</p>')
    sections.append(_run_section(eval_dir, conf, run_dirs, data_dir, model_path))

    examples = _read_json(eval_dir / EXAMPLES_JSON) or []
    sections.append("<h2>Listening examples</h2>")
    if examples:
        sections.append(f'<p class="note">{len(examples)} of {results.get("n_utterances", "?")} test mixtures, '
                        f"chosen to span the ranking by SI-SDRi ({', '.join(e['label'] for e in examples)}). "
                        "Estimates are in the order of the references (the permutation that maximises "
                        "SI-SDR). Spectrograms: log magnitude, each normalised to its maximum, 80 dB range.</p>")
        for ex in examples:
            sections.append(_example_html(ex, eval_dir / "examples", eval_dir, METRIC_NAMES))
    else:
        sections.append('<p class="note">No examples (eval.n_examples: 0).</p>')

    sections.append("<h2>Plots</h2>")
    if (eval_dir / "report.png").is_file():
        sections.append("<h3>Learned filterbank and per-mixture SI-SDRi</h3>"
                        + plot_figure(eval_dir / "report.png", eval_dir, "filterbank and SI-SDRi histogram"))
    curves = plot_training_curves(run_dirs, eval_dir / "training_curves.png")
    if curves:
        sections.append("<h3>Training curves</h3>"
                        + plot_figure(eval_dir / "training_curves.png", eval_dir, "training curves")
                        + '<p class="note">From the runs\' CSV logs (<code>logs/version_*/metrics.csv</code>): '
                        + esc(", ".join(curves)) + ".</p>")
    else:
        sections.append('<p class="note">No training logs found (a model from the Hub or a file outside its '
                        "run folder): no training curves.</p>")
    title = title or f"Evaluation: {run_dir.parent.name if run_dir is not None else eval_dir.name}"
    path = eval_dir / REPORT_NAME
    atomic_write_text(path, page(title, "\n".join(sections), subtitle=f"{eval_dir.resolve()}"))
    return path


# ---------------------------------------------------------------------------------------------
# Separation report (twostep-separate --report)
# ---------------------------------------------------------------------------------------------
def separation_report(report_dir, items, title="Separated files", subtitle=None):
    """Write ``<report_dir>/report.html``: each input and its separated sources, with players and
    spectrograms (the spectrograms go to ``<report_dir>/report_files/``).

    Args:
        report_dir (str or Path): The page's folder.
        items (list of dict): Per separated file: ``input`` (its path) and ``outputs`` (the paths of
            the separated sources), e.g. :func:`twostep_asteroid.inference.separate_file`'s result
            with ``input`` added. An input in a format browsers do not play gets no player.
        title (str): Page title.
        subtitle (str, optional): A line under the title (e.g. the model).

    Returns:
        Path: The page.
    """
    report_dir = Path(report_dir)
    assets = report_dir / "report_files"
    assets.mkdir(parents=True, exist_ok=True)
    sections, used = [], set()
    for k, item in enumerate(items):
        inp = Path(item["input"])
        stem = f"{k:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', inp.stem)}"
        cards = []
        playable = inp.suffix.lower() in BROWSER_AUDIO
        png = spectrogram_png(inp, assets / f"{stem}_input.png")
        used.add(png.name)
        cards.append(audio_figure(f"Input: {inp.name}", inp if playable else None, png, report_dir, "mix"))
        for c, out in enumerate(item["outputs"]):
            png = spectrogram_png(out, assets / f"{stem}_s{c + 1}.png")
            used.add(png.name)
            cards.append(audio_figure(f"Source {c + 1}: {Path(out).name}", out, png, report_dir, "est"))
        notes = [f"{item['sample_rate']} Hz"] if item.get("sample_rate") else []
        if item.get("resampled"):
            notes.append(f"separated at {item.get('model_sample_rate'):g} Hz and resampled back")
        if item.get("downmixed"):
            notes.append(f"{item.get('channels')} channels downmixed to mono")
        sections.append(f"<h2>{esc(inp.name)}</h2><p class=\"note\">{esc(str(inp))}"
                        + (f" — {esc(', '.join(notes))}" if notes else "") + "</p>"
                        + f'<div class="grid">{"".join(cards)}</div>')
    for path in assets.glob("*.png"):
        if path.name not in used:
            path.unlink()
    if not items:
        sections.append('<p class="note">No file was separated.</p>')
    intro = ('<p class="note">No references, so no scores: listen, and look at the spectrograms (log '
             f"magnitude, each normalised to its maximum, 80 dB range; at most the first {SPECTROGRAM_SECONDS:.0f} s "
             "of a file).</p>")
    path = report_dir / REPORT_NAME
    atomic_write_text(path, page(title, intro + "\n".join(sections), subtitle=subtitle))
    return path


# ---------------------------------------------------------------------------------------------
# Comparison report (python -m twostep_asteroid.compare, local/compare_*.sh)
# ---------------------------------------------------------------------------------------------
def comparison_report(out_dir, run_reports=None, title=None):
    """Write ``<out_dir>/report.html`` from the comparison outputs found in ``out_dir``.

    Args:
        out_dir (str or Path): Holds ``frontends.md`` / ``frontends.png`` (front-end oracles) and/or
            ``runs.md`` / ``runs.png`` (two-step versus end to end); each present pair is a section.
        run_reports (list of tuple, optional): ``(label, path of the run's report.html)``, linked
            from the runs section.
        title (str, optional): Page title (default: the folder's name).

    Returns:
        Path: The page.
    """
    out_dir = Path(out_dir)
    sections = []
    if (out_dir / "frontends.md").is_file():
        sections.append("<h2>Front ends: oracle SI-SDRi</h2>" + markdown_to_html((out_dir / "frontends.md").read_text()))
        if (out_dir / "frontends.png").is_file():
            sections.append(plot_figure(out_dir / "frontends.png", out_dir, "oracle SI-SDRi against window length"))
        sections.append('<p class="note">Per mixture: <code>frontends_per_utterance.csv</code>; '
                        "summary: <code>frontends.csv</code>.</p>")
    if (out_dir / "runs.md").is_file():
        sections.append("<h2>Two-step versus end to end</h2>" + markdown_to_html((out_dir / "runs.md").read_text()))
        if (out_dir / "runs.png").is_file():
            sections.append(plot_figure(out_dir / "runs.png", out_dir, "test SI-SDRi of each run"))
        links = [(label, p) for label, p in (run_reports or []) if Path(p).is_file()]
        if links:
            sections.append("<h3>Each run's evaluation report</h3><ul>" + "".join(
                f'<li><a href="{href(p, out_dir)}">{esc(label)}</a></li>' for label, p in links) + "</ul>")
    if not sections:
        raise FileNotFoundError(f"No comparison results in {out_dir} (frontends.md or runs.md).")
    path = out_dir / REPORT_NAME
    atomic_write_text(path, page(title or f"Comparison: {out_dir.resolve().name}", "\n".join(sections),
                                 subtitle=str(out_dir.resolve())))
    return path
