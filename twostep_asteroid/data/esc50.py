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

This module is ESC-50's own part (:class:`Esc50Source`): the CSV, the fold split, the clips (each
resampled, one utterance of the pool, its class as its speaker) and the licence. The mixtures,
manifests, ``mixtures.csv``, ``corpus.json`` and the build state are :mod:`.builder`'s, as for the
embedded corpus (:mod:`.prompts`) and a folder of recordings (:mod:`.audio_dir`).

Splits (as the authors' ``create_esc50_hierarchical.py`` partitions it):

* folds 1-4 -> ``tr``;
* fold 5, per class: its clips sorted by file name, the first half (``n // 2``) -> ``tt``, the
  rest -> ``cv`` (4 and 4 clips of each class in ESC-50). Clips are never shared between splits.

Mixtures of ``n_src`` (2) clips of *different* classes (:func:`~.builder.plan_mixtures`, the class
as the speaker: the first clip uniformly, the next among the clips of other classes), ``segment``
(4) s long: each clip is cut at a random offset (a clip shorter than the segment is placed at a
random offset in it, zero-padded), a cut holding at least :data:`~.builder.MIN_ENERGY` of its
clip's energy (ESC-50 clips are often padded with digital silence; :func:`~.builder.choose_start`);
relative level uniform in ``0..max_snr_db`` (2.5) dB (s1 at +r/2 dB, s2 at -r/2,
:func:`~.mixing.relative_gains`, as the authors' ``max_abs_snr`` 2.5); wsj0-2mix scaling
(:func:`~.mixing.mix_sources`). All-zero clips are dropped from their split (``corpus.json``:
``dropped``).

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

The build is idempotent, resumable and deterministic (:func:`.builder.build`: the same inputs and
options do nothing, a crashed build resumes, other options rebuild; the same seed gives the same
bytes). Nothing here imports torch.

Licence: ESC-50 as a whole is CC BY-NC 3.0 (non-commercial), the ESC-10 subset CC BY 3.0; the
per-clip attributions are in the dataset's LICENSE file. ``corpus.json`` records it under
``licenses``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf

from ..fileio import atomic_write_bytes, atomic_write_text
from . import builder
from .audio_io import AudioError, read_audio, resample, to_int16
from .builder import MixConfig, Recording, Utterance
from .buildstate import config_hash, file_sha256
from .common import SPLITS, CorpusError, builder_parser, run_build, setup_logging
from .manifests import raise_problems

log = logging.getLogger(__name__)

CORPUS_VERSION = 2  # 2: built by .builder (pool records, mixtures.csv and corpus.json as its)
META = Path("meta") / "esc50.csv"
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
HELDOUT_FOLD = 5  # folds 1-4: tr; fold 5: cv and tt
DOWNLOAD = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
LICENSES = {  # esc10 -> the licence of what is used (the dataset's README and LICENSE)
    False: ("CC BY-NC 3.0", "https://creativecommons.org/licenses/by-nc/3.0/", True),
    True: ("CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/", False),
}
SPLIT_RULE = ("folds 1-4 -> tr; fold 5, per class: clips sorted by file name, the first half "
              "(n // 2) -> tt, the rest -> cv")
DROP_WHY = {"silent": "all-zero clips (digital silence only)"}


class Esc50Error(CorpusError):
    """A user-facing error: the message names the file or folder and what to do."""


@dataclass
class Esc50Config(MixConfig):
    """How the mixtures are made (the fields before ``segment`` are
    :class:`~.builder.MixConfig`'s); the sizes, seed and rate default to the recipe's ``data``."""

    n_tr: int = 0  # fixed training mixtures (0: none, the recipe mixes tr on the fly)
    n_src: int = 2
    max_snr_db: float = 2.5  # relative level of the sources: U(0, max_snr_db) dB
    segment: float = 4.0  # mixture length, seconds
    esc10: bool = False  # only the ESC-10 subset

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
        if self.max_snr_db < 0:
            raise Esc50Error(f"max_snr_db must be >= 0, got {self.max_snr_db}")

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


def load_clips(clips: Sequence[Clip], sample_rate: int, problems: List[str], stats: Counter,
               progress: bool = True) -> Dict[str, np.ndarray]:
    """Each clip read, resampled to ``sample_rate`` (counted in ``stats["resampled"]``) and
    quantised to 16 bit: filename -> int16. A clip that cannot be decoded is appended to
    ``problems``."""
    from tqdm import tqdm

    audio = {}
    for c in tqdm(clips, desc="ESC-50 clips", unit="clip", disable=None if progress else True):
        try:
            x, sr = read_audio(c.path)
        except AudioError as e:
            problems.append(f"{e} (listed in {c.where})")
            continue
        if sr != sample_rate:
            stats["resampled"] += 1
            x = resample(x, sr, sample_rate)
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


class Esc50Source(builder.CorpusSource):
    """ESC-50's part of :func:`.builder.build`: the clips the CSV lists (checked), split by fold,
    each one utterance of the pool with its class as its speaker; the licence files."""

    version = CORPUS_VERSION
    drop_why = DROP_WHY
    pool_dir = "clips"

    def __init__(self, root: Path, clips: Sequence[Clip], cfg: Esc50Config):
        self.root, self.csv_path, self.cfg = root, root / META, cfg
        self.clips = {c.stem: c for c in clips}
        self.license_file = root / "LICENSE"
        files = hashlib.sha256("".join(f"{c.filename}\0{c.path.stat().st_size}\n"
                                       for c in clips).encode())
        lic = file_sha256(self.license_file) if self.license_file.is_file() else None
        self.source_id = "esc50:" + config_hash({"meta_sha256": file_sha256(self.csv_path),
                                                 "files": files.hexdigest(), "license": lic})

    def name(self, cfg: Esc50Config) -> str:
        return f"esc{'10' if cfg.esc10 else '50'}-{cfg.n_src}mix"

    def recordings(self, cfg: Esc50Config, dropped: Dict[str, List[str]]):
        """The clips, split by fold (:func:`assign_splits`), with their class as their speaker."""
        splits = assign_splits(list(self.clips.values()))
        recs = [Recording("audio", c.category, c.filename, c.path, split)
                for split in SPLITS for c in splits[split]]
        return recs, len(recs)

    def utterances(self, recordings: Sequence[Recording], cfg: Esc50Config, stats: Counter,
                   dropped: Dict[str, List[str]], progress: bool = True):
        """Each clip decoded (:func:`load_clips`) as it is, one utterance (its id the file stem),
        in file-name order; the all-zero clips are dropped."""
        clips = [self.clips[Path(r.rel).stem] for r in recordings]
        problems: List[str] = []
        audio = load_clips(clips, cfg.sample_rate, problems, stats, progress)
        raise_problems(problems, self.csv_path, _fix(self.csv_path), Esc50Error)
        utts: Dict[str, List[Utterance]] = {s: [] for s in self.splits}
        for r, c in zip(recordings, clips):
            x = audio[c.filename]
            if not np.any(x):
                dropped["silent"].append(c.filename)
                continue
            utts[r.split].append(Utterance(c.stem, r.speaker, r.split, x, [r.source_id]))
            stats["prompts_used"] += 1
            stats["prompt_seconds_used"] += len(x) / cfg.sample_rate
        if dropped.get("silent"):
            log.warning("Skipped %d all-zero clip(s): %s", len(dropped["silent"]),
                        ", ".join(dropped["silent"][:10]))
        return utts

    def check_pool(self, utts, cfg: Esc50Config):
        for split in SPLITS:
            n_classes = len({u.speaker for u in utts[split]})
            if n_classes < cfg.n_src:
                folds = "folds 1-4" if split == "tr" else "fold 5"
                raise Esc50Error(f"split {split} has clips of {n_classes} class(es) ({folds} of "
                                 f"{self.csv_path}); mixtures need {cfg.n_src} different classes.")

    def utterance_info(self, utt: Utterance) -> dict:
        c = self.clips[utt.utt_id]
        return {"target": c.target, "fold": c.fold, "esc10": c.esc10, "src_file": c.src_file,
                "take": c.take}

    def write_extras(self, build, speakers_used, per_split):
        """Copy the dataset's LICENSE (the per-clip attributions) and write ``LICENSES.md``."""
        have = self.license_file.is_file()
        if have:
            build.keep.append(atomic_write_bytes(build.out / "licenses" / "ESC-50.LICENSE",
                                                 self.license_file.read_bytes()))
        else:
            log.warning("%s not found: the per-clip attributions are not copied to %s.",
                        self.license_file, build.out / "licenses")
        build.keep.append(atomic_write_text(build.out / "LICENSES.md", _licenses_md(build.cfg, have)))

    def record_extras(self, speakers_used) -> dict:
        cfg = self.cfg
        return {
            "esc50_dir": str(self.root),
            "split_rule": SPLIT_RULE,
            "mixing": (f"{cfg.n_src} clips of different classes, {cfg.segment:g} s cuts at random "
                       f"offsets, relative level U(0, {cfg.max_snr_db:g}) dB; tr: dynamic mixing of "
                       "the pool (speaker = class)"
                       + (f" and {cfg.n_tr} fixed mixtures" if cfg.n_tr else "")),
            "classes": {str(t): cat for t, cat in sorted({(c.target, c.category)
                                                          for c in self.clips.values()})},
            "licenses": _licenses(cfg),
        }


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
    return builder.build(Esc50Source(root, clips, cfg), out, cfg, progress=progress)


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
                                         progress=not args.no_progress), (CorpusError,))


if __name__ == "__main__":
    sys.exit(main())
