"""Fake LibriMix and WHAM! folders with the real layouts, file names and metadata columns, filled
with short synthetic signals (harmonic "voices" and low noise), for the tests of
:mod:`twostep_asteroid.data.librimix` and :mod:`twostep_asteroid.data.wham`."""
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

# LibriSpeech speaker ids (train-clean-360, dev-clean, test-clean style), each with its own pitch
LIBRI_SPEAKERS = {"train": ["103", "1034", "1040", "1081", "1088", "1098"],
                  "dev": ["1272", "1462", "1673", "174"], "test": ["1089", "1188", "121", "1221"]}
WSJ0_SPEAKERS = {"tr": ["011", "01t", "20a", "40b"], "cv": ["016", "02c"], "tt": ["050", "22g"]}
FOREIGN_ROOT = "/home/gen-machine/storage/LibriMix"  # where the CSVs say the corpus was generated


def voice(n, sr, f0, seed):
    """A harmonic signal with a syllable-like envelope (n samples at sr Hz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
    return (0.15 * x * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 6)))).astype(np.float32)


def _write(path, x, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16")


def _signals(n_src, n, sr, seed):
    """``(sources, noise)``: n_src voices of n samples and a low noise."""
    rng = np.random.default_rng(seed)
    srcs = [voice(n, sr, f0, seed * 10 + i) for i, f0 in
            enumerate(rng.uniform(90, 160, 1).tolist() + rng.uniform(220, 320, 1).tolist()
                      + rng.uniform(400, 500, 1).tolist())][:n_src]
    noise = (0.01 * rng.standard_normal(n)).astype(np.float32)
    return srcs, noise


def libri_ids(subset, n_mix, n_src):
    """LibriMix mixture ids of a subset, e.g. ``103-1240-0003_1034-121119-0017``."""
    spk = LIBRI_SPEAKERS["train" if subset.startswith("train") else subset]
    chapter = 1240 + (500 if subset == "train-100" else 0)  # the two training subsets differ
    ids = []
    for i in range(n_mix):
        utts = [f"{spk[(i + k) % len(spk)]}-{chapter + 7 * i + k}-{i + 3 * k:04d}" for k in range(n_src)]
        ids.append("_".join(utts))
    return ids


def make_librimix(base, n_src=2, sample_rate=8000, mode="min",
                  sizes=(("train-360", 4), ("dev", 2), ("test", 2)), n_samples=400,
                  types=("mix_clean", "mix_both"), foreign=True, step=20):
    """A ``Libri<n>Mix`` folder under ``base`` as generate_librimix.sh writes it.

    Args:
        sizes: (subset, number of mixtures) pairs.
        n_samples: length of the first mixture of each subset; the next ones are ``step`` longer.
        types: the mixture types generated (``mix_clean``, ``mix_both``, ``mix_single``: s1 plus
            the noise, its CSV listing ``source_1_path`` and ``noise_path`` only, as LibriMix's).
        foreign: the CSVs name absolute paths of another machine (under :data:`FOREIGN_ROOT`),
            as a corpus generated elsewhere does; else the real absolute paths.

    Returns:
        The ``Libri<n>Mix`` folder.
    """
    root = Path(base) / f"Libri{n_src}Mix"
    wd = f"wav{sample_rate // 1000}k/{mode}"
    shown = Path(FOREIGN_ROOT) / root.name if foreign else root
    for s_i, (subset, n_mix) in enumerate(sizes):
        rows = {t: [] for t in types}
        for i, mix_id in enumerate(libri_ids(subset, n_mix, n_src)):
            n = n_samples + step * i
            srcs, noise = _signals(n_src, n, sample_rate, 100 * s_i + i)
            name = f"{mix_id}.wav"
            paths = {}
            for k, x in enumerate(srcs):
                _write(root / wd / subset / f"s{k + 1}" / name, x, sample_rate)
                paths[f"source_{k + 1}_path"] = str(shown / wd / subset / f"s{k + 1}" / name)
            _write(root / wd / subset / "noise" / name, noise, sample_rate)
            for t in types:
                mix = {"mix_clean": sum(srcs), "mix_both": sum(srcs) + noise, "mix_single": srcs[0] + noise}[t]
                _write(root / wd / subset / t / name, mix, sample_rate)
                row = {"mixture_ID": mix_id, "mixture_path": str(shown / wd / subset / t / name),
                       **(paths if t != "mix_single" else {"source_1_path": paths["source_1_path"]})}
                if t != "mix_clean":
                    row["noise_path"] = str(shown / wd / subset / "noise" / name)
                row["length"] = n
                rows[t].append(row)
        for t, rs in rows.items():
            meta = root / wd / "metadata" / f"mixture_{subset}_{t}.csv"
            meta.parent.mkdir(parents=True, exist_ok=True)
            with open(meta, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rs[0]))
                w.writeheader()
                w.writerows(rs)
    return root


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def make_wham(base, sample_rate=8000, mode="min", sizes=(("tr", 4), ("cv", 2), ("tt", 2)),
              n_samples=400, step=20):
    """A ``wham_mix`` folder under ``base`` as create_wham_from_scratch.py writes it:
    ``wav<k>k/<mode>/<split>/{mix_clean,mix_both,mix_single,s1,s2,noise}/<utt1>_<snr1>_<utt2>_<snr2>.wav``.

    Returns:
        The ``wham_mix`` folder.
    """
    root = Path(base) / "wham_mix"
    split_root = root / f"wav{sample_rate // 1000}k" / mode
    for s_i, (split, n_mix) in enumerate(sizes):
        spk = WSJ0_SPEAKERS[split]
        for i in range(n_mix):
            a, b = spk[i % len(spk)], spk[(i + 1) % len(spk)]
            snr = f"{0.25 * i + 0.1:.4f}"
            name = f"{a}c020{i}_{snr}_{b}o030{i}_-{snr}.wav"
            n = n_samples + step * i
            (s1, s2), noise = _signals(2, n, sample_rate, 100 * s_i + i)
            for d, x in (("s1", s1), ("s2", s2), ("noise", noise), ("mix_clean", s1 + s2),
                         ("mix_both", s1 + s2 + noise), ("mix_single", s1 + noise)):
                _write(split_root / split / d / name, x, sample_rate)
    return root
