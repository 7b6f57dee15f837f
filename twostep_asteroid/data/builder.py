"""The generic part of the corpus builders that make wsj0-2mix-style mixtures from single-source
recordings: the embedded corpus (:mod:`.prompts`, Debian voice packages), a user's own folder of
recordings (:mod:`.audio_dir`) and ESC-50's sound clips (:mod:`.esc50`).

A builder supplies a :class:`CorpusSource`: its recordings (each with its speaker and split), how a
file is read, how recordings become the pool's utterances, and what it adds to ``corpus.json`` (and
any extra files, e.g. licences). The rest is shared (:func:`build`)::

    source.recordings() --> recordings (speaker, split, path); tr/cv/tt by a hash of the file name
          --clean_recording--> trimmed mono speech at the configured rate, long pauses shortened
          --make_utterances--> min_len-max_len s single-speaker utterances (long recordings cut at
                               pauses, short ones joined with gap_min-gap_max s gaps; same speaker,
                               same split)
          --plan_mixtures--> n_src-speaker mixtures, relative level U(0, max_snr_db) dB; the
                             whole utterances (``mode`` min/max), or ``seg_len`` cuts of them at
                             random offsets (:func:`choose_start`)
          --> <out>/wav8k/min/<split>/{mix,s1,s2}/*.wav, <out>/json/<split>/{mix,s1,s2}.json,
              <out>/json/<split>/utterances.json, <out>/utterances/<split>/<spk>/*.wav (the
              source's ``pool_dir``), <out>/mixtures.csv, <out>/corpus.json (+ the source's
              extra files)

(:meth:`CorpusSource.utterances` may replace the cleaning and cutting: ESC-50 takes each clip as it
is.) A split of no fixed mixtures (``n_mix`` 0, e.g. ESC-50's ``tr``) gets only its pool, for
on-the-fly mixing. Every file is read, and every mixture drawn, before anything is written to
``out``: a source that cannot make the corpus (an unreadable file, a split with too few speakers)
fails with the folder as it was. The manifests are written all at once
(:func:`~.manifests.write_staged`). Building is idempotent and resumable
(:class:`~.buildstate.BuildState`).

Splits: ``tr``/``cv``/``tt`` are utterance-disjoint, not speaker-disjoint: each recording goes to
tr/cv/tt by a SHA-256 hash of its file name (:func:`split_key`, :func:`assign_split`), so the same
name (the same prompt text, in the embedded corpus) lands in the same split for every speaker. Other
splits (``tt_unseen``, ...) hold speakers of no tr/cv mixture; each speaker/split group and each
split has its own random stream, so they do not depend on the training pool.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..config import DEFAULTS
from ..fileio import atomic_write_csv, atomic_write_json
from .audio_io import (AudioError, MultichannelError, from_int16, read_audio, resample, to_int16,
                       write_wav)
from .buildstate import BuildState, config_hash
from .common import SPLITS, CorpusError, src_names, wav_dir
from .manifests import STAGING, write_staged
from .mixing import mix_sources, quietest_cut, relative_gains, shorten_pauses, trim_silence

log = logging.getLogger(__name__)

_DATA = DEFAULTS["data"]  # the recipe's defaults: the corpus sizes, seed, rate

# Why files or pieces were dropped, for ``corpus.json`` (a source adds its own reasons).
DROP_WHY = {
    "corrupt": "unreadable or empty files",
    "multichannel": "not mono",
    "silent": "shorter than {min_prompt} s after trimming silence",
    "short_remainder": "last short pieces of a speaker/split group that could not be joined",
}


@dataclass
class MixConfig:
    """How the mixtures of a corpus are made; its fields (with the source) identify a build. The
    sizes, ``n_src``, ``seed`` and ``sample_rate`` default to the recipe's ``data`` section
    (``config.DEFAULTS``). :class:`BuildConfig` adds how recordings become utterances; a config
    whose mixtures are cuts of a fixed length gives it as :attr:`seg_len`."""

    n_tr: int = _DATA["n_tr"]
    n_cv: int = _DATA["n_cv"]
    n_tt: int = _DATA["n_tt"]
    n_src: int = _DATA["n_src"]
    seed: int = _DATA["corpus_seed"]
    sample_rate: int = _DATA["sample_rate"]
    mode: str = "min"
    max_snr_db: float = 5.0  # relative level of the sources: U(0, max_snr_db) dB

    def __post_init__(self):
        if self.n_src < 2:
            raise ValueError("n_src must be >= 2")
        if self.mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")

    def n_mix(self, split: str) -> int:
        """Fixed mixtures of ``split`` (a builder's config adds its other splits)."""
        return {"tr": self.n_tr, "cv": self.n_cv, "tt": self.n_tt}[split]

    @property
    def seg_len(self) -> Optional[int]:
        """Samples of every mixture, cut from its sources at random offsets (:func:`choose_start`);
        ``None``: the whole utterances, mixed as ``mode`` says."""
        return None

    @property
    def wav_dir(self) -> str:
        return wav_dir(self.sample_rate, self.mode)


@dataclass
class BuildConfig(MixConfig):
    """How a corpus is built from single-source recordings: :class:`MixConfig`, and how the
    recordings are cleaned and cut or joined into utterances. A builder's config adds its own
    fields after these."""

    min_len: float = 2.5  # utterance length range, seconds
    max_len: float = 5.0
    gap_min: float = 0.1  # silence between joined recordings, seconds
    gap_max: float = 0.3
    max_pause: Optional[float] = 0.4  # internal pauses are shortened to this (None: keep)
    top_db: float = 40.0  # trimming threshold below the loudest frame
    min_prompt: float = 0.1  # shorter trimmed recordings are dropped as (near) silent
    split_fractions: tuple = (0.8, 0.1, 0.1)

    def __post_init__(self):
        self.split_fractions = tuple(float(f) for f in self.split_fractions)
        super().__post_init__()
        if self.max_len < 2 * self.min_len:
            raise ValueError("max_len must be at least 2 * min_len")
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError("split_fractions must be 3 numbers summing to 1")
        if not (0 <= self.gap_min <= self.gap_max):
            raise ValueError("need 0 <= gap_min <= gap_max")


@dataclass
class Recording:
    """One single-source file: ``voice`` is its folder (a voice package, a speaker folder) and
    ``rel`` its path inside it (posix, with extension)."""

    voice: str
    speaker: str
    rel: str
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


class CorpusSource:
    """What a builder adds to :func:`build`: its recordings and its part of ``corpus.json``.

    Attributes:
        version: the builder's corpus version (part of the build's identity).
        splits: every split it may make, tr/cv/tt first; a split's index seeds its mixtures.
        drop_why: explanations of the drop reasons, for ``corpus.json`` (``{field}`` names a field
            of the config, e.g. ``{min_prompt}``).
        source_id: what the sources are (part of the build's identity).
        pool_dir: the folder of the pool's audio, ``<out>/<pool_dir>/<split>/<speaker>/``.
    """

    version: int = 1
    splits: Tuple[str, ...] = SPLITS
    drop_why: Dict[str, str] = DROP_WHY
    source_id: str = ""
    pool_dir: str = "utterances"

    def name(self, cfg: BuildConfig) -> str:
        """The corpus name in ``corpus.json``."""
        raise NotImplementedError

    def recordings(self, cfg: BuildConfig, dropped: Dict[str, List[str]]) -> Tuple[List[Recording], int]:
        """``(recordings with their splits, number of files seen)``; files not used are recorded in
        ``dropped`` (reason -> source ids). Raises :class:`CorpusError` for unusable sources."""
        raise NotImplementedError

    def read(self, rec: Recording):
        """``(float32 mono audio, rate)``; :class:`MultichannelError`/:class:`AudioError` drop the
        file (counted), any other error stops the build."""
        return read_audio(rec.path)

    def utterances(self, recordings: Sequence[Recording], cfg: BuildConfig, stats: Counter,
                   dropped: Dict[str, List[str]], progress: bool = True
                   ) -> Dict[str, List[Utterance]]:
        """The pool, split -> utterances (every split of :attr:`splits`): by default the recordings
        cleaned and cut or joined into utterances (:func:`make_utterances`)."""
        return make_utterances(recordings, cfg, stats, dropped, progress=progress, read=self.read,
                               splits=self.splits)

    def check_pool(self, utts: Dict[str, List[Utterance]], cfg: MixConfig):
        """Called with the utterances before the mixtures are drawn (raise to explain a problem)."""

    def utterance_info(self, utt: Utterance) -> dict:
        """More fields of an utterance's record in ``utterances.json``."""
        return {}

    def speaker_info(self, speaker: str) -> dict:
        """A speaker's entry in ``corpus.json``."""
        return {"name": speaker}

    def write_extras(self, build: "_Build", speakers_used: Sequence[str],
                     per_split: Dict[str, List[str]]):
        """Write the source's extra files (append them to ``build.keep``)."""

    def record_extras(self, speakers_used: Sequence[str]) -> dict:
        """The last entries of ``corpus.json``."""
        return {}


# --------------------------------------------------------------------------------------------
# Splits, cleaning
# --------------------------------------------------------------------------------------------
def split_key(rel: str) -> str:
    """The split is decided by the file name without folder and extension, so that
    ``followme/sorry`` and ``sorry`` (near-identical recordings) and the same prompt in other
    languages (or read by other speakers) all land in the same split."""
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


def clean_recording(rec: Recording, cfg: BuildConfig, stats: Counter, read: Callable = None):
    """Read (``read``, default :func:`~.audio_io.read_audio` of ``rec.path``), resample, trim and
    shorten pauses. Returns float32 audio, or ``None`` plus a reason when the file is unusable."""
    try:
        x, sr = read(rec) if read is not None else read_audio(rec.path)
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


def cut_long(x: np.ndarray, cfg: BuildConfig) -> List[np.ndarray]:
    """Cut a recording longer than ``max_len`` into pieces of ``min_len..max_len`` seconds, each
    cut at the quietest point of the allowed range (a pause when there is one)."""
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


def make_utterances(recordings: Sequence[Recording], cfg: BuildConfig, stats: Counter,
                    dropped: dict, progress: bool = True, read: Callable = None,
                    splits: Sequence[str] = SPLITS) -> Dict[str, List[Utterance]]:
    """Cleaned recordings -> single-speaker utterances of ``min_len..max_len`` s, per split.

    Pieces already in range stay alone; shorter ones are joined, in file order, with the
    following short pieces of the same speaker and split (random ``gap_min..gap_max`` s gaps).
    Gaps shrink when needed to keep an utterance within ``max_len``. A last short remainder is
    appended to the group's last utterance when it fits, otherwise dropped (counted).

    Args:
        read: how a recording is read (:meth:`CorpusSource.read`; default ``read_audio``).
        splits: the splits of the result (every one present, possibly empty).
    """
    from tqdm import tqdm

    groups: Dict[tuple, List[Recording]] = defaultdict(list)
    for p in recordings:
        groups[(p.speaker, p.split)].append(p)
    out: Dict[str, List[Utterance]] = {s: [] for s in splits}
    bar = tqdm(total=len(recordings), desc="recordings", unit="file",
               disable=None if progress else True)
    for (spk, split) in sorted(groups):
        out.setdefault(split, []).extend(
            _group_utterances(groups[(spk, split)], cfg, stats, dropped, bar, read))
    bar.close()
    for split in out:
        out[split].sort(key=lambda u: u.utt_id)
    return out


def _group_utterances(group: Sequence[Recording], cfg: BuildConfig, stats: Counter,
                      dropped: dict, bar, read: Callable = None) -> List[Utterance]:
    """The utterances of one speaker/split group (all its recordings share speaker and split)."""
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
        for src, piece in _pieces(p, cfg, stats, dropped, read):
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


def _pieces(p: Recording, cfg: BuildConfig, stats: Counter, dropped: dict,
            read: Callable = None) -> List[Tuple[str, np.ndarray]]:
    """``(source id, audio)`` of each usable piece of recording ``p``: the cleaned recording, or
    the trimmed pieces of :func:`cut_long` when it is longer than ``max_len``. Unusable
    recordings and pieces are dropped (counted in ``dropped``)."""
    sr = cfg.sample_rate
    x, reason = clean_recording(p, cfg, stats, read)
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


def _add_remainder(made: List[Utterance], buf, buf_src, buf_len: int, cfg: BuildConfig,
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
MIN_ENERGY = 0.25  # a mixture's cut of an utterance holds at least this share of its energy
MAX_TRIES = 200  # draws to find a mixture not already in the split


@dataclass
class MixturePlan:
    """One mixture: its utterances, their gains and, for cuts of ``seg_len`` samples, where each
    is cut (:func:`choose_start`; ``None``: the whole utterances)."""

    mix_id: str
    utts: List[Utterance]
    gains_db: List[float]
    starts: Optional[List[int]] = None


def plan_mixtures(pool: Sequence[Utterance], n: int, n_src: int, rng: np.random.Generator,
                  max_snr_db: float = 5.0, split: str = "",
                  seg_len: Optional[int] = None) -> List[MixturePlan]:
    """Draw ``n`` distinct mixtures of ``n_src`` different speakers (or sound classes): the first
    utterance uniformly from the pool, each next one uniformly among the utterances of speakers not
    yet chosen; with ``seg_len``, where each is cut (:func:`choose_start`)."""
    by_spk: Dict[str, List[Utterance]] = defaultdict(list)
    for u in pool:
        by_spk[u.speaker].append(u)
    if len(by_spk) < n_src:
        raise CorpusError(
            f"split {split!r} has {len(by_spk)} speaker(s) ({sorted(by_spk)}); need {n_src}")
    seen = set()
    plans: List[MixturePlan] = []
    for _ in range(n):
        for _try in range(MAX_TRIES):
            chosen = [pool[int(rng.integers(len(pool)))]]
            while len(chosen) < n_src:
                used = {u.speaker for u in chosen}
                cands = [u for u in pool if u.speaker not in used]
                chosen.append(cands[int(rng.integers(len(cands)))])
            starts = None if seg_len is None else [choose_start(u.audio, seg_len, rng) for u in chosen]
            # the same utterances (cut at the same places) make the same mixture
            key = tuple(sorted(zip((u.utt_id for u in chosen), starts or [0] * n_src)))
            if key not in seen:
                break
        else:
            log.warning("Split %s: only %d distinct mixtures could be drawn (asked %d).",
                        split, len(plans), n)
            break
        seen.add(key)
        gains = relative_gains(rng, n_src, max_snr_db)
        at = [f"_{k}" for k in starts] if starts else [""] * n_src
        mix_id = "_".join(f"{u.utt_id}{a}_{g:.4f}" for u, a, g in zip(chosen, at, gains))
        plans.append(MixturePlan(mix_id, chosen, gains, starts))
    return plans


def choose_start(x: np.ndarray, seg_len: int, rng: np.random.Generator) -> int:
    """Where a mixture cuts utterance ``x``: a sample of ``x`` where the segment starts (drawn
    uniformly among the cuts holding at least :data:`MIN_ENERGY` of its energy, else the most
    energetic cut: clips are often padded with digital silence), or, for an utterance not longer
    than the segment, minus the offset at which it starts in the segment (drawn uniformly)."""
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
    """The segment of ``x`` that :func:`choose_start`'s ``start`` gives (``seg_len`` samples,
    zero-padded around an utterance shorter than that)."""
    if start >= 0 and len(x) >= seg_len:
        return x[start:start + seg_len]
    out = np.zeros(seg_len, dtype=x.dtype)
    out[-start:-start + len(x)] = x
    return out


def skip_small_extra_splits(utts: Dict[str, List[Utterance]], splits: Sequence[str],
                            n_src: int) -> Dict[str, str]:
    """Drop (from ``utts``, with a warning) the held-out test splits beyond ``SPLITS`` that have
    fewer than ``n_src`` speakers, e.g. the 2-voice ``tt_unseen`` of a 3-speaker corpus.

    tr/cv/tt are not optional: too few speakers there still fails in :func:`plan_mixtures`.

    Returns:
        split -> why it was skipped (for ``corpus.json``'s ``skipped_splits``).
    """
    skipped = {}
    for split in splits[len(SPLITS):]:
        speakers = sorted({u.speaker for u in utts[split]})
        if len(speakers) < n_src:
            skipped[split] = (f"{len(speakers)} held-out speaker(s) ({', '.join(speakers)}) for "
                              f"{n_src}-speaker mixtures")
            log.warning("Split %s skipped: it has %s. Hold out %d or more voices to make it.",
                        split, skipped[split], n_src)
            del utts[split]
    return skipped


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
MANAGED = ("wav8k", "wav16k", "utterances", "json", STAGING, "licenses", "mixtures.csv",
           "corpus.json", "LICENSES.md")


def managed_paths(cfg: MixConfig, pool_dir: str = "utterances") -> Tuple[str, ...]:
    """The children of a corpus folder a build owns (:data:`MANAGED`, the audio folder of any
    other rate and the source's :attr:`~CorpusSource.pool_dir`)."""
    return MANAGED + tuple(d for d in (cfg.wav_dir.split("/")[0], pool_dir) if d not in MANAGED)


def tree_fingerprint(roots: Iterable) -> str:
    """Source id of a tree (``--src_dir``): a hash of its file names and sizes."""
    h = hashlib.sha256()
    for root in roots:
        root = Path(root)
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(root).as_posix()}\0{p.stat().st_size}\n".encode())
    return "tree:" + h.hexdigest()[:16]


def content_hash(cfg: MixConfig, source_id: str, version: int) -> str:
    """Identity of the corpus content (the same wherever it is written)."""
    return config_hash({"version": version, "config": asdict(cfg), "source": source_id})


def corpus_hash(cfg: MixConfig, out, source_id: str, version: int) -> str:
    """Identity of a build: content plus location (the manifests hold absolute paths)."""
    return config_hash({"content": content_hash(cfg, source_id, version),
                        "out": os.path.abspath(out)})


def build(source: CorpusSource, out, cfg: MixConfig, progress: bool = True,
          writer: Optional[Callable] = None) -> dict:
    """Build the corpus of ``source`` into ``out``.

    Idempotent and resumable: when the completion marker matches the config nothing is done (not
    even scanning), a crashed build of the same config is resumed, anything else in ``out`` is
    rebuilt. Every recording is read and every mixture drawn before ``out`` is touched.

    Args:
        source: the builder's part (:class:`CorpusSource`).
        out: the corpus folder.
        cfg: how to build.
        progress: show progress bars.
        writer: writes a wav, as :func:`~.audio_io.write_wav` (the default) does.

    Returns:
        The content of ``corpus.json``. Raises :class:`CorpusError` for unusable sources.
    """
    out = Path(out).resolve()
    chash = corpus_hash(cfg, out, source.source_id, source.version)
    state = BuildState(out, chash, managed_paths(cfg, source.pool_dir))
    if state.is_done():
        log.info("Corpus in %s is up to date (config %s): nothing to do.", out, chash)
        return json.loads((out / "corpus.json").read_text())
    t0 = time.time()
    stats: Counter = Counter()
    dropped: Dict[str, List[str]] = defaultdict(list)
    recordings, n_files = source.recordings(cfg, dropped)
    utts = source.utterances(recordings, cfg, stats, dropped, progress)
    for reason in ("corrupt", "multichannel"):
        if dropped.get(reason):
            log.warning("Skipped %d %s file(s): %s", len(dropped[reason]), reason,
                        ", ".join(dropped[reason][:10]))
    source.check_pool(utts, cfg)
    splits = SPLITS + tuple(s for s in source.splits if s not in SPLITS and utts.get(s))
    skipped = skip_small_extra_splits(utts, splits, cfg.n_src)
    splits = tuple(s for s in splits if s not in skipped)
    plans = {s: plan_mixtures(utts[s], cfg.n_mix(s), cfg.n_src,
                              np.random.default_rng([cfg.seed, 2, source.splits.index(s)]),
                              cfg.max_snr_db, s, cfg.seg_len) for s in splits if cfg.n_mix(s)}
    per_split = {s: sorted({u.speaker for u in utts[s]}) for s in splits}
    seen = set(per_split["tr"]) | set(per_split["cv"])
    for s in splits[len(SPLITS):]:  # cannot happen: a source puts whole speakers in these splits
        if seen & set(per_split[s]):
            raise RuntimeError(f"{s} shares speakers with tr/cv: {sorted(seen & set(per_split[s]))}")
    state.begin()
    b = _Build(out, cfg, state.resume, progress, writer or write_wav)
    utt_path = _write_utterances(b, source, utts, splits)
    csv_rows, lengths = _write_mixtures(b, plans, utt_path)
    split_stats = {s: _split_stats(utts[s], plans.get(s, []), lengths.get(s, []), cfg.sample_rate)
                   for s in splits}
    b.write_manifests()
    _write_csv(b, csv_rows)
    speakers_used = sorted({u.speaker for s in splits for u in utts[s]})
    source.write_extras(b, speakers_used, per_split)
    corpus = corpus_record(source, cfg, utts, split_stats, per_split, speakers_used, stats,
                           dropped, n_files)
    if skipped:
        corpus["skipped_splits"] = skipped
    b.keep.append(atomic_write_json(out / "corpus.json", corpus))
    state.prune(b.keep)
    state.finish({"corpus": corpus["name"], "content_hash": corpus["config_hash"]})
    log.info("Corpus built in %s in %.1f s: %s", out, time.time() - t0,
             ", ".join(f"{s} {v['n_mixtures']} mixtures / {v['hours_mixtures']:.2f} h"
                       for s, v in split_stats.items()))
    return json.loads(json.dumps(corpus))  # as read back from corpus.json


@dataclass
class _Build:
    """A build in progress: where and how it writes, and the files it wrote (the others under
    the managed paths are pruned at the end)."""

    out: Path
    cfg: MixConfig
    resume: bool  # keep the files already there (a resumed build of the same config)
    progress: bool
    writer: Callable = write_wav
    keep: List[Path] = field(default_factory=list)
    manifests: Dict[Tuple[str, str], list] = field(default_factory=dict)  # (split, name) -> list

    def wav(self, path: Path, x: np.ndarray) -> Path:
        self.writer(path, x, self.cfg.sample_rate, skip_existing=self.resume)
        self.keep.append(path)
        return path

    def write_manifests(self):
        """``json/<split>/<name>.json``, written at once (:func:`~.manifests.write_staged`) when
        every file they list is."""
        self.keep += write_staged(self.out, self.manifests)

    def bar(self, items, desc: str, unit: str):
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit=unit, disable=None if self.progress else True)


def _write_utterances(build: _Build, source: CorpusSource, utts: Dict[str, List[Utterance]],
                      splits: Sequence[str]) -> Dict[str, Path]:
    """Write the pool, ``<pool_dir>/<split>/<speaker>/<utt_id>.wav`` (and list it in
    ``build.manifests``).

    Returns:
        utterance id -> its file (the sources of ``mixtures.csv``).
    """
    utt_path: Dict[str, Path] = {}
    for split in splits:
        records = []
        for u in build.bar(utts[split], f"utterances {split}", "utt"):
            folder = build.out / source.pool_dir / split / folder_name(u.speaker)
            p = build.wav(folder / f"{u.utt_id}.wav", u.audio)
            utt_path[u.utt_id] = p
            records.append({"path": str(p), "speaker": u.speaker, "n_samples": u.n_samples,
                            "utt_id": u.utt_id, "sources": u.sources, **source.utterance_info(u)})
        build.manifests[(split, "utterances")] = records
    return utt_path


def folder_name(speaker: str) -> str:
    """A speaker (or class) name as a folder name: other characters than letters, digits, ``.``,
    ``_`` and ``-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", speaker) or "_"


def _write_mixtures(build: _Build, plans: Dict[str, List[MixturePlan]],
                    utt_path: Dict[str, Path]) -> Tuple[List[dict], Dict[str, List[int]]]:
    """Mix and write each split's planned mixtures (and list them in ``build.manifests``).

    Returns:
        ``(the rows of mixtures.csv, split -> the mixtures' lengths)``.
    """
    names = ["mix"] + src_names(build.cfg.n_src)
    csv_rows, lengths = [], {}
    for split, split_plans in plans.items():
        lists = {k: [] for k in names}
        for plan in build.bar(split_plans, f"mixtures {split}", "mix"):
            csv_rows.append(_write_mixture(build, split, plan, utt_path, lists))
        for name, lst in lists.items():
            build.manifests[(split, name)] = lst
        lengths[split] = [n for _, n in lists["mix"]]
    return csv_rows, lengths


def _write_mixture(build: _Build, split: str, plan: MixturePlan, utt_path: Dict[str, Path],
                   lists: Dict[str, list]) -> dict:
    """Mix ``plan``, write the mixture and its sources and add them to the manifest ``lists``.

    Returns:
        Its row of ``mixtures.csv``.
    """
    cfg = build.cfg
    starts = plan.starts or [None] * len(plan.utts)
    audio = [u.audio if k is None else cut(u.audio, k, cfg.seg_len) for u, k in zip(plan.utts, starts)]
    mix_q, srcs_q = mix_sources([from_int16(x) for x in audio], plan.gains_db, mode=cfg.mode)
    n = len(mix_q)
    base = build.out / cfg.wav_dir / split
    for name, sig in zip(lists, [mix_q] + srcs_q):
        p = build.wav(base / name / f"{plan.mix_id}.wav", sig)
        lists[name].append([str(p), n])
    row = {"split": split, "mix_id": plan.mix_id, "n_samples": n,
           "snr_db": f"{plan.gains_db[0] - plan.gains_db[1]:.4f}"}
    for name, u, k, g in zip(src_names(cfg.n_src), plan.utts, starts, plan.gains_db):
        row[f"{name}_path"] = os.path.relpath(utt_path[u.utt_id], build.out)
        row[f"{name}_speaker"] = u.speaker
        if k is not None:
            row[f"{name}_start"] = k
        row[f"{name}_gain_db"] = f"{g:.4f}"
    return row


def _write_csv(build: _Build, rows: List[dict]):
    """``mixtures.csv``: each mixture's utterances (paths relative to the corpus), where they are
    cut (with ``seg_len``) and their levels."""
    fields = ["split", "mix_id", "n_samples", "snr_db"]
    for name in src_names(build.cfg.n_src):
        fields += [f"{name}_path", f"{name}_speaker"]
        fields += [f"{name}_start"] if build.cfg.seg_len else []
        fields += [f"{name}_gain_db"]
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


def corpus_record(source: CorpusSource, cfg: MixConfig, utts: Dict[str, List[Utterance]],
                  split_stats: Dict[str, dict], per_split: Dict[str, List[str]],
                  speakers_used: Sequence[str], stats: Counter, dropped: Dict[str, List[str]],
                  n_files: int) -> dict:
    """The content of ``corpus.json``: the build's identity and config, each split's statistics,
    the speakers, what was dropped and why, then the source's own entries."""
    return {
        "name": source.name(cfg),
        "version": source.version,
        "config_hash": content_hash(cfg, source.source_id, source.version),
        "config": asdict(cfg),
        "sample_rate": cfg.sample_rate,
        "mode": cfg.mode,
        "n_src": cfg.n_src,
        "splits": split_stats,
        "speakers_per_split": per_split,
        "train_speakers": sorted({u.speaker for s in SPLITS for u in utts[s]}),
        "unseen_speakers": sorted({u.speaker for s in utts if s not in SPLITS for u in utts[s]}),
        "hours_total_mixtures": round(sum(s["hours_mixtures"] for s in split_stats.values()), 4),
        "speakers": {s: source.speaker_info(s) for s in speakers_used},
        "files_seen": n_files,
        **_build_stats(stats),
        "dropped": _drop_summary(dropped, source.drop_why, asdict(cfg)),
        "source": source.source_id,
        **source.record_extras(speakers_used),
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


def _drop_summary(dropped: Dict[str, List[str]], why: Dict[str, str], fields: dict) -> dict:
    """reason -> count, a few examples and why (``why``'s text, with the config ``fields`` it
    names), for ``corpus.json``."""
    return {reason: {"count": len(v), "examples": sorted(v)[:8],
                     "why": why.get(reason, reason).format(**fields)}
            for reason, v in sorted(dropped.items())}
