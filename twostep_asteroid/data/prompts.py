"""A small wsj0-2mix-style corpus of real speech, built from voice recordings packaged by Debian.

Sources (:data:`~.voices.PACKAGES`, fetched with ``apt-get download``, unpacked with ``dpkg -x``
by :mod:`.debian`, never installed): Asterisk voice prompts (wav and raw GSM 6.10), the Czech voices
of the game Fish Fillets NG (Ogg, 22.05 kHz) and codec2's speech samples (raw 16-bit, 8 kHz).
:data:`~.voices.SPEAKERS` lists the voices with their licences.

Pipeline (each step is a function, testable on a fake tree of audio files)::

    .debs --(apt-get download, dpkg -x)--> extracted tree
          --scan_prompt_tree--> prompts (speaker, split, path), non-speech dropped by name
          --assign_splits--> held-out speakers to the unseen-speaker test splits
          --clean_prompt--> trimmed 8 kHz mono speech, long internal pauses shortened
          --make_utterances--> 2.5-5 s single-speaker utterances (long prompts cut at pauses,
                               short ones joined with 0.1-0.3 s gaps; same speaker, same split)
          --plan_mixtures--> 2-speaker "min" mixtures, relative level U(0, 5) dB, wsj0-2mix scaling
          --> <out>/wav8k/min/<split>/{mix,s1,s2}/*.wav, <out>/json/<split>/{mix,s1,s2}.json,
              <out>/json/<split>/utterances.json, <out>/utterances/<split>/<spk>/*.wav,
              <out>/mixtures.csv, <out>/corpus.json, <out>/LICENSES.md, <out>/licenses/*

Splits:

* ``tr``/``cv``/``tt`` hold the training pool (every speaker not held out, or
  ``train_speakers``). They are utterance-disjoint, not speaker-disjoint: each source prompt goes
  to tr/cv/tt by a SHA-256 hash of its file name, so the same prompt (e.g. ``vm-options``) lands in
  the same split in every language, and every utterance is made of prompts of one split. ``tt`` is
  the *seen-speaker* test.
* ``tt_unseen`` (``unseen_speakers``: by default the French and Colombian Spanish GSM voices) and
  ``tt_codec2`` (the codec2 talkers, short and partly radio-degraded) are the *unseen-speaker*
  tests: their speakers are in no tr/cv mixture. Their utterances and mixtures do not depend on the
  training pool (each speaker/split group and each split has its own random stream), so corpora
  built with different ``train_speakers`` share byte-identical unseen tests.

CLI (sizes, seed and ``n_src`` default to the recipe's, ``config.DEFAULTS["data"]``)::

    python -m twostep_asteroid.data.prompts --out DIR [--deb_cache DIR] [--seed S]
        [--n_tr N --n_cv N --n_tt N] [--n_src 2] [--train_speakers a,b,...]
        [--unseen_speakers armelle,july] [--n_unseen N] [--n_codec2 N] [--src_dir TREE ...]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..config import DEFAULTS
from ..fileio import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from .audio_io import (AudioError, MultichannelError, from_int16, read_audio, resample, to_int16,
                       write_wav)
from .buildstate import BuildState, config_hash, file_sha256
from .common import SPLITS, CorpusError, builder_parser, run_build, src_names, wav_dir
from .debian import extract_debs, fetch_debs
from .mixing import mix_sources, quietest_cut, relative_gains, shorten_pauses, trim_silence
from .voices import (
    CODEC2_CLIPS,
    DEFAULT_UNSEEN,
    FILLETS_NAME,
    FILLETS_SPEAKER,
    PACKAGES,
    SPEAKERS,
    VOICE_DIRS,
    find_copyright_files,
    license_records,
    licenses_md,
)

log = logging.getLogger(__name__)

CORPUS_VERSION = 2
UNSEEN_SPLITS = ("tt_unseen", "tt_codec2")  # held-out speakers only; SPLITS: split by prompt name
ALL_SPLITS = SPLITS + UNSEEN_SPLITS

# Non-speech files, by name (relative path inside a voice folder, without extension). Found by
# listing the packages and checking the suspicious ones' spectra (pure tones have a spectral
# flatness of ~1e-5; speech ~1e-2): silence/1..10 (digital silence), beep, beeperr,
# ascending-2tone/descending-2tone, confbridge-join/-leave (tone jingles), spy-jingle, and
# tt-monkeys (16 s of monkey screeching; tt-monkeysintro and tt-weasels are speech).
DROP_RULES = (
    ("silence", re.compile(r"(^|/)silence/")),
    ("beep", re.compile(r"(^|/)beep[^/]*$")),
    ("tone", re.compile(r"(^|/)[^/]*(\d|-)tones?$|(^|/)tones?[^/]*$")),
    ("dtmf", re.compile(r"dtmf")),
    ("jingle", re.compile(r"jingle|(^|/)confbridge-(join|leave)$")),
    ("non-speech", re.compile(r"(^|/)tt-monkeys$|(^|/)moh/|music")),
)
DROP_WHY = {  # the explanations of the drop reasons in corpus.json
    "silence": "silence/* files (digital silence) dropped by name",
    "beep": "beep sounds dropped by name",
    "tone": "tone sounds (ascending/descending-2tone) dropped by name",
    "dtmf": "DTMF tones dropped by name",
    "jingle": "jingles (spy-jingle, confbridge-join/leave tones) dropped by name",
    "non-speech": "non-speech recordings (tt-monkeys: monkey sounds) dropped by name",
    "other-character": "Fish Fillets lines of characters other than the two fish, and sound "
                       "effects",
    "codec2-unlisted": "codec2 files that are not speech or repeat another file (CODEC2_CLIPS)",
    "not_in_train_pool": "speakers left out of the training pool (train_speakers)",
    "corrupt": "unreadable or empty files",
    "multichannel": "not mono",
    "silent": "shorter than {min_prompt} s after trimming silence",
    "short_remainder": "last short pieces of a speaker/split group that could not be joined",
}

_DATA = DEFAULTS["data"]  # the recipe's defaults: the corpus sizes, seed, rate and speakers


@dataclass
class CorpusConfig:
    """How the corpus is built; its fields (with the source) identify a build.

    The sizes (``n_tr``, ``n_cv``, ``n_tt``), ``n_src``, ``seed``, ``sample_rate`` and
    ``train_speakers`` default to the recipe's ``data`` section (``config.DEFAULTS``).
    """

    n_tr: int = _DATA["n_tr"]
    n_cv: int = _DATA["n_cv"]
    n_tt: int = _DATA["n_tt"]
    n_src: int = _DATA["n_src"]
    seed: int = _DATA["corpus_seed"]
    sample_rate: int = _DATA["sample_rate"]
    mode: str = "min"
    min_len: float = 2.5  # utterance length range, seconds
    max_len: float = 5.0
    gap_min: float = 0.1  # silence between joined prompts, seconds
    gap_max: float = 0.3
    max_pause: Optional[float] = 0.4  # internal pauses are shortened to this (None: keep)
    top_db: float = 40.0  # trimming threshold below the loudest frame
    min_prompt: float = 0.1  # shorter trimmed prompts are dropped as (near) silent
    split_fractions: tuple = (0.8, 0.1, 0.1)
    max_snr_db: float = 5.0
    # Speakers of tr/cv/tt (None: every speaker found that is not held out), and the speakers held
    # out for tt_unseen; codec2 talkers always go to tt_codec2.
    train_speakers: Optional[tuple] = (None if _DATA["train_speakers"] is None
                                       else tuple(_DATA["train_speakers"]))
    unseen_speakers: tuple = DEFAULT_UNSEEN
    n_unseen: Optional[int] = None  # mixtures of tt_unseen (None: n_tt)
    n_codec2: Optional[int] = None  # mixtures of tt_codec2 (None: min(n_tt, 100); 37 utterances)

    def __post_init__(self):
        self.split_fractions = tuple(float(f) for f in self.split_fractions)
        if self.train_speakers is not None:
            self.train_speakers = tuple(sorted({str(s) for s in self.train_speakers}))
        self.unseen_speakers = tuple(sorted({str(s) for s in self.unseen_speakers}))
        both = set(self.train_speakers or ()) & set(self.unseen_speakers)
        if both:
            raise ValueError(f"speakers {sorted(both)} are both in train_speakers and unseen_speakers")
        if self.n_src < 2:
            raise ValueError("n_src must be >= 2")
        if self.mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        if self.max_len < 2 * self.min_len:
            raise ValueError("max_len must be at least 2 * min_len")
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError("split_fractions must be 3 numbers summing to 1")
        if not (0 <= self.gap_min <= self.gap_max):
            raise ValueError("need 0 <= gap_min <= gap_max")

    def n_mix(self, split: str) -> int:
        return {"tr": self.n_tr, "cv": self.n_cv, "tt": self.n_tt,
                "tt_unseen": self.n_tt if self.n_unseen is None else self.n_unseen,
                "tt_codec2": min(self.n_tt, 100) if self.n_codec2 is None else self.n_codec2}[split]

    @property
    def wav_dir(self) -> str:
        return wav_dir(self.sample_rate, self.mode)


@dataclass
class Prompt:
    voice: str
    speaker: str
    rel: str  # path inside the voice folder, posix, with extension
    path: Path
    split: str

    @property
    def source_id(self) -> str:
        return f"{self.voice}/{self.rel}"


@dataclass
class Utterance:
    utt_id: str
    speaker: str
    split: str
    audio: np.ndarray  # int16
    sources: List[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(len(self.audio))


# --------------------------------------------------------------------------------------------
# Splits, scanning, cleaning
# --------------------------------------------------------------------------------------------
def split_key(rel: str) -> str:
    """The split is decided by the prompt's file name without folder and extension, so that
    ``followme/sorry`` and ``sorry`` (near-identical recordings) and the same prompt in other
    languages all land in the same split."""
    return Path(rel).stem.lower()


def stable_int(key: str) -> int:
    """A 52-bit integer from a SHA-256 of ``key`` (the same in every process, unlike ``hash``)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16)


def assign_split(key: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """Deterministic split from a SHA-256 of ``key`` (not Python's salted ``hash``)."""
    h = stable_int(key) / float(16 ** 13)
    acc = 0.0
    for split, frac in zip(SPLITS, fractions):
        acc += frac
        if h < acc:
            return split
    return SPLITS[-1]


def drop_reason(rel: str) -> Optional[str]:
    """The :data:`DROP_RULES` reason a file is not speech, from its name (``None``: keep it)."""
    stem = str(Path(rel).with_suffix("")).replace(os.sep, "/").lower()
    for reason, rx in DROP_RULES:
        if rx.search(stem):
            return reason
    return None


def _speaker_of(voice: str) -> str:
    if voice in VOICE_DIRS:
        return VOICE_DIRS[voice]
    return re.sub(r"[^a-z0-9]+", "", voice.lower()) or "unknown"


AUDIO_SUFFIXES = (".wav", ".gsm", ".ogg")  # anywhere; ``.raw`` only in the codec2 layout


def locate_prompt(parts: Sequence[str], root_name: str = ""):
    """Where a file of an extracted tree belongs: ``(voice, speaker, rel)``, ``(None, reason,
    rel)`` for a file of a known layout that is not used, or ``None`` for a non-audio file.

    Layouts, by the path's folders (``parts``: the path relative to the tree's root):

    * Fish Fillets NG, ``.../fillets-ng/sound/<level>/<lang>/<file>.ogg``: voice
      ``fillets-ng-<lang>``, speaker from the file name (:data:`FILLETS_NAME`); other characters'
      lines and sound effects give ``(None, "other-character", rel)``.
    * codec2, ``.../codec2/{raw,wav}/<file>``: voice ``codec2``, speaker from
      :data:`CODEC2_CLIPS`; unlisted files give ``(None, "codec2-unlisted", rel)``.
    * Asterisk, ``.../sounds/<voice>/...``: the voice folder (:data:`VOICE_DIRS`).
    * anything else: the first folder under the root is the voice (the root's name for a file
      directly under the root or directly under ``sounds/``).
    """
    name = parts[-1]
    suffix = Path(name).suffix.lower()
    folders = list(parts[:-1])
    if "codec2" in folders and len(folders) >= 1 and folders[-1] in ("raw", "wav"):
        if suffix not in (".raw", ".wav"):
            return None
        rel = f"{folders[-1]}/{name}"
        talker = CODEC2_CLIPS.get(rel)
        return ("codec2", f"codec2-{talker}", rel) if talker else (None, "codec2-unlisted", rel)
    if suffix not in AUDIO_SUFFIXES:
        return None
    if "fillets-ng" in folders and "sound" in folders[folders.index("fillets-ng"):]:
        i = folders.index("sound", folders.index("fillets-ng"))
        rel = "/".join(parts[i + 1:])
        lang = folders[-1] if len(folders) > i + 2 else "xx"
        m = FILLETS_NAME.match(Path(name).stem.lower())
        if suffix != ".ogg" or m is None:
            return None, "other-character", rel
        return f"fillets-ng-{lang}", FILLETS_SPEAKER[m.group(1)], rel
    if "sounds" in folders:
        i = len(folders) - 1 - folders[::-1].index("sounds")  # last 'sounds' folder
        if i + 1 >= len(folders):
            voice, rel_parts = root_name, parts[i + 1:]
        else:
            voice, rel_parts = folders[i + 1], parts[i + 2:]
    elif len(parts) >= 2:
        voice, rel_parts = parts[0], parts[1:]
    else:
        voice, rel_parts = root_name, parts
    return voice, _speaker_of(voice), "/".join(rel_parts)


def scan_prompt_tree(roots: Iterable, fractions=(0.8, 0.1, 0.1), dropped: Optional[dict] = None):
    """Find prompt files under ``roots`` (extracted packages or any tree), as
    :func:`locate_prompt` places them; symbolic links are not followed.

    Non-speech files are dropped by name and recorded in ``dropped`` (reason -> list of source
    ids). Every prompt gets its tr/cv/tt split from its file name (:func:`assign_split`); held-out
    speakers are moved by :func:`assign_splits`.
    """
    dropped = dropped if dropped is not None else defaultdict(list)
    prompts: List[Prompt] = []
    unknown = set()
    for root in roots:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for p in files:
            where = locate_prompt(p.relative_to(root).parts, root.name)
            if where is None:
                continue
            voice, speaker, rel = where
            if voice is None:
                dropped[speaker].append(rel)
                continue
            if speaker not in SPEAKERS and voice not in ("codec2",):
                unknown.add(voice)
            reason = drop_reason(rel)
            if reason:
                dropped[reason].append(f"{voice}/{rel}")
                continue
            prompts.append(Prompt(voice, speaker, rel, p, assign_split(split_key(rel), fractions)))
    for v in sorted(unknown):
        log.warning("Voice folder %r is not in the speaker table: speaker id %r.", v,
                    _speaker_of(v))
    prompts.sort(key=lambda q: (q.speaker, q.voice, q.rel))
    return prompts, dropped


def assign_splits(prompts: Sequence[Prompt], cfg: "CorpusConfig", dropped: dict) -> List[Prompt]:
    """Held-out speakers to the unseen-speaker splits, the others to tr/cv/tt (their hash split)
    when they are in ``cfg.train_speakers`` (all when None); prompts of other speakers are dropped
    (reason ``not_in_train_pool``). Raises :class:`CorpusError` for a speaker asked for that is not
    in the tree, or a test-only speaker asked for training."""
    found = {p.speaker for p in prompts}
    missing = sorted(set(cfg.train_speakers or ()) - found)
    if missing:
        raise CorpusError(f"speaker(s) {missing} of train_speakers are not in the source tree; "
                          f"found: {sorted(found)}")
    absent = sorted(set(cfg.unseen_speakers) - found)
    if absent:
        log.warning("Unseen speaker(s) %s are not in the source tree: tt_unseen is made of the "
                    "others (or not made).", absent)
    test_only = sorted(s for s in cfg.train_speakers or () if SPEAKERS.get(s, {}).get("test_only"))
    if test_only:
        raise CorpusError(f"speaker(s) {test_only} are test-only (too little audio): remove them from "
                          "train_speakers")
    kept = []
    for p in prompts:
        info = SPEAKERS.get(p.speaker, {})
        if p.speaker in cfg.unseen_speakers:
            p.split = "tt_unseen"
        elif info.get("test_only"):
            p.split = info["test_only"]
        elif cfg.train_speakers is not None and p.speaker not in cfg.train_speakers:
            dropped["not_in_train_pool"].append(p.source_id)
            continue
        kept.append(p)
    return kept


def clean_prompt(prompt: Prompt, cfg: CorpusConfig, stats: Counter):
    """Read, check, resample, trim and shorten pauses. Returns float32 audio, or ``None`` plus a
    reason when the prompt is unusable."""
    try:
        x, sr = read_audio(prompt.path)
    except MultichannelError:
        return None, "multichannel"
    except AudioError:
        return None, "corrupt"
    if sr != cfg.sample_rate:
        stats["resampled"] += 1
        x = resample(x, sr, cfg.sample_rate)
    y = trim_silence(x, cfg.sample_rate, top_db=cfg.top_db)
    if len(y) < cfg.min_prompt * cfg.sample_rate:
        return None, "silent"
    stats["trimmed_seconds"] += (len(x) - len(y)) / cfg.sample_rate
    if cfg.max_pause is not None:
        z = shorten_pauses(y, cfg.sample_rate, cfg.max_pause, top_db=cfg.top_db)
        stats["pause_seconds_removed"] += (len(y) - len(z)) / cfg.sample_rate
        y = z
    return y.astype(np.float32), None


def cut_long(x: np.ndarray, cfg: CorpusConfig) -> List[np.ndarray]:
    """Cut a prompt longer than ``max_len`` into pieces of ``min_len..max_len`` seconds, each cut
    at the quietest point of the allowed range (a pause when there is one)."""
    sr = cfg.sample_rate
    min_n, max_n = int(cfg.min_len * sr), int(cfg.max_len * sr)
    pieces = []
    while len(x) > max_n:
        lo, hi = min_n, min(max_n, len(x) - min_n)
        c = quietest_cut(x, sr, lo, max(lo, hi))
        pieces.append(x[:c])
        x = x[c:]
    pieces.append(x)
    return pieces


def make_utterances(prompts: Sequence[Prompt], cfg: CorpusConfig, stats: Counter, dropped: dict,
                    progress: bool = True) -> Dict[str, List[Utterance]]:
    """Cleaned prompts -> single-speaker utterances of ``min_len..max_len`` s, per split.

    Pieces already in range stay alone; shorter ones are joined, in file order, with the
    following short pieces of the same speaker and split (random 0.1-0.3 s gaps). Gaps shrink
    when needed to keep an utterance within ``max_len``. A last short remainder is appended to
    the group's last utterance when it fits, otherwise dropped (counted).
    """
    from tqdm import tqdm

    groups: Dict[tuple, List[Prompt]] = defaultdict(list)
    for p in prompts:
        groups[(p.speaker, p.split)].append(p)
    out: Dict[str, List[Utterance]] = {s: [] for s in ALL_SPLITS}
    bar = tqdm(total=len(prompts), desc="prompts", unit="file", disable=None if progress else True)
    for (spk, split) in sorted(groups):
        out[split].extend(_group_utterances(groups[(spk, split)], cfg, stats, dropped, bar))
    bar.close()
    for split in ALL_SPLITS:
        out[split].sort(key=lambda u: u.utt_id)
    return out


def _group_utterances(group: Sequence[Prompt], cfg: CorpusConfig, stats: Counter, dropped: dict,
                      bar) -> List[Utterance]:
    """The utterances of one speaker/split group (all its prompts share speaker and split)."""
    spk, split = group[0].speaker, group[0].split
    sr = cfg.sample_rate
    min_n, max_n = int(cfg.min_len * sr), int(cfg.max_len * sr)
    # One random stream per group: a group's utterances do not depend on the other speakers.
    rng = np.random.default_rng([cfg.seed, 1, stable_int(f"{spk}/{split}")])
    made: List[Utterance] = []
    buf: List[np.ndarray] = []
    buf_src: List[str] = []
    buf_len = 0

    def emit(chunks, srcs):
        uid = f"{spk}-{split}{len(made):04d}"
        made.append(Utterance(uid, spk, split, to_int16(np.concatenate(chunks)), list(srcs)))

    for p in group:
        bar.update(1)
        for src, piece in _prompt_pieces(p, cfg, stats, dropped):
            n = len(piece)
            if n >= min_n:
                emit([piece], [src])
                continue
            if buf:
                gap = int(round(rng.uniform(cfg.gap_min, cfg.gap_max) * sr))
                gap = max(0, min(gap, max_n - buf_len - n))
                buf.append(np.zeros(gap, np.float32))
                buf_len += gap
            buf.append(piece)
            buf_src.append(src)
            buf_len += n
            if buf_len >= min_n:
                emit(buf, buf_src)
                stats["utterances_joined"] += 1
                buf, buf_src, buf_len = [], [], 0
    if buf:
        _add_remainder(made, buf, buf_src, buf_len, cfg, stats, dropped)
    return made


def _prompt_pieces(p: Prompt, cfg: CorpusConfig, stats: Counter,
                   dropped: dict) -> List[Tuple[str, np.ndarray]]:
    """``(source id, audio)`` of each usable piece of prompt ``p``: the cleaned prompt, or the
    trimmed pieces of :func:`cut_long` when it is longer than ``max_len``. Unusable prompts and
    pieces are dropped (counted in ``dropped``)."""
    sr = cfg.sample_rate
    x, reason = clean_prompt(p, cfg, stats)
    if x is None:
        dropped[reason].append(p.source_id)
        return []
    stats["prompts_used"] += 1
    stats["prompt_seconds_used"] += len(x) / sr
    if len(x) <= int(cfg.max_len * sr):
        return [(p.source_id, x)]
    pieces = cut_long(x, cfg)  # two or more
    stats["prompts_cut"] += 1
    trimmed = [(f"{p.source_id}#{k}", trim_silence(piece, sr, top_db=cfg.top_db))
               for k, piece in enumerate(pieces)]
    return [(src, piece) for src, piece in trimmed if len(piece) >= cfg.min_prompt * sr]


def _add_remainder(made: List[Utterance], buf, buf_src, buf_len: int, cfg: CorpusConfig,
                   stats: Counter, dropped: dict):
    """A group's last short pieces: appended to its last utterance when that stays within
    ``max_len``, otherwise dropped (counted)."""
    sr = cfg.sample_rate
    if made:
        u = made[-1]
        gap = int(round(cfg.gap_min * sr))
        if u.n_samples + gap + buf_len <= int(cfg.max_len * sr):
            tail = to_int16(np.concatenate(buf))
            u.audio = np.concatenate([u.audio, np.zeros(gap, np.int16), tail])
            u.sources.extend(buf_src)
            return
    stats["remainder_seconds_dropped"] += buf_len / sr
    dropped["short_remainder"].extend(buf_src)


# --------------------------------------------------------------------------------------------
# Mixtures
# --------------------------------------------------------------------------------------------
@dataclass
class MixturePlan:
    mix_id: str
    utts: List[Utterance]
    gains_db: List[float]


def plan_mixtures(pool: Sequence[Utterance], n: int, n_src: int, rng: np.random.Generator,
                  max_snr_db: float = 5.0, split: str = "") -> List[MixturePlan]:
    """Draw ``n`` distinct mixtures of ``n_src`` different speakers: the first utterance uniformly
    from the pool, each next one uniformly among the utterances of speakers not yet chosen."""
    by_spk: Dict[str, List[Utterance]] = defaultdict(list)
    for u in pool:
        by_spk[u.speaker].append(u)
    if len(by_spk) < n_src:
        raise CorpusError(
            f"split {split!r} has {len(by_spk)} speaker(s) ({sorted(by_spk)}); need {n_src}")
    seen = set()
    plans: List[MixturePlan] = []
    max_tries = 200
    for _ in range(n):
        for _try in range(max_tries):
            chosen = [pool[int(rng.integers(len(pool)))]]
            while len(chosen) < n_src:
                used = {u.speaker for u in chosen}
                cands = [u for u in pool if u.speaker not in used]
                chosen.append(cands[int(rng.integers(len(cands)))])
            key = tuple(sorted(u.utt_id for u in chosen))
            if key not in seen:
                break
        else:
            log.warning("Split %s: only %d distinct mixtures could be drawn (asked %d).",
                        split, len(plans), n)
            break
        seen.add(key)
        gains = relative_gains(rng, n_src, max_snr_db)
        mix_id = "_".join(f"{u.utt_id}_{g:.4f}" for u, g in zip(chosen, gains))
        plans.append(MixturePlan(mix_id, chosen, gains))
    return plans


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
MANAGED = ("wav8k", "wav16k", "utterances", "json", "licenses", "mixtures.csv", "corpus.json",
           "LICENSES.md")


def tree_fingerprint(roots: Iterable) -> str:
    """Source id of a tree (``--src_dir``): a hash of its file names and sizes."""
    h = hashlib.sha256()
    for root in roots:
        root = Path(root)
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(root).as_posix()}\0{p.stat().st_size}\n".encode())
    return "tree:" + h.hexdigest()[:16]


def content_hash(cfg: CorpusConfig, source_id: str) -> str:
    """Identity of the corpus content (the same wherever it is written)."""
    return config_hash({"version": CORPUS_VERSION, "config": asdict(cfg), "source": source_id})


def corpus_hash(cfg: CorpusConfig, out, source_id: str) -> str:
    """Identity of a build: content plus location (the manifests hold absolute paths)."""
    return config_hash({"content": content_hash(cfg, source_id), "out": os.path.abspath(out)})


def build_corpus(roots: Sequence, out, cfg: Optional[CorpusConfig] = None,
                 source_id: Optional[str] = None, provenance: Optional[dict] = None,
                 progress: bool = True) -> dict:
    """Build the corpus from prompt trees into ``out``.

    Idempotent and resumable: when the completion marker matches the config nothing is done, a
    crashed build of the same config is resumed, anything else in ``out`` is rebuilt.

    Args:
        roots: extracted packages or any trees of prompt files (:func:`locate_prompt`).
        out: the corpus folder.
        cfg: how to build (default :class:`CorpusConfig`).
        source_id: what the sources are, for the build's identity (default: a hash of the trees).
        provenance: recorded in ``corpus.json`` and ``LICENSES.md`` (the .debs and their hashes).
        progress: show progress bars.

    Returns:
        The content of ``corpus.json``. Raises :class:`CorpusError` for unusable sources.
    """
    cfg = cfg or CorpusConfig()
    out = Path(out).resolve()
    roots = [Path(r) for r in roots]
    if source_id is None:
        source_id = tree_fingerprint(roots)
    chash = corpus_hash(cfg, out, source_id)
    state = BuildState(out, chash, MANAGED)
    if state.begin() == "done":
        log.info("Corpus in %s is up to date (config %s): nothing to do.", out, chash)
        return json.loads((out / "corpus.json").read_text())
    t0 = time.time()
    stats: Counter = Counter()
    utts, dropped, n_files = _make_split_utterances(roots, cfg, stats, progress)
    splits = SPLITS + tuple(s for s in UNSEEN_SPLITS if utts[s])
    build = _Build(out, cfg, state.resume, progress)
    utt_path = _write_utterances(build, utts, splits)
    split_stats, csv_rows = _write_mixtures(build, utts, splits, utt_path)
    build.write_manifests()
    _write_csv(build, csv_rows)
    speakers_used, per_split = _write_licenses(build, roots, utts, splits, provenance)
    corpus = _corpus_record(cfg, source_id, provenance, utts, split_stats, per_split, speakers_used,
                            stats, dropped, n_files)
    build.keep.append(atomic_write_json(out / "corpus.json", corpus))
    state.prune(build.keep)
    state.finish({"corpus": corpus["name"], "content_hash": corpus["config_hash"]})
    log.info("Corpus built in %s in %.1f s: %s", out, time.time() - t0,
             ", ".join(f"{s} {v['n_mixtures']} mixtures / {v['hours_mixtures']:.2f} h"
                       for s, v in split_stats.items()))
    return json.loads(json.dumps(corpus))  # as read back from corpus.json


@dataclass
class _Build:
    """A build in progress: where and how it writes, and the files it wrote (the others under
    :data:`MANAGED` are pruned at the end)."""

    out: Path
    cfg: CorpusConfig
    resume: bool  # keep the files already there (a resumed build of the same config)
    progress: bool
    keep: List[Path] = field(default_factory=list)
    manifests: Dict[Tuple[str, str], list] = field(default_factory=dict)  # (split, name) -> list

    def wav(self, path: Path, x: np.ndarray) -> Path:
        write_wav(path, x, self.cfg.sample_rate, skip_existing=self.resume)
        self.keep.append(path)
        return path

    def write_manifests(self):
        """``json/<split>/<name>.json``, written once every file they list is."""
        for (split, name), obj in self.manifests.items():
            indent = 1 if name == "utterances" else None
            self.keep.append(atomic_write_json(self.out / "json" / split / f"{name}.json", obj,
                                               indent=indent))

    def bar(self, items, desc: str, unit: str):
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit=unit, disable=None if self.progress else True)


def _make_split_utterances(roots: Sequence[Path], cfg: CorpusConfig, stats: Counter,
                           progress: bool):
    """Scan the trees, assign the splits and make the utterances.

    Returns:
        ``(utterances per split, dropped: reason -> source ids, number of audio files seen)``.
    """
    dropped: Dict[str, List[str]] = defaultdict(list)
    prompts, dropped = scan_prompt_tree(roots, cfg.split_fractions, dropped)
    n_files = len(prompts) + sum(len(v) for v in dropped.values())
    if not prompts:
        raise CorpusError(f"no prompt audio files found under {[str(r) for r in roots]}")
    log.info("Found %d audio files, %d after dropping non-speech by name.", n_files, len(prompts))
    prompts = assign_splits(prompts, cfg, dropped)
    utts = make_utterances(prompts, cfg, stats, dropped, progress=progress)
    for reason in ("corrupt", "multichannel"):
        if dropped.get(reason):
            log.warning("Skipped %d %s file(s): %s", len(dropped[reason]), reason,
                        ", ".join(dropped[reason][:10]))
    return utts, dropped, n_files


def _write_utterances(build: _Build, utts: Dict[str, List[Utterance]],
                      splits: Sequence[str]) -> Dict[str, Path]:
    """Write the single-speaker utterances (and list them in ``build.manifests``).

    Returns:
        utterance id -> its file (the sources of ``mixtures.csv``).
    """
    utt_path: Dict[str, Path] = {}
    for split in splits:
        records = []
        for u in build.bar(utts[split], f"utterances {split}", "utt"):
            p = build.wav(build.out / "utterances" / split / u.speaker / f"{u.utt_id}.wav", u.audio)
            utt_path[u.utt_id] = p
            records.append({"path": str(p), "speaker": u.speaker, "n_samples": u.n_samples,
                            "utt_id": u.utt_id, "sources": u.sources})
        build.manifests[(split, "utterances")] = records
    return utt_path


def _write_mixtures(build: _Build, utts: Dict[str, List[Utterance]], splits: Sequence[str],
                    utt_path: Dict[str, Path]) -> Tuple[Dict[str, dict], List[dict]]:
    """Draw, mix and write each split's mixtures (and list them in ``build.manifests``).

    Returns:
        ``(split -> its statistics for corpus.json, the rows of mixtures.csv)``.
    """
    cfg = build.cfg
    names = ["mix"] + src_names(cfg.n_src)
    csv_rows, split_stats = [], {}
    for split in splits:
        rng = np.random.default_rng([cfg.seed, 2, ALL_SPLITS.index(split)])
        plans = plan_mixtures(utts[split], cfg.n_mix(split), cfg.n_src, rng, cfg.max_snr_db, split)
        lists = {k: [] for k in names}
        for plan in build.bar(plans, f"mixtures {split}", "mix"):
            row = _write_mixture(build, split, plan, utt_path, lists)
            csv_rows.append(row)
        for name, lst in lists.items():
            build.manifests[(split, name)] = lst
        split_stats[split] = _split_stats(utts[split], plans, [n for _, n in lists["mix"]],
                                          cfg.sample_rate)
    return split_stats, csv_rows


def _write_mixture(build: _Build, split: str, plan: MixturePlan, utt_path: Dict[str, Path],
                   lists: Dict[str, list]) -> dict:
    """Mix ``plan``, write the mixture and its sources and add them to the manifest ``lists``.

    Returns:
        Its row of ``mixtures.csv``.
    """
    mix_q, srcs_q = mix_sources([from_int16(u.audio) for u in plan.utts], plan.gains_db,
                                mode=build.cfg.mode)
    n = len(mix_q)
    base = build.out / build.cfg.wav_dir / split
    for name, sig in zip(lists, [mix_q] + srcs_q):
        p = build.wav(base / name / f"{plan.mix_id}.wav", sig)
        lists[name].append([str(p), n])
    row = {"split": split, "mix_id": plan.mix_id, "n_samples": n,
           "snr_db": f"{plan.gains_db[0] - plan.gains_db[1]:.4f}"}
    for name, u, g in zip(src_names(build.cfg.n_src), plan.utts, plan.gains_db):
        row[f"{name}_path"] = os.path.relpath(utt_path[u.utt_id], build.out)
        row[f"{name}_speaker"] = u.speaker
        row[f"{name}_gain_db"] = f"{g:.4f}"
    return row


def _write_csv(build: _Build, rows: List[dict]):
    """``mixtures.csv``: each mixture's utterances (paths relative to the corpus) and levels."""
    fields = ["split", "mix_id", "n_samples", "snr_db"]
    for name in src_names(build.cfg.n_src):
        fields += [f"{name}_path", f"{name}_speaker", f"{name}_gain_db"]
    build.keep.append(atomic_write_csv(build.out / "mixtures.csv", rows, fields, lineterminator="\n"))


def _split_stats(pool: Sequence[Utterance], plans: Sequence[MixturePlan], lengths: Sequence[int],
                 sr: int) -> dict:
    """A split's entry in ``corpus.json``: sizes, hours, and how much of each speaker."""
    total = sum(lengths)
    speakers = sorted({u.speaker for u in pool})
    return {
        "n_mixtures": len(plans),
        "hours_mixtures": round(total / sr / 3600, 4),
        "n_utterances": len(pool),
        "hours_utterances": round(sum(u.n_samples for u in pool) / sr / 3600, 4),
        "utterances_per_speaker": dict(sorted(Counter(u.speaker for u in pool).items())),
        "mixtures_per_speaker": dict(sorted(Counter(u.speaker for p in plans
                                                    for u in p.utts).items())),
        "mean_mixture_seconds": round(total / sr / max(1, len(plans)), 3),
        "minutes_per_speaker": {
            spk: round(sum(u.n_samples for u in pool if u.speaker == spk) / sr / 60, 2)
            for spk in speakers},
    }


def _write_licenses(build: _Build, roots: Sequence[Path], utts: Dict[str, List[Utterance]],
                    splits: Sequence[str], provenance: Optional[dict]):
    """Copy the packages' copyright files to ``licenses/`` and write ``LICENSES.md``.

    Returns:
        ``(speakers used, split -> its speakers)``.
    """
    speakers_used = sorted({u.speaker for s in splits for u in utts[s]})
    cfiles = find_copyright_files(roots)
    for pkg, path in sorted(cfiles.items()):
        build.keep.append(atomic_write_bytes(build.out / "licenses" / f"{pkg}.copyright",
                                             path.read_bytes()))
    per_split = {s: sorted({u.speaker for u in utts[s]}) for s in splits}
    seen = set(per_split["tr"]) | set(per_split["cv"])
    for s_ in UNSEEN_SPLITS:
        if seen & set(per_split.get(s_, ())):  # cannot happen: assign_splits moves whole speakers
            raise RuntimeError(f"{s_} shares speakers with tr/cv: {sorted(seen & set(per_split[s_]))}")
    build.keep.append(atomic_write_text(build.out / "LICENSES.md",
                                        licenses_md(speakers_used, cfiles, provenance, per_split)))
    return speakers_used, per_split


def _corpus_record(cfg: CorpusConfig, source_id: str, provenance: Optional[dict],
                   utts: Dict[str, List[Utterance]], split_stats: Dict[str, dict],
                   per_split: Dict[str, List[str]], speakers_used: Sequence[str], stats: Counter,
                   dropped: Dict[str, List[str]], n_files: int) -> dict:
    """The content of ``corpus.json``: the build's identity and config, each split's statistics,
    the speakers and their licences, what was dropped and why."""
    return {
        "name": "asterisk-prompts-{}mix".format(cfg.n_src),
        "version": CORPUS_VERSION,
        "config_hash": content_hash(cfg, source_id),
        "config": asdict(cfg),
        "sample_rate": cfg.sample_rate,
        "mode": cfg.mode,
        "n_src": cfg.n_src,
        "splits": split_stats,
        "speakers_per_split": per_split,
        "train_speakers": sorted({u.speaker for s in SPLITS for u in utts[s]}),
        "unseen_speakers": sorted({u.speaker for s in UNSEEN_SPLITS for u in utts[s]}),
        "hours_total_mixtures": round(sum(s["hours_mixtures"] for s in split_stats.values()), 4),
        "speakers": {s: dict(SPEAKERS.get(s, {"name": s})) for s in speakers_used},
        "files_seen": n_files,
        **_build_stats(stats),
        "dropped": _drop_summary(dropped, cfg.min_prompt),
        "source": source_id,
        "provenance": provenance or {},
        "licenses": license_records(speakers_used),
    }


def _build_stats(stats: Counter) -> dict:
    """What cleaning and joining did, for ``corpus.json``."""
    return {
        "prompts_used": int(stats["prompts_used"]),
        "prompt_hours_used": round(stats["prompt_seconds_used"] / 3600, 4),
        "prompts_cut": int(stats["prompts_cut"]),
        "utterances_joined": int(stats["utterances_joined"]),
        "resampled_files": int(stats["resampled"]),
        "seconds_trimmed": round(stats["trimmed_seconds"], 2),
        "pause_seconds_removed": round(stats["pause_seconds_removed"], 2),
        "remainder_seconds_dropped": round(stats["remainder_seconds_dropped"], 2),
    }


def _drop_summary(dropped: Dict[str, List[str]], min_prompt: float) -> dict:
    """reason -> count, a few examples and why (:data:`DROP_WHY`), for ``corpus.json``."""
    return {reason: {"count": len(v), "examples": sorted(v)[:8],
                     "why": DROP_WHY.get(reason, reason).format(min_prompt=min_prompt)}
            for reason, v in sorted(dropped.items())}


def build_from_debs(out, cfg: Optional[CorpusConfig] = None, deb_cache=None,
                    packages: Sequence[str] = PACKAGES, progress: bool = True) -> dict:
    """Build the corpus from the Debian packages (:mod:`.debian`), as :func:`build_corpus` does.

    Args:
        out: the corpus folder.
        cfg: how to build (default :class:`CorpusConfig`).
        deb_cache: where the .debs are kept (default ``out/debs``); missing ones are downloaded.
        packages: the packages to use.
        progress: show progress bars.

    Returns:
        The content of ``corpus.json``. The packages are unpacked into a temporary folder, removed
        afterwards; nothing is downloaded when the corpus is up to date.
    """
    cfg = cfg or CorpusConfig()
    out = Path(out).resolve()
    deb_cache = Path(deb_cache) if deb_cache else out / "debs"
    source_id = "debian:" + ",".join(packages)
    state = BuildState(out, corpus_hash(cfg, out, source_id), MANAGED)
    if state.is_done():
        log.info("Corpus in %s is up to date: nothing to do.", out)
        return json.loads((out / "corpus.json").read_text())
    debs = fetch_debs(packages, deb_cache)
    log.info("Extracting %d packages from %s with dpkg -x.", len(debs), deb_cache)
    provenance = {"debs": [{"file": d.name, "sha256": file_sha256(d)} for d in debs]}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".extract"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        extract_debs(debs, tmp)
        log.info("Extracted; building.")
        return build_corpus([tmp], out, cfg, source_id=source_id, provenance=provenance,
                            progress=progress)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def get_parser() -> argparse.ArgumentParser:
    d = CorpusConfig()
    p = builder_parser("prompts", "Build a wsj0-2mix-style corpus from voice recordings packaged "
                       "by Debian.", "output folder")
    p.add_argument("--deb_cache", default=None, help="where the .debs are kept (default OUT/debs)")
    p.add_argument("--src_dir", action="append", default=None,
                   help="use an already extracted tree instead of the .debs (repeatable)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--n_tr", type=int, default=d.n_tr)
    p.add_argument("--n_cv", type=int, default=d.n_cv)
    p.add_argument("--n_tt", type=int, default=d.n_tt)
    p.add_argument("--n_src", type=int, default=d.n_src, choices=[2, 3])
    p.add_argument("--min_len", type=float, default=d.min_len)
    p.add_argument("--max_len", type=float, default=d.max_len)
    p.add_argument("--train_speakers", default=",".join(d.train_speakers or ()),
                   help="comma-separated speaker ids of tr/cv/tt (default: every speaker not held out)")
    p.add_argument("--unseen_speakers", default=",".join(d.unseen_speakers),
                   help="comma-separated speaker ids held out for tt_unseen")
    p.add_argument("--n_unseen", type=int, default=None, help="mixtures of tt_unseen (default: n_tt)")
    p.add_argument("--n_codec2", type=int, default=None, help="mixtures of tt_codec2 (default: min(n_tt, 100))")
    p.add_argument("--no_progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def build():
        names = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())
        cfg = CorpusConfig(n_tr=args.n_tr, n_cv=args.n_cv, n_tt=args.n_tt, n_src=args.n_src,
                           seed=args.seed, min_len=args.min_len, max_len=args.max_len,
                           train_speakers=names(args.train_speakers) or None,
                           unseen_speakers=names(args.unseen_speakers),
                           n_unseen=args.n_unseen, n_codec2=args.n_codec2)
        if args.src_dir:
            build_corpus(args.src_dir, args.out, cfg, progress=not args.no_progress)
        else:
            build_from_debs(args.out, cfg, args.deb_cache, progress=not args.no_progress)

    return run_build(build, (CorpusError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
