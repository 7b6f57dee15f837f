"""Datasets over the wsj0-mix style manifests written by :mod:`.prompts` and :mod:`.wsj0mix`.

* :class:`Wsj0mixManifestDataset` subclasses ``asteroid.data.Wsj0mixDataset`` (same manifests,
  same ``(mix [T], sources [n_src, T])`` items) but never drops short mixtures: with a training
  ``segment`` they are zero-padded at the end, counted and logged (Asteroid drops them, printing
  a line). Random crops use a generator seeded from ``(seed, epoch, idx)``.
* :class:`DynamicMixingDataset` remixes the single-speaker pool ``utterances.json`` on the fly.

Both are deterministic given ``seed``, the epoch (:meth:`set_epoch`) and the index, whatever the
number of DataLoader workers. Call ``set_epoch(epoch)`` at the start of each epoch (e.g. from the
LightningModule's ``on_train_epoch_start``) to get new crops/mixtures each epoch. The epoch lives
in shared memory, so DataLoader workers see it too, ``persistent_workers=True`` included: the
recipe keeps its workers for the whole run rather than forking new ones at every epoch
(``twostep_asteroid.train``).

Both can add noise to the mixture (``noise``: ``"white"``, ``"pink"`` or ``"brown"``, power
spectrum ``1/f^0``, ``1/f``, ``1/f^2``; :func:`~.mixing.add_noise`) at an SNR of the speech mixture
over the noise drawn uniformly from ``noise_snr_db``: the noisy variant of a clean corpus. The
noise is no target: the sources returned stay the clean speakers. It comes from a random stream
of its own, seeded by ``(seed, epoch, idx)`` for training items and by ``(seed, idx)`` for whole
utterances (validation, evaluation: the same noise at every epoch and run), so ``noise=None``
gives exactly the items of a dataset without it.

Every file is checked as it is read (header and the samples already in memory, so it stays cheap
in DataLoader workers); a bad file raises :class:`~.audio_io.AudioError` with a message of the form
``"<path>: <problem>. <fix>"``:

* unreadable/corrupt, or not as long as its manifest says (truncated or replaced);
* a sample rate other than the corpus's, or more than one channel (corpora must be mono);
* NaN or Inf samples.

An all-zero source (every sample below ``SILENT_PEAK``, i.e. zero once written as 16-bit PCM) makes
SI-SDR meaningless: Asteroid's SI-SDR does not return NaN for it (its ``EPS`` gives -80 dB, a
constant with zero gradient), but that constant would pollute the loss and the metrics. Training
items (a ``segment`` is set) with such a source are skipped: replaced by another item drawn
deterministically (static mixtures) or redrawn (dynamic mixing), counted, and logged with the file
name. Whole-utterance items (``segment=None``: validation, evaluation) keep their index, since
evaluation names results by it: they are kept, counted and logged. The counts are shared with the
DataLoader workers (:meth:`counts`) and summarised at each :func:`set_epoch`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf
import torch
from asteroid.data import Wsj0mixDataset
from torch.utils.data import Dataset

from .audio_io import AudioError, MultichannelError
from .common import src_names
from .mixing import (CLIP_PEAK, add_noise, change_speed, check_noise, noise_record, relative_gains, rms,
                     samples_for_speed)

log = logging.getLogger(__name__)

SILENT_PEAK = 2.0 ** -16  # below half a 16-bit step: the source is all zeros as 16-bit PCM
MAX_REDRAWS = 20          # replacement items tried for a training item with an all-zero source


def _load_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what} manifest not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} manifest {path} is not valid JSON: {e}") from e


def validate_manifests(json_dir, n_src: int = 2, check_files: bool = False):
    """Check ``mix.json`` and ``s1..sN.json`` exist and agree (same count, same lengths).
    Raises ``FileNotFoundError`` naming the missing json (or wav with ``check_files``) and
    ``ValueError`` on mismatches. Returns ``(mix, [sources...])``."""
    json_dir = Path(json_dir)
    mix = _load_json(json_dir / "mix.json", "mixture")
    sources = [_load_json(json_dir / f"{s}.json", f"source {s}") for s in src_names(n_src)]
    for name, lst in zip(src_names(n_src), sources):
        if len(lst) != len(mix):
            raise ValueError(f"{json_dir / (name + '.json')} has {len(lst)} entries, "
                             f"{json_dir / 'mix.json'} has {len(mix)}")
        for i, (m, s) in enumerate(zip(mix, lst)):
            if int(m[1]) != int(s[1]):
                raise ValueError(f"entry {i}: {s[0]} has {s[1]} samples, mixture {m[0]} has {m[1]}")
    if check_files:
        for lst in [mix] + sources:
            for path, _ in lst:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"audio file listed in {json_dir} not found: {path}")
    return mix, sources


def _fix_hint(json_dir) -> str:
    """How to repair a bad file of the corpus whose manifests are in ``json_dir``."""
    jd = Path(json_dir)
    root = jd.parent.parent if jd.parent.name == "json" else jd.parent
    if (root / ".done").is_file():
        return (f"Or rebuild the corpus: delete {root / '.done'} and rerun data preparation "
                "(./run.sh --stage 0 --stop_stage 0)")
    return f"Or remove its entry from the manifests in {jd}"


def read_checked(path: str, n_expected: int, start: int = 0, stop: Optional[int] = None, *,
                 sample_rate: int, manifest: str = "the manifest", fix: str = "") -> np.ndarray:
    """Samples ``[start, stop)`` of a corpus file, as float32 mono, after checking it.

    The header gives the rate, the channel count and the length (compared with ``n_expected``, the
    manifest's); the samples read are checked for NaN/Inf. Raises :class:`AudioError`
    (:class:`MultichannelError` for more than one channel) with ``"<path>: <problem>. <fix>"``;
    ``fix`` (from :func:`_fix_hint`) is the alternative to replacing the file.
    """
    fix = fix or f"Or remove its entry from {manifest}"
    replace = f"Replace it with a good copy. {fix}."
    try:
        with sf.SoundFile(path) as f:
            sr, channels, frames = f.samplerate, f.channels, f.frames
            if sr != sample_rate:
                raise AudioError(
                    f"{path}: sample rate {sr} Hz, the corpus is read at {sample_rate} Hz. If the "
                    f"whole corpus is at {sr} Hz, set data.sample_rate: {sr}; otherwise resample "
                    f"this file (e.g. `sox in.wav -r {sample_rate} out.wav`). {fix}.")
            if channels != 1:
                raise MultichannelError(
                    f"{path}: {channels} channels, corpus files must be mono. Convert it to mono "
                    f"(e.g. `sox in.wav -c 1 out.wav` averages the channels). {fix}.")
            if frames != n_expected:
                raise AudioError(
                    f"{path}: {frames} samples, {manifest} lists {n_expected} (truncated, or "
                    f"replaced after the manifest was written). {replace}")
            stop = frames if stop is None else stop
            if start:
                f.seek(start)
            x = f.read(stop - start, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as err:  # libsndfile: LibsndfileError/RuntimeError; missing file: OSError
        if not os.path.exists(path):
            raise AudioError(f"{path}: file not found (listed in {manifest}). {replace}") from err
        raise AudioError(f"{path}: unreadable or corrupt audio ({err}). {replace}") from err
    if len(x) != stop - start:
        raise AudioError(f"{path}: {len(x)} samples read where {stop - start} were expected "
                         f"from sample {start} (truncated file). {replace}")
    x = x[:, 0]
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise AudioError(f"{path}: {len(bad)} NaN/Inf sample(s) (first at sample {start + bad[0]}). "
                         f"{replace}")
    return np.ascontiguousarray(x)


def is_silent(x: np.ndarray) -> bool:
    """All samples below ``SILENT_PEAK`` (a source SI-SDR cannot be measured against)."""
    return x.size == 0 or float(np.max(np.abs(x))) < SILENT_PEAK


class ItemCounts:
    """Counters of what the dataset did with bad items, shared with the DataLoader workers, so that
    the main process can report what its workers skipped.

    A shared-memory tensor with one row per process (the main one, and up to 64 workers; ids wrap
    around beyond): each process adds to its own row only, so no update is lost and no lock is
    needed. A lock would need a semaphore, which DataLoader workers started with ``spawn`` (macOS's
    default) can only share if it comes from a spawn context, and that starts multiprocessing's
    resource-tracker process beside every training process.
    """

    KEYS = ("silent_skipped", "silent_kept")
    ROWS = 65

    def __init__(self):
        self.table = torch.zeros(self.ROWS, len(self.KEYS), dtype=torch.int64).share_memory_()
        self._reported = None

    def add(self, key: str, n: int = 1):
        info = torch.utils.data.get_worker_info()
        row = 0 if info is None else 1 + info.id % (self.ROWS - 1)
        self.table[row, self.KEYS.index(key)] += n

    def totals(self) -> Dict[str, int]:
        return {k: int(v) for k, v in zip(self.KEYS, self.table.sum(0).tolist())}

    def report(self, where):
        """Log the totals if they changed since the last report (call from the main process)."""
        tot = self.totals()
        if any(tot.values()) and tot != self._reported:
            log.warning("%s: so far %d item(s) skipped and %d kept because a source is all-zero "
                        "(the files are named in the warnings above).", where,
                        tot["silent_skipped"], tot["silent_kept"])
        self._reported = tot


class _WarnOnce:
    """Log each bad file once per process (the counts still count every occurrence)."""

    def __init__(self):
        self.seen = set()

    def __call__(self, key, message, *args):
        if key not in self.seen:
            self.seen.add(key)
            log.warning(message, *args)


class _EpochSeededItems:
    """What both training datasets share: items seeded by ``(seed, epoch, idx)``, the added noise,
    and the bookkeeping of bad items (the fix hint of error messages, counters shared with the
    DataLoader workers, one warning per bad file). Call :meth:`_init_items` in ``__init__``."""

    def _init_items(self, json_dir, seed, noise=None, noise_snr_db=(0.0, 10.0)):
        self.json_dir = str(json_dir)
        self.seed = int(seed)
        # Shared with the DataLoader workers: persistent workers then follow set_epoch.
        self._shared_epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._fix = _fix_hint(Path(json_dir))
        self.item_counts = ItemCounts()
        self._warn = _WarnOnce()
        self.noise, self.noise_snr_db = (None, None) if noise is None else check_noise(noise, noise_snr_db)

    @property
    def noise_info(self) -> Optional[dict]:
        """The added noise, ``{"color": ..., "snr_db": [low, high]}``, or None (clean mixtures)."""
        return noise_record(self.noise, self.noise_snr_db)

    def _noisy(self, mix: np.ndarray, idx, epoch) -> np.ndarray:
        """``mix`` with item ``idx``'s noise (``mix`` itself when the noise is off), from a random
        stream of its own seeded by ``(seed, epoch, idx)``."""
        if self.noise is None:
            return mix
        rng = np.random.default_rng([self.seed, int(epoch), int(idx), 0, 2, 2])
        return add_noise(mix, rng, self.noise, self.noise_snr_db)

    @property
    def epoch(self) -> int:
        return int(self._shared_epoch[0])

    def set_epoch(self, epoch: int):
        """New random crops (and, with dynamic mixing, new mixtures), in this process and in its
        DataLoader workers, persistent ones included; reports the bad items so far."""
        self._shared_epoch[0] = int(epoch)
        self.item_counts.report(self.json_dir)

    def _rng(self, idx, attempt=0):
        return np.random.default_rng([self.seed, self.epoch, int(idx)] + ([attempt] if attempt else []))


class Wsj0mixManifestDataset(_EpochSeededItems, Wsj0mixDataset):
    """``asteroid.data.Wsj0mixDataset`` that pads (instead of dropping) short mixtures.

    Args:
        json_dir: folder with ``mix.json``, ``s1.json``... (``[path, n_samples]`` lists).
        n_src, sample_rate: as in Asteroid.
        segment: seconds per item; ``None`` for full mixtures (evaluation).
        seed: seed of the random crops and of the noise (with the epoch and the index).
        check_files: also check every listed wav exists at construction.
        noise: ``None`` (off), ``"white"``, ``"pink"`` or ``"brown"``: noise added to the mixture
            (module docstring).
        noise_snr_db: ``(low, high)``: the SNR of the mixture over the noise, uniform in dB.
    """

    def __init__(self, json_dir, n_src=2, sample_rate=8000, segment=4.0, seed=0,
                 check_files=False, noise=None, noise_snr_db=(0.0, 10.0)):
        validate_manifests(json_dir, n_src, check_files=check_files)
        # Let Asteroid load the manifests without its length filter (segment=None), and
        # silence its "Drop 0 utts" print; the segment is set afterwards.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(str(json_dir), n_src=n_src, sample_rate=sample_rate,
                             segment=None)
        self.segment = segment
        self.seg_len = None if segment is None else int(segment * sample_rate)
        self.like_test = self.seg_len is None
        self._init_items(json_dir, seed, noise, noise_snr_db)
        self.n_padded = 0 if self.like_test else sum(
            1 for m in self.mix if int(m[1]) < self.seg_len)
        if self.n_padded:
            log.info("%s: %d of %d mixtures are shorter than the %.2f s segment; they are "
                     "zero-padded at the end (not dropped).", json_dir, self.n_padded,
                     len(self.mix), segment)
        jd = Path(json_dir)
        self._manifests = [str(jd / "mix.json")] + [str(jd / f"{s}.json")
                                                    for s in src_names(n_src)]

    def counts(self) -> Dict[str, int]:
        """What was done to this dataset's items, all DataLoader workers included:
        ``padded`` (mixtures shorter than the segment, from the manifest), ``silent_skipped``
        and ``silent_kept`` (items read with an all-zero source)."""
        return {"padded": self.n_padded, **self.item_counts.totals()}

    def _read_item(self, idx, rng):
        n = int(self.mix[idx][1])
        if self.like_test:
            start, stop = 0, None
        elif n > self.seg_len:
            start = int(rng.integers(0, n - self.seg_len + 1))
            stop = start + self.seg_len
        else:
            start, stop = 0, None
        lists = [self.mix] + list(self.sources)
        x, *srcs = [read_checked(lst[idx][0], int(lst[idx][1]), start, stop,
                                 sample_rate=self.sample_rate, manifest=man, fix=self._fix)
                    for lst, man in zip(lists, self._manifests)]
        return x, srcs

    def _silent(self, srcs, idx):
        """Path of the first all-zero source of item ``idx`` (None if there is none)."""
        for k, s in enumerate(srcs):
            if is_silent(s):
                return self.sources[k][idx][0]
        return None

    def __getitem__(self, idx):
        x, srcs = self._read_item(idx, self._rng(idx))
        silent = self._silent(srcs, idx)
        if silent is not None and self.like_test:
            # Whole utterances (validation, evaluation): results are named by index, so the
            # item is kept; Asteroid's SI-SDR gives a finite -80 dB against it.
            self.item_counts.add("silent_kept")
            self._warn(silent, "%s: all-zero source (item %d of %s): kept, but SI-SDR against "
                       "it is meaningless (-80 dB). Remove this mixture from the manifests or "
                       "replace the file.", silent, idx, self.json_dir)
        first, tried = idx, 0
        while silent is not None and not self.like_test:
            self.item_counts.add("silent_skipped")
            self._warn(silent, "%s: all-zero source (item %d of %s): item skipped (replaced "
                       "by another mixture) and counted. Remove this mixture from the "
                       "manifests or replace the file.", silent, idx, self.json_dir)
            tried += 1
            if tried > MAX_REDRAWS:
                raise AudioError(
                    f"{silent}: all-zero source, and so were the {MAX_REDRAWS} items drawn to "
                    f"replace item {first} of {self.json_dir}. Check the corpus: too many "
                    "sources are silent.")
            rng = self._rng(first, tried)
            idx = int(rng.integers(len(self.mix)))
            x, srcs = self._read_item(idx, rng)
            silent = self._silent(srcs, idx)
        if not self.like_test and len(x) < self.seg_len:
            pad = self.seg_len - len(x)
            x = np.pad(x, (0, pad))
            srcs = [np.pad(s, (0, self.seg_len - len(s))) for s in srcs]
        x = self._noisy(x, first, 0 if self.like_test else self.epoch)  # the returned length, padding included
        return torch.from_numpy(x), torch.from_numpy(np.stack(srcs).astype(np.float32))


class DynamicMixingDataset(_EpochSeededItems, Dataset):
    """On-the-fly mixtures from the single-speaker pool ``<json_dir>/utterances.json``.

    Each item draws ``n_src`` different speakers (weighted by their number of utterances), one
    utterance of each, a random crop of ``segment`` seconds, and a relative level uniform in
    ``0..max_snr_db`` dB (s1 at +r/2, s2 at -r/2, as wsj0-2mix; a third source U(-r_max/2,
    r_max/2)). Sources are normalised to equal RMS before the gains; if the mixture would exceed
    0.9 in magnitude, mixture and sources are scaled down together. The mixture is exactly the
    sum of the returned sources.

    ``fill``: what to do when an utterance is shorter than the segment.
      * ``"pad"`` (default): wsj0-2mix "min" style: all sources are cut to the shortest, then
        zero-padded at the end to the segment length.
      * ``"concat"``: more utterances of the same speaker are appended (0.1-0.3 s gaps) until the
        segment is full, so every item is fully overlapped speech.

    ``n_items``: items per epoch (default: the number of static mixtures in ``mix.json`` of the
    same folder, else the number of utterances). Items are deterministic given
    ``(seed, epoch, idx)``; call :meth:`set_epoch` each epoch to get new mixtures.

    ``speed_perturb``: pseudo-speakers. Each source is, with this probability, played at a speed
    drawn uniformly from ``speed_range`` (rounded to 1 %) by resampling
    (:func:`~.mixing.change_speed`: pitch, formants and tempo move together, so every epoch hears
    new "speakers"; SpeechBrain's SepFormer recipes use 0.95-1.05). The speeds come from a random
    stream of their own, so ``speed_perturb=0`` gives exactly the items of a dataset without it.

    ``noise``, ``noise_snr_db``: noise added to the mixture, as in :class:`Wsj0mixManifestDataset`
    (the module docstring); the mixture is then the sum of the sources plus the noise.

    Utterances shorter than the segment are counted (``n_short``) and logged at construction. An
    item whose crop of some utterance is all-zero is redrawn (up to ``MAX_REDRAWS`` times),
    counted (:meth:`counts`) and the file logged.
    """

    dataset_name = "dynamic-mix"

    def __init__(self, json_dir, n_src=2, sample_rate=8000, segment=4.0, n_items=None, seed=0,
                 max_snr_db=5.0, fill="pad", level=0.1, speed_perturb=0.0, speed_range=(0.95, 1.05),
                 noise=None, noise_snr_db=(0.0, 10.0)):
        super().__init__()
        if fill not in ("pad", "concat"):
            raise ValueError("fill must be 'pad' or 'concat'")
        if not 0.0 <= float(speed_perturb) <= 1.0:
            raise ValueError(f"speed_perturb is a probability in [0, 1], got {speed_perturb}")
        if len(speed_range) != 2 or not 0 < float(speed_range[0]) <= float(speed_range[1]):
            raise ValueError(f"speed_range must be [low, high] with 0 < low <= high, got {speed_range}")
        self.speed_perturb = float(speed_perturb)
        self.speed_range = (float(speed_range[0]), float(speed_range[1]))
        jd = Path(json_dir)
        utts = _load_json(jd / "utterances.json", "utterance pool")
        if not utts:
            raise ValueError(f"{jd / 'utterances.json'} is empty")
        for k, u in enumerate(utts[:1] + utts[-1:]):
            missing = {"path", "speaker", "n_samples"} - set(u)
            if missing:
                raise ValueError(f"{jd / 'utterances.json'}: entries need keys path, speaker, "
                                 f"n_samples (missing {sorted(missing)})")
        self.by_spk: Dict[str, List[dict]] = defaultdict(list)
        for u in utts:
            self.by_spk[str(u["speaker"])].append(u)
        self.speakers = sorted(self.by_spk)
        if len(self.speakers) < n_src:
            raise ValueError(f"{jd / 'utterances.json'} has {len(self.speakers)} speaker(s), "
                             f"need at least n_src={n_src}")
        counts = np.array([len(self.by_spk[s]) for s in self.speakers], dtype=np.float64)
        self.spk_p = counts / counts.sum()
        self.n_src = int(n_src)
        self.sample_rate = int(sample_rate)
        self.segment = segment
        self.seg_len = None if segment is None else int(segment * sample_rate)
        self.max_snr_db = float(max_snr_db)
        self.fill = fill
        self.level = float(level)
        self._init_items(json_dir, seed, noise, noise_snr_db)
        if n_items is None:
            mix_json = jd / "mix.json"
            n_items = len(_load_json(mix_json, "mixture")) if mix_json.is_file() else len(utts)
        self.n_items = int(n_items)
        self._manifest = str(jd / "utterances.json")
        self.n_short = 0 if self.seg_len is None else sum(
            1 for u in utts if int(u["n_samples"]) < self.seg_len)
        if self.n_short:
            log.info("%s: %d of %d utterances are shorter than the %.2f s segment; items using "
                     "them are %s (not dropped).", self._manifest, self.n_short, len(utts), segment,
                     "zero-padded at the end" if fill == "pad"
                     else "filled with more utterances of the same speaker")

    def __len__(self):
        return self.n_items

    def counts(self) -> Dict[str, int]:
        """``short_utterances`` (pool utterances shorter than the segment) and ``silent_skipped``
        (items redrawn for an all-zero source), all DataLoader workers included."""
        return {"short_utterances": self.n_short, **self.item_counts.totals()}

    def _read(self, u, start=0, stop=None):
        return read_checked(u["path"], int(u["n_samples"]), start, stop,
                            sample_rate=self.sample_rate, manifest=self._manifest, fix=self._fix)

    def _crop(self, rng, u, length):
        n = int(u["n_samples"])
        if length is None or n <= length:
            return self._read(u)
        start = int(rng.integers(0, n - length + 1))
        return self._read(u, start, start + length)

    def _concat(self, rng, spk, first, length):
        """Utterances of ``spk`` (starting with ``first``) joined until ``length`` samples, then a
        random crop of ``length``."""
        parts, total = [self._read(first)], int(first["n_samples"])
        pool = self.by_spk[spk]
        while total < length:
            gap = np.zeros(int(rng.uniform(0.1, 0.3) * self.sample_rate), np.float32)
            nxt = pool[int(rng.integers(len(pool)))]
            parts += [gap, self._read(nxt)]
            total += len(gap) + int(nxt["n_samples"])
        x = np.concatenate(parts)
        start = int(rng.integers(0, len(x) - length + 1))
        return x[start:start + length]

    def __getitem__(self, idx):
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        for attempt in range(MAX_REDRAWS + 1):
            item, silent = self._draw(self._rng(idx, attempt), self._speeds(idx, attempt))
            if silent is None:
                mix, sources = item
                return torch.from_numpy(self._noisy(mix.numpy(), idx, self.epoch)), sources
            self.item_counts.add("silent_skipped")
            self._warn(silent, "%s: all-zero source (item %d of %s): item redrawn and counted. "
                       "Remove the utterance from %s or replace the file.", silent, idx,
                       self.json_dir, self._manifest)
        raise AudioError(f"{silent}: all-zero source, and so were the {MAX_REDRAWS} redraws of "
                         f"item {idx} of {self.json_dir}. Check the utterance pool: too many "
                         "utterances are silent.")

    def _speeds(self, idx, attempt=0):
        """Speed of each source of item ``idx`` (1.0: unchanged), from a stream of its own."""
        rng = np.random.default_rng([self.seed, self.epoch, int(idx), int(attempt), 1, 1])
        speeds = []
        for _ in range(self.n_src):
            apply, speed = rng.random() < self.speed_perturb, rng.uniform(*self.speed_range)
            speeds.append(float(speed) if apply else 1.0)
        return speeds

    def _choose(self, rng):
        """``(speaker, utterance)`` of each source: ``n_src`` different speakers, weighted by
        their number of utterances, and one utterance of each."""
        spks = rng.choice(len(self.speakers), size=self.n_src, replace=False, p=self.spk_p)
        chosen = []
        for k in spks:
            pool = self.by_spk[self.speakers[int(k)]]
            chosen.append((self.speakers[int(k)], pool[int(rng.integers(len(pool)))]))
        return chosen

    def _draw(self, rng, speeds=None):
        """One item from ``rng`` (and the sources' ``speeds``); ``(item, None)``, or
        ``(None, path)`` if a crop is all-zero."""
        speeds = speeds or [1.0] * self.n_src
        chosen = self._choose(rng)
        need = [None if self.seg_len is None else samples_for_speed(self.seg_len, sp) for sp in speeds]
        if self.fill == "concat" and self.seg_len is not None:
            srcs = [change_speed(self._concat(rng, spk, u, n), sp)[:self.seg_len]
                    for (spk, u), n, sp in zip(chosen, need, speeds)]
        else:
            srcs = [change_speed(self._crop(rng, u, n), sp)[:self.seg_len]
                    for (_, u), n, sp in zip(chosen, need, speeds)]
            n = min(len(s) for s in srcs)
            srcs = [s[:n] for s in srcs]
        for (_, u), s in zip(chosen, srcs):
            if is_silent(s):
                return None, u["path"]
        return self._mix(rng, srcs), None

    def _mix(self, rng, srcs):
        """``(mix [T], sources [n_src, T])``: the sources at wsj0-2mix relative levels around
        ``level`` RMS, zero-padded to the segment, scaled down together if the sum would exceed
        :data:`~.mixing.CLIP_PEAK`."""
        out = []
        for s, g in zip(srcs, relative_gains(rng, self.n_src, self.max_snr_db)):
            level = rms(s)
            scale = self.level * 10 ** (g / 20) / level if level > 1e-8 else 0.0
            out.append((s * scale).astype(np.float32))
        sources = np.stack(out)
        if self.seg_len is not None and sources.shape[1] < self.seg_len:
            sources = np.pad(sources, ((0, 0), (0, self.seg_len - sources.shape[1])))
        mix = sources.sum(axis=0, dtype=np.float32)
        peak = float(np.max(np.abs(mix))) if mix.size else 0.0
        if peak > CLIP_PEAK:
            sources = (sources * np.float32(CLIP_PEAK / peak)).astype(np.float32)
            mix = sources.sum(axis=0, dtype=np.float32)
        return torch.from_numpy(mix), torch.from_numpy(sources)

    def item_info(self, idx) -> dict:
        """Which speakers/utterances (at which speeds) item ``idx`` uses at the current epoch
        (for checks)."""
        chosen = self._choose(self._rng(idx))
        return {"sources": [{"speaker": spk, "path": u["path"], "speed": speed}
                            for (spk, u), speed in zip(chosen, self._speeds(idx))]}


def make_dataset(json_dir, n_src=2, sample_rate=8000, segment=4.0, dynamic_mixing=False,
                 n_items=None, seed=0, **kwargs):
    """Dataset yielding ``(mix [T] float32, sources [n_src, T] float32)``.

    ``dynamic_mixing=False``: the static mixtures of ``json_dir`` (Asteroid's manifests), short
    ones zero-padded; ``segment=None`` gives full mixtures (evaluation).
    ``dynamic_mixing=True``: :class:`DynamicMixingDataset` over ``json_dir/utterances.json``.
    Extra keyword arguments go to the chosen class (both take ``noise`` and ``noise_snr_db``, see
    :func:`noise_options`).
    """
    if dynamic_mixing:
        return DynamicMixingDataset(json_dir, n_src=n_src, sample_rate=sample_rate,
                                    segment=segment, n_items=n_items, seed=seed, **kwargs)
    if n_items is not None:
        raise ValueError("n_items only applies to dynamic mixing")
    return Wsj0mixManifestDataset(json_dir, n_src=n_src, sample_rate=sample_rate, segment=segment,
                                  seed=seed, **kwargs)


def noise_options(data_conf) -> dict:
    """The noise keyword arguments of :func:`make_dataset` (``noise``, ``noise_snr_db``) from the
    configuration's ``data`` section (``data.noise``, ``data.noise_snr_db``)."""
    return {"noise": data_conf["noise"], "noise_snr_db": tuple(data_conf["noise_snr_db"])}


def set_epoch(dataset, epoch: int):
    """Call ``set_epoch`` on a dataset and on the datasets it wraps (Subset, ConcatDataset)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if hasattr(dataset, "dataset"):
        set_epoch(dataset.dataset, epoch)
    for d in getattr(dataset, "datasets", []):
        set_epoch(d, epoch)
