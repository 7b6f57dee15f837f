"""Datasets over the wsj0-mix style manifests written by :mod:`.prompts` and :mod:`.wsj0mix`.

* :class:`Wsj0mixManifestDataset` subclasses ``asteroid.data.Wsj0mixDataset`` (same manifests,
  same ``(mix [T], sources [n_src, T])`` items) but never drops short mixtures: with a training
  ``segment`` they are zero-padded at the end, counted and logged (Asteroid drops them, printing
  a line). Random crops use a generator seeded from ``(seed, epoch, idx)``.
* :class:`DynamicMixingDataset` remixes the single-speaker pool ``utterances.json`` on the fly.

Both are deterministic given ``seed``, the epoch (:meth:`set_epoch`) and the index, whatever the
number of DataLoader workers. Call ``set_epoch(epoch)`` at the start of each epoch (e.g. from the
LightningModule's ``on_train_epoch_start``) to get new crops/mixtures each epoch; with
``persistent_workers=True`` the workers keep the epoch they were started with.
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
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

CLIP_PEAK = 0.9


def _src_names(n_src: int) -> List[str]:
    return [f"s{i + 1}" for i in range(n_src)]


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
    sources = [_load_json(json_dir / f"{s}.json", f"source {s}") for s in _src_names(n_src)]
    for name, lst in zip(_src_names(n_src), sources):
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


def _read(path: str, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    x, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    return x.astype(np.float32, copy=False)


def _corpus_infos(json_dir) -> Optional[dict]:
    """Dataset infos from ``<corpus>/corpus.json`` (prompt corpus), if there is one."""
    p = Path(json_dir).resolve()
    for cand in (p / "corpus.json", p.parent / "corpus.json", p.parent.parent / "corpus.json"):
        if cand.is_file():
            try:
                c = json.loads(cand.read_text())
            except json.JSONDecodeError:
                return None
            return {"dataset": c.get("name", "corpus"), "task": "sep_clean",
                    "licenses": c.get("licenses", [])}
    return None


def _wsj0mix_base():
    from asteroid.data import Wsj0mixDataset  # lazy: asteroid is heavy to import

    return Wsj0mixDataset


def _make_manifest_class():
    Base = _wsj0mix_base()

    class Wsj0mixManifestDataset(Base):
        """``asteroid.data.Wsj0mixDataset`` that pads (instead of dropping) short mixtures.

        Args:
            json_dir: folder with ``mix.json``, ``s1.json``... (``[path, n_samples]`` lists).
            n_src, sample_rate: as in Asteroid.
            segment: seconds per item; ``None`` for full mixtures (evaluation).
            seed: seed of the random crops (with the epoch and the index).
            check_files: also check every listed wav exists at construction.
        """

        dataset_name = "wsj0-mix"

        def __init__(self, json_dir, n_src=2, sample_rate=8000, segment=4.0, seed=0,
                     check_files=False):
            validate_manifests(json_dir, n_src, check_files=check_files)
            # Let Asteroid load the manifests without its length filter (segment=None), and
            # silence its "Drop 0 utts" print; the segment is set afterwards.
            with contextlib.redirect_stdout(io.StringIO()):
                super().__init__(str(json_dir), n_src=n_src, sample_rate=sample_rate,
                                 segment=None)
            self.segment = segment
            self.seg_len = None if segment is None else int(segment * sample_rate)
            self.like_test = self.seg_len is None
            self.seed = int(seed)
            self.epoch = 0
            self.n_padded = 0 if self.like_test else sum(
                1 for m in self.mix if int(m[1]) < self.seg_len)
            if self.n_padded:
                log.info("%s: %d of %d mixtures are shorter than the %.2f s segment; they are "
                         "zero-padded at the end (not dropped).", json_dir, self.n_padded,
                         len(self.mix), segment)

        def set_epoch(self, epoch: int):
            self.epoch = int(epoch)

        def _rng(self, idx):
            return np.random.default_rng([self.seed, self.epoch, int(idx)])

        def __getitem__(self, idx):
            n = int(self.mix[idx][1])
            if self.like_test:
                start, stop = 0, None
            elif n > self.seg_len:
                start = int(self._rng(idx).integers(0, n - self.seg_len + 1))
                stop = start + self.seg_len
            else:
                start, stop = 0, None
            x = _read(self.mix[idx][0], start, stop)
            srcs = [_read(src[idx][0], start, stop) for src in self.sources]
            if not self.like_test and len(x) < self.seg_len:
                pad = self.seg_len - len(x)
                x = np.pad(x, (0, pad))
                srcs = [np.pad(s, (0, self.seg_len - len(s))) for s in srcs]
            return torch.from_numpy(x), torch.from_numpy(np.stack(srcs).astype(np.float32))

        def get_infos(self):
            infos = _corpus_infos(self.json_dir)
            return infos if infos is not None else super().get_infos()

    return Wsj0mixManifestDataset


def __getattr__(name):
    # PEP 562: the Asteroid subclass is created on first use (importing asteroid takes seconds),
    # then cached as a real module attribute, so ``isinstance`` and pickling by reference work.
    if name == "Wsj0mixManifestDataset":
        cls = _make_manifest_class()
        cls.__module__ = __name__
        cls.__qualname__ = name
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DynamicMixingDataset(Dataset):
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
    """

    dataset_name = "dynamic-mix"

    def __init__(self, json_dir, n_src=2, sample_rate=8000, segment=4.0, n_items=None, seed=0,
                 max_snr_db=5.0, fill="pad", level=0.1):
        super().__init__()
        if fill not in ("pad", "concat"):
            raise ValueError("fill must be 'pad' or 'concat'")
        self.json_dir = str(json_dir)
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
        self.seed = int(seed)
        self.epoch = 0
        if n_items is None:
            mix_json = jd / "mix.json"
            n_items = len(_load_json(mix_json, "mixture")) if mix_json.is_file() else len(utts)
        self.n_items = int(n_items)

    def __len__(self):
        return self.n_items

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _rng(self, idx):
        return np.random.default_rng([self.seed, self.epoch, int(idx)])

    def _crop(self, rng, u, length):
        n = int(u["n_samples"])
        if length is None or n <= length:
            return _read(u["path"])
        start = int(rng.integers(0, n - length + 1))
        return _read(u["path"], start, start + length)

    def _concat(self, rng, spk, first, length):
        """Utterances of ``spk`` (starting with ``first``) joined until ``length`` samples, then a
        random crop of ``length``."""
        parts, total = [_read(first["path"])], int(first["n_samples"])
        pool = self.by_spk[spk]
        while total < length:
            gap = np.zeros(int(rng.uniform(0.1, 0.3) * self.sample_rate), np.float32)
            nxt = pool[int(rng.integers(len(pool)))]
            parts += [gap, _read(nxt["path"])]
            total += len(gap) + int(nxt["n_samples"])
        x = np.concatenate(parts)
        start = int(rng.integers(0, len(x) - length + 1))
        return x[start:start + length]

    def __getitem__(self, idx):
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        rng = self._rng(idx)
        spks = rng.choice(len(self.speakers), size=self.n_src, replace=False, p=self.spk_p)
        chosen = []
        for k in spks:
            pool = self.by_spk[self.speakers[int(k)]]
            chosen.append((self.speakers[int(k)], pool[int(rng.integers(len(pool)))]))
        if self.fill == "concat" and self.seg_len is not None:
            srcs = [self._concat(rng, spk, u, self.seg_len) for spk, u in chosen]
        else:
            srcs = [self._crop(rng, u, self.seg_len) for _, u in chosen]
            n = min(len(s) for s in srcs)
            srcs = [s[:n] for s in srcs]
        # gains
        r = float(rng.uniform(0.0, self.max_snr_db))
        gains = [r / 2.0, -r / 2.0] + [float(rng.uniform(-self.max_snr_db / 2, self.max_snr_db / 2))
                                       for _ in range(self.n_src - 2)]
        out = []
        for s, g in zip(srcs, gains):
            level = float(np.sqrt(np.mean(s.astype(np.float64) ** 2))) if len(s) else 0.0
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
        """Which speakers/utterances item ``idx`` uses at the current epoch (for checks)."""
        rng = self._rng(idx)
        spks = rng.choice(len(self.speakers), size=self.n_src, replace=False, p=self.spk_p)
        info = []
        for k in spks:
            pool = self.by_spk[self.speakers[int(k)]]
            info.append({"speaker": self.speakers[int(k)],
                         "path": pool[int(rng.integers(len(pool)))]["path"]})
        return {"sources": info}

    def get_infos(self):
        infos = _corpus_infos(self.json_dir)
        return infos if infos is not None else {"dataset": self.dataset_name, "task": "sep_clean",
                                                "licenses": []}


def make_dataset(json_dir, n_src=2, sample_rate=8000, segment=4.0, dynamic_mixing=False,
                 n_items=None, seed=0, **kwargs):
    """Dataset yielding ``(mix [T] float32, sources [n_src, T] float32)``.

    ``dynamic_mixing=False``: the static mixtures of ``json_dir`` (Asteroid's manifests), short
    ones zero-padded; ``segment=None`` gives full mixtures (evaluation).
    ``dynamic_mixing=True``: :class:`DynamicMixingDataset` over ``json_dir/utterances.json``.
    Extra keyword arguments go to the chosen class.
    """
    if dynamic_mixing:
        return DynamicMixingDataset(json_dir, n_src=n_src, sample_rate=sample_rate,
                                    segment=segment, n_items=n_items, seed=seed, **kwargs)
    if n_items is not None:
        raise ValueError("n_items only applies to dynamic mixing")
    cls = globals().get("Wsj0mixManifestDataset") or __getattr__("Wsj0mixManifestDataset")
    return cls(json_dir, n_src=n_src, sample_rate=sample_rate, segment=segment, seed=seed,
               **kwargs)


def set_epoch(dataset, epoch: int):
    """Call ``set_epoch`` on a dataset and on the datasets it wraps (Subset, ConcatDataset)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if hasattr(dataset, "dataset"):
        set_epoch(dataset.dataset, epoch)
    for d in getattr(dataset, "datasets", []):
        set_epoch(d, epoch)
