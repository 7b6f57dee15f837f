"""ESC-50 sound mixtures: non-speech separation, as the two-step paper evaluates it beside wsj0-2mix.

::

    python -m twostep_asteroid.data.esc50 --esc50_dir /data/ESC-50-master --out DIR
        [--sample_rate 8000] [--segment 4.0] [--n_cv N --n_tt N] [--n_tr 0] [--n_src 2]
        [--seed S] [--esc10]

The input is the ESC-50 download (github.com/karolpiczak/ESC-50, ``master.zip``), unzipped::

    ESC-50-master/audio/<fold>-<clip_id>-<take>-<target>.wav   # 5 s, 44.1 kHz, mono
    ESC-50-master/meta/esc50.csv    # filename,fold,target,category,esc10,src_file,take
    ESC-50-master/LICENSE           # licence and per-clip attribution (copied to OUT/licenses/)

``--esc50_dir`` is ``ESC-50-master`` or the folder above it. Every file the CSV names must exist
and be readable mono audio; otherwise :class:`Esc50Error` lists each file with its CSV line and the
fix, and nothing is written. ``--esc10`` keeps the ESC-10 subset (``esc10`` column ``True``).

Splits (as the authors' ``create_esc50_hierarchical.py`` partitions it):

* folds 1-4 -> ``tr``;
* fold 5, per class: its clips sorted by file name, the first half (``n // 2``) -> ``tt``, the
  rest -> ``cv`` (4 and 4 clips of each class in ESC-50). Clips are never shared between splits.

Mixtures of ``n_src`` (2) clips of *different* classes, ``segment`` (4) s long: each clip is cut at
a random offset (a clip shorter than the segment is placed at a random offset in it, zero-padded),
a cut holding at least :data:`MIN_ENERGY` of its clip's energy (ESC-50 clips are often padded
with digital silence); relative level uniform in ``0..max_db`` (2.5) dB (s1 at +r/2 dB, s2 at
-r/2, :func:`~.mixing.relative_gains`, as the authors' ``max_abs_snr`` 2.5); wsj0-2mix scaling
(:func:`~.mixing.mix_sources`). Classes are drawn uniformly, then a clip of each class.

* ``tr``: no fixed mixtures (``--n_tr 0``): the recipe mixes the training pool on the fly
  (:class:`~.datasets.DynamicMixingDataset`). Its ``speaker`` field holds the class, so an item
  never mixes two clips of one class (it draws distinct speakers). ``--n_tr N`` also writes N
  fixed training mixtures, for ``data.dynamic_mixing: false``.
* ``cv``, ``tt``: ``n_cv``/``n_tt`` fixed mixtures.

Output (what the recipe reads, as :mod:`.prompts` writes it)::

    OUT/clips/<split>/<category>/<clip>.wav       # the clips at the sample rate (16-bit)
    OUT/json/<split>/utterances.json              # the pool: path, speaker (= class), n_samples...
    OUT/wav8k/min/<split>/{mix,s1,s2}/<id>.wav    # fixed mixtures of cv, tt (and tr with --n_tr)
    OUT/json/<split>/{mix,s1,s2}.json
    OUT/mixtures.csv, OUT/corpus.json (config, splits, licence), OUT/LICENSES.md, OUT/licenses/

The manifests are written into ``OUT/.json.staging`` and moved to ``OUT/json`` in one rename. The
build is idempotent (:class:`~.buildstate.BuildState`: the same inputs and options do nothing, a
crashed build resumes, other options rebuild) and deterministic (the same seed gives the same
bytes). Nothing here imports torch.

Licence: ESC-50 as a whole is CC BY-NC 3.0 (non-commercial), the ESC-10 subset CC BY 3.0; the
per-clip attributions are in the dataset's LICENSE file. ``corpus.json`` records it under
``licenses``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from ..config import DEFAULTS
from ..fileio import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from .audio_io import AudioError, from_int16, read_audio, to_int16, write_wav
from .buildstate import BuildState, config_hash, file_sha256
from .common import SPLITS, CorpusError, builder_parser, run_build, setup_logging, src_names, wav_dir
from .manifests import STAGING, raise_problems
from .mixing import mix_sources, relative_gains

log = logging.getLogger(__name__)

_DATA = DEFAULTS["data"]  # the recipe's defaults: sample rate, n_cv, n_tt, seed
CORPUS_VERSION = 1
META = Path("meta") / "esc50.csv"
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
HELDOUT_FOLD = 5  # folds 1-4: tr; fold 5: cv and tt
MIN_ENERGY = 0.25  # a mixture's cut of a clip holds at least this share of the clip's energy
MAX_TRIES = 200  # draws to find a mixture not already in the split
DOWNLOAD = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
MANAGED = ("wav8k", "wav16k", "clips", "json", STAGING, "licenses", "mixtures.csv", "corpus.json",
           "LICENSES.md")
LICENSES = {  # esc10 -> the licence of what is used (the dataset's README and LICENSE)
    False: ("CC BY-NC 3.0", "https://creativecommons.org/licenses/by-nc/3.0/", True),
    True: ("CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/", False),
}
SPLIT_RULE = ("folds 1-4 -> tr; fold 5, per class: clips sorted by file name, the first half "
              "(n // 2) -> tt, the rest -> cv")


class Esc50Error(CorpusError):
    """A user-facing error: the message names the file or folder and what to do."""


@dataclass
class Esc50Config:
    """How the mixtures are made; the sizes, seed and rate default to the recipe's ``data``."""

    sample_rate: int = _DATA["sample_rate"]
    n_src: int = 2
    segment: float = 4.0  # mixture length, seconds
    n_tr: int = 0  # fixed training mixtures (0: none, the recipe mixes tr on the fly)
    n_cv: int = _DATA["n_cv"]
    n_tt: int = _DATA["n_tt"]
    seed: int = _DATA["corpus_seed"]
    esc10: bool = False  # only the ESC-10 subset
    max_db: float = 2.5  # relative level of the sources: U(0, max_db) dB
    mode: str = "min"

    def check(self):
        """Raise :class:`Esc50Error` for an option that cannot be built."""
        if self.sample_rate not in (8000, 16000):
            raise Esc50Error(f"sample_rate must be 8000 or 16000, got {self.sample_rate}")
        if self.n_src not in (2, 3):
            raise Esc50Error(f"n_src must be 2 or 3, got {self.n_src}")
        if not self.segment > 0:
            raise Esc50Error(f"segment must be positive (seconds), got {self.segment}")
        if self.n_tr < 0 or self.n_cv < 1 or self.n_tt < 1:
            raise Esc50Error(f"need n_tr >= 0, n_cv >= 1, n_tt >= 1; got {self.n_tr}, {self.n_cv}, "
                             f"{self.n_tt}")
        if self.max_db < 0:
            raise Esc50Error(f"max_db must be >= 0, got {self.max_db}")

    def n_mix(self, split: str) -> int:
        return {"tr": self.n_tr, "cv": self.n_cv, "tt": self.n_tt}[split]

    @property
    def seg_len(self) -> int:
        return int(round(self.segment * self.sample_rate))


@dataclass
class Clip:
    """One row of ``esc50.csv``."""

    filename: str
    fold: int
    target: int
    category: str
    esc10: bool
    src_file: str
    take: str
    path: Path
    where: str  # "<csv>, line <k>", for the messages

    @property
    def stem(self) -> str:
        return Path(self.filename).stem


@dataclass
class Plan:
    """One fixed mixture: its clips, where each is cut (:func:`choose_start`) and their gains."""

    mix_id: str
    clips: List[Clip]
    starts: List[int]
    gains_db: List[float]


def _fix(csv_path: Path) -> str:
    return (f"Restore the files named from the ESC-50 download ({DOWNLOAD}), or remove their lines "
            f"from {csv_path}.")


def find_esc50_root(esc50_dir) -> Path:
    """The ``ESC-50-master`` folder: ``esc50_dir`` itself or its ``ESC-50-master`` child.

    Returns:
        The folder holding ``meta/esc50.csv`` and ``audio/``. Raises :class:`Esc50Error` naming
        what was expected.
    """
    given = Path(esc50_dir).resolve()
    for root in (given, given / "ESC-50-master"):
        if (root / META).is_file():
            if not (root / "audio").is_dir():
                raise Esc50Error(f"{root / 'audio'} not found: ESC-50 keeps its clips in audio/ "
                                 f"beside meta/. Unzip the whole download ({DOWNLOAD}).")
            return root
    missing = "" if given.is_dir() else " (that folder does not exist)"
    raise Esc50Error(
        f"{given} does not look like ESC-50{missing}: expected {given / META} and "
        f"{given / 'audio'}/*.wav. Point --esc50_dir at the ESC-50-master folder of the download "
        f"({DOWNLOAD}), unzipped.")


def read_meta(csv_path: Path, audio_dir: Path, problems: List[str]) -> List[Clip]:
    """The clips ``esc50.csv`` lists; a bad row is appended to ``problems`` (and skipped).

    Raises :class:`Esc50Error` when the CSV cannot be read or lacks a column.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise Esc50Error(f"cannot read {csv_path}: {e}. {_fix(csv_path)}") from e
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise Esc50Error(f"{csv_path} lacks the column(s) {', '.join(missing)}: ESC-50's has "
                         f"{','.join(COLUMNS)}. Use the meta/esc50.csv of the download ({DOWNLOAD}).")
    clips, seen = [], {}
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}, line {line}"
        name = (row["filename"] or "").strip()
        try:
            fold, target = int(row["fold"]), int(row["target"])
        except (TypeError, ValueError):
            problems.append(f"{where}: fold {row['fold']!r} and target {row['target']!r} must be integers")
            continue
        esc10 = str(row["esc10"]).strip().lower()
        if not name or "/" in name or "\\" in name:
            problems.append(f"{where}: filename {name!r} is not a file name of audio/")
        elif not 1 <= fold <= HELDOUT_FOLD:
            problems.append(f"{where}: fold {fold} is not 1-{HELDOUT_FOLD}")
        elif esc10 not in ("true", "false"):
            problems.append(f"{where}: esc10 {row['esc10']!r} is not True or False")
        elif not (row["category"] or "").strip():
            problems.append(f"{where}: empty category")
        elif name in seen:
            problems.append(f"{where}: {name} is already listed on line {seen[name]}")
        else:
            seen[name] = line
            clips.append(Clip(name, fold, target, row["category"].strip(), esc10 == "true",
                              row["src_file"], row["take"], audio_dir / name, where))
    return clips


def check_files(clips: Sequence[Clip], problems: List[str]):
    """Each clip's file exists and its header reads as mono audio; problems name file and line."""
    for c in clips:
        try:
            info = sf.info(str(c.path))
        except Exception as e:  # libsndfile: LibsndfileError/RuntimeError; a missing file: OSError
            why = "file not found" if not c.path.is_file() else f"unreadable audio ({e})"
            problems.append(f"{c.path}: {why} (listed in {c.where})")
            continue
        if info.channels != 1:
            problems.append(f"{c.path}: {info.channels} channels, ESC-50 clips are mono ({c.where})")
        elif info.frames == 0:
            problems.append(f"{c.path}: empty audio ({c.where})")


def load_clips(clips: Sequence[Clip], sample_rate: int, problems: List[str],
               progress: bool = True) -> Dict[str, np.ndarray]:
    """Each clip read, resampled to ``sample_rate`` and quantised to 16 bit: filename -> int16.

    A clip that cannot be decoded is appended to ``problems``.
    """
    from tqdm import tqdm

    audio = {}
    for c in tqdm(clips, desc="ESC-50 clips", unit="clip", disable=None if progress else True):
        try:
            x, _ = read_audio(c.path, sample_rate=sample_rate)
        except AudioError as e:
            problems.append(f"{e} (listed in {c.where})")
            continue
        audio[c.filename] = to_int16(x)
    return audio


def assign_splits(clips: Sequence[Clip]) -> Dict[str, List[Clip]]:
    """Folds 1-4 -> ``tr``; fold 5, per class, sorted by file name: first ``n // 2`` -> ``tt``,
    the rest -> ``cv``. Each split is sorted by file name."""
    out: Dict[str, List[Clip]] = {s: [] for s in SPLITS}
    held: Dict[int, List[Clip]] = defaultdict(list)
    for c in clips:
        (held[c.target] if c.fold == HELDOUT_FOLD else out["tr"]).append(c)
    for target in sorted(held):
        group = sorted(held[target], key=lambda c: c.filename)
        out["tt"] += group[:len(group) // 2]
        out["cv"] += group[len(group) // 2:]
    for split in SPLITS:
        out[split].sort(key=lambda c: c.filename)
    return out


def choose_start(x: np.ndarray, seg_len: int, rng: np.random.Generator) -> int:
    """Where a mixture cuts clip ``x``: a sample of ``x`` where the segment starts (drawn
    uniformly among the cuts holding at least :data:`MIN_ENERGY` of the clip's energy, else the
    most energetic cut), or, for a clip not longer than the segment, minus the offset at which the
    clip starts in the segment (drawn uniformly)."""
    n = len(x)
    if n <= seg_len:
        return -int(rng.integers(0, seg_len - n + 1))
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    window = energy[seg_len:] - energy[:-seg_len]
    ok = np.flatnonzero(window >= MIN_ENERGY * energy[-1])
    if not len(ok):
        ok = np.array([int(np.argmax(window))])
    return int(ok[int(rng.integers(len(ok)))])


def cut(x: np.ndarray, start: int, seg_len: int) -> np.ndarray:
    """The segment of clip ``x`` that :func:`choose_start`'s ``start`` gives (``seg_len`` samples)."""
    if start >= 0 and len(x) >= seg_len:
        return x[start:start + seg_len]
    out = np.zeros(seg_len, dtype=x.dtype)
    out[-start:-start + len(x)] = x
    return out


def plan_mixtures(pool: Sequence[Clip], audio: Dict[str, np.ndarray], n: int, cfg: Esc50Config,
                  rng: np.random.Generator, split: str) -> List[Plan]:
    """``n`` distinct mixtures of ``cfg.n_src`` clips of different classes: the classes drawn
    uniformly without replacement, a clip of each uniformly, its cut by :func:`choose_start`."""
    by_class: Dict[int, List[Clip]] = defaultdict(list)
    for c in pool:
        by_class[c.target].append(c)
    classes = sorted(by_class)
    seen, plans = set(), []
    for _ in range(n):
        for _try in range(MAX_TRIES):
            picked = rng.choice(len(classes), size=cfg.n_src, replace=False)
            chosen = [by_class[classes[int(k)]] for k in picked]
            chosen = [group[int(rng.integers(len(group)))] for group in chosen]
            starts = [choose_start(audio[c.filename], cfg.seg_len, rng) for c in chosen]
            key = tuple(sorted(zip((c.filename for c in chosen), starts)))
            if key not in seen:
                break
        else:
            log.warning("Split %s: only %d distinct mixtures could be drawn (asked %d).", split,
                        len(plans), n)
            break
        seen.add(key)
        gains = relative_gains(rng, cfg.n_src, cfg.max_db)
        mix_id = "_".join(f"{c.stem}_{s}_{g:.4f}" for c, s, g in zip(chosen, starts, gains))
        plans.append(Plan(mix_id, chosen, starts, gains))
    return plans


def _slug(category: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", category) or "class"


@dataclass
class _Build:
    """A build in progress: where it writes and the files it wrote (the rest is pruned)."""

    out: Path
    cfg: Esc50Config
    resume: bool
    keep: List[Path] = field(default_factory=list)
    manifests: Dict[Tuple[str, str], list] = field(default_factory=dict)

    def wav(self, path: Path, x: np.ndarray) -> Path:
        write_wav(path, x, self.cfg.sample_rate, skip_existing=self.resume)
        self.keep.append(path)
        return path

    def write_manifests(self):
        """All of ``json/`` into the staging folder, then moved into place in one rename."""
        staging, final = self.out / STAGING, self.out / "json"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for (split, name), obj in sorted(self.manifests.items()):
                atomic_write_json(staging / split / f"{name}.json", obj,
                                  indent=1 if name == "utterances" else None)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if final.exists():  # a resumed build that had moved json/ in before it stopped
            shutil.rmtree(final)
        os.replace(staging, final)
        self.keep += [final / split / f"{name}.json" for split, name in self.manifests]


def _write_clips(build: _Build, splits: Dict[str, List[Clip]], audio: Dict[str, np.ndarray],
                 progress: bool) -> Dict[str, Path]:
    """The clips at the corpus's rate, and each split's pool ``utterances.json``."""
    from tqdm import tqdm

    paths: Dict[str, Path] = {}
    for split in SPLITS:
        records = []
        for c in tqdm(splits[split], desc=f"clips {split}", unit="clip",
                      disable=None if progress else True):
            p = build.wav(build.out / "clips" / split / _slug(c.category) / f"{c.stem}.wav",
                          audio[c.filename])
            paths[c.filename] = p
            records.append({"path": str(p), "speaker": c.category, "n_samples": len(audio[c.filename]),
                            "utt_id": c.stem, "target": c.target, "fold": c.fold,
                            "esc10": c.esc10, "src_file": c.src_file, "take": c.take})
        build.manifests[(split, "utterances")] = records
    return paths


def _write_mixtures(build: _Build, plans: Dict[str, List[Plan]], audio: Dict[str, np.ndarray],
                    clip_path: Dict[str, Path], progress: bool) -> List[dict]:
    """The fixed mixtures and their manifests; returns the rows of ``mixtures.csv``."""
    from tqdm import tqdm

    cfg = build.cfg
    names = ["mix"] + src_names(cfg.n_src)
    rows = []
    for split, split_plans in plans.items():
        lists = {k: [] for k in names}
        base = build.out / wav_dir(cfg.sample_rate, cfg.mode) / split
        for plan in tqdm(split_plans, desc=f"mixtures {split}", unit="mix",
                         disable=None if progress else True):
            segs = [from_int16(cut(audio[c.filename], s, cfg.seg_len))
                    for c, s in zip(plan.clips, plan.starts)]
            mix_q, srcs_q = mix_sources(segs, plan.gains_db, mode=cfg.mode)
            for name, sig in zip(names, [mix_q] + srcs_q):
                lists[name].append([str(build.wav(base / name / f"{plan.mix_id}.wav", sig)), len(mix_q)])
            row = {"split": split, "mix_id": plan.mix_id, "n_samples": len(mix_q),
                   "snr_db": f"{plan.gains_db[0] - plan.gains_db[1]:.4f}"}
            for name, c, s, g in zip(src_names(cfg.n_src), plan.clips, plan.starts, plan.gains_db):
                row.update({f"{name}_path": os.path.relpath(clip_path[c.filename], build.out),
                            f"{name}_class": c.category, f"{name}_start": s,
                            f"{name}_gain_db": f"{g:.4f}"})
            rows.append(row)
        for name, lst in lists.items():
            build.manifests[(split, name)] = lst
    return rows


def _licenses(cfg: Esc50Config) -> List[dict]:
    """The ``licenses`` of ``corpus.json``, in the fields the embedded corpus uses."""
    lic, link, nc = LICENSES[cfg.esc10]
    return [{"title": "ESC-50: Dataset for Environmental Sound Classification"
                      + (" (ESC-10 subset)" if cfg.esc10 else ""),
             "title_link": "https://github.com/karolpiczak/ESC-50",
             "author": "Karol J. Piczak; clips from Freesound.org recordings, attributed per clip "
                       "in the dataset's LICENSE file (licenses/ESC-50.LICENSE)",
             "author_link": "https://github.com/karolpiczak/ESC-50/blob/master/LICENSE",
             "license": lic, "license_link": link, "non_commercial": nc}]


def _licenses_md(cfg: Esc50Config, have_license_file: bool) -> str:
    lic, link, nc = LICENSES[cfg.esc10]
    lines = ["# Licence of this corpus", "",
             "Mixtures made from ESC-50 (K. J. Piczak, \"ESC: Dataset for Environmental Sound "
             "Classification\", ACM Multimedia 2015), https://github.com/karolpiczak/ESC-50.", "",
             f"* Licence: {lic} ({link})" + (": non-commercial use only." if nc else "."),
             "* ESC-50 as a whole is CC BY-NC 3.0; its ESC-10 subset is CC BY 3.0.",
             "* Attribution of each clip (Freesound.org author and licence): "
             + ("licenses/ESC-50.LICENSE, the dataset's LICENSE file." if have_license_file else
                "the dataset's LICENSE file (not found beside meta/: see "
                "https://github.com/karolpiczak/ESC-50/blob/master/LICENSE)."), ""]
    return "\n".join(lines)


def _split_stats(pool: Sequence[Clip], audio, split_plans: Sequence[Plan], sr: int, seg_len: int) -> dict:
    n_mix = len(split_plans)
    return {"n_clips": len(pool), "n_classes": len({c.target for c in pool}),
            "hours_clips": round(sum(len(audio[c.filename]) for c in pool) / sr / 3600, 4),
            "n_mixtures": n_mix, "hours_mixtures": round(n_mix * seg_len / sr / 3600, 4),
            "clips_per_class": dict(sorted(Counter(c.category for c in pool).items())),
            "mixtures_per_class": dict(sorted(Counter(c.category for p in split_plans
                                                      for c in p.clips).items()))}


def build_esc50(esc50_dir, out, cfg: Optional[Esc50Config] = None, progress: bool = True) -> dict:
    """Build the ESC-50 mixture corpus into ``out`` (see the module's docstring).

    Args:
        esc50_dir: the ``ESC-50-master`` folder (or the folder above it).
        out: the corpus folder.
        cfg: how to build (default :class:`Esc50Config`).
        progress: show progress bars.

    Returns:
        The content of ``corpus.json``. Raises :class:`Esc50Error`, before anything is written,
        for a wrong layout, a bad CSV row or a missing/unreadable clip (every one is listed).
    """
    cfg = cfg or Esc50Config()
    cfg.check()
    root = find_esc50_root(esc50_dir)
    csv_path = root / META
    problems: List[str] = []
    clips = read_meta(csv_path, root / "audio", problems)
    if cfg.esc10:
        clips = [c for c in clips if c.esc10]
    check_files(clips, problems)
    raise_problems(problems, csv_path, _fix(csv_path), Esc50Error)
    if not clips:
        raise Esc50Error(f"{csv_path} lists no {'ESC-10 ' if cfg.esc10 else ''}clips. {_fix(csv_path)}")
    license_file = root / "LICENSE"
    files = hashlib.sha256("".join(f"{c.filename}\0{c.path.stat().st_size}\n" for c in clips).encode())
    content = config_hash({"version": CORPUS_VERSION, "config": asdict(cfg),
                           "meta_sha256": file_sha256(csv_path), "files": files.hexdigest(),
                           "license": file_sha256(license_file) if license_file.is_file() else None})
    out = Path(out).resolve()
    state = BuildState(out, config_hash({"content": content, "root": str(root), "out": str(out)}),
                       MANAGED)
    if state.is_done():
        log.info("ESC-50 corpus in %s is up to date: nothing to do.", out)
        return json.loads((out / "corpus.json").read_text())

    audio = load_clips(clips, cfg.sample_rate, problems, progress)
    raise_problems(problems, csv_path, _fix(csv_path), Esc50Error)
    silent = sorted(c.filename for c in clips if not np.any(audio[c.filename]))
    if silent:
        log.warning("Skipped %d all-zero clip(s): %s", len(silent), ", ".join(silent[:10]))
    splits = assign_splits([c for c in clips if c.filename not in set(silent)] if silent else clips)
    for split in SPLITS:
        n_classes = len({c.target for c in splits[split]})
        if n_classes < cfg.n_src:
            folds = "folds 1-4" if split == "tr" else "fold 5"
            raise Esc50Error(f"split {split} has clips of {n_classes} class(es) ({folds} of "
                             f"{csv_path}); mixtures need {cfg.n_src} different classes.")
    plans = {split: plan_mixtures(splits[split], audio, cfg.n_mix(split), cfg,
                                  np.random.default_rng([cfg.seed, 2, SPLITS.index(split)]), split)
             for split in SPLITS if cfg.n_mix(split)}

    state.begin()
    build = _Build(out, cfg, state.resume)
    clip_path = _write_clips(build, splits, audio, progress)
    rows = _write_mixtures(build, plans, audio, clip_path, progress)
    build.write_manifests()
    fields = ["split", "mix_id", "n_samples", "snr_db"]
    for name in src_names(cfg.n_src):
        fields += [f"{name}_path", f"{name}_class", f"{name}_start", f"{name}_gain_db"]
    build.keep.append(atomic_write_csv(out / "mixtures.csv", rows, fields, lineterminator="\n"))
    if license_file.is_file():
        build.keep.append(atomic_write_bytes(out / "licenses" / "ESC-50.LICENSE",
                                             license_file.read_bytes()))
    else:
        log.warning("%s not found: the per-clip attributions are not copied to %s.", license_file,
                    out / "licenses")
    build.keep.append(atomic_write_text(out / "LICENSES.md", _licenses_md(cfg, license_file.is_file())))
    corpus = {
        "name": f"esc{'10' if cfg.esc10 else '50'}-{cfg.n_src}mix",
        "version": CORPUS_VERSION,
        "config_hash": content,
        "config": asdict(cfg),
        "sample_rate": cfg.sample_rate,
        "mode": cfg.mode,
        "n_src": cfg.n_src,
        "source": str(root),
        "split_rule": SPLIT_RULE,
        "mixing": (f"{cfg.n_src} clips of different classes, {cfg.segment:g} s cuts at random "
                   f"offsets, relative level U(0, {cfg.max_db:g}) dB; tr: dynamic mixing of the "
                   "pool (speaker = class)" + (f" and {cfg.n_tr} fixed mixtures" if cfg.n_tr else "")),
        "splits": {s: _split_stats(splits[s], audio, plans.get(s, []), cfg.sample_rate, cfg.seg_len)
                   for s in SPLITS},
        "classes": {str(t): cat for t, cat in sorted({(c.target, c.category) for c in clips})},
        "dropped": {"silent": silent},
        "licenses": _licenses(cfg),
    }
    build.keep.append(atomic_write_json(out / "corpus.json", corpus))
    state.prune(build.keep)
    state.finish({"corpus": corpus["name"], "content_hash": content})
    log.info("ESC-50 corpus built in %s: %s", out, ", ".join(
        f"{s} {v['n_clips']} clips / {v['n_mixtures']} mixtures" for s, v in corpus["splits"].items()))
    return json.loads(json.dumps(corpus))


def get_parser() -> argparse.ArgumentParser:
    d = Esc50Config()
    p = builder_parser("esc50", "Build 2-source mixtures of ESC-50 environmental sounds "
                       "(different classes) for the recipe.", "output folder")
    p.add_argument("--esc50_dir", required=True,
                   help="the ESC-50-master folder (holding audio/ and meta/esc50.csv)")
    p.add_argument("--sample_rate", type=int, default=d.sample_rate, choices=[8000, 16000])
    p.add_argument("--segment", type=float, default=d.segment, help="mixture length, seconds")
    p.add_argument("--n_cv", type=int, default=d.n_cv, help="fixed validation mixtures")
    p.add_argument("--n_tt", type=int, default=d.n_tt, help="fixed test mixtures")
    p.add_argument("--n_tr", type=int, default=d.n_tr,
                   help="fixed training mixtures (default 0: the recipe mixes tr on the fly)")
    p.add_argument("--n_src", type=int, default=d.n_src, choices=[2, 3])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--esc10", action="store_true", help="only the ESC-10 subset (CC BY 3.0)")
    p.add_argument("--no_progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    cfg = Esc50Config(sample_rate=args.sample_rate, n_src=args.n_src, segment=args.segment,
                      n_tr=args.n_tr, n_cv=args.n_cv, n_tt=args.n_tt, seed=args.seed,
                      esc10=args.esc10)
    return run_build(lambda: build_esc50(args.esc50_dir, args.out, cfg,
                                         progress=not args.no_progress), (Esc50Error,))


if __name__ == "__main__":
    sys.exit(main())
