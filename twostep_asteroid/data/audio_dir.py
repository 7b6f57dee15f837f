"""A wsj0-2mix-style corpus from your own recordings: one folder per speaker (or per sound class).

Layout (any depth under a speaker folder, e.g. LibriSpeech's ``<speaker>/<chapter>/*.flac``)::

    AUDIO_DIR/
        alice/   001.wav  002.flac  session2/003.ogg ...
        bob/     ...
        carol/   ...

Every file under a speaker folder with an audio suffix (:data:`AUDIO_SUFFIXES`) is a single-source
recording of that speaker, in any format and rate soundfile (libsndfile) reads: it is resampled to
the configured rate and downmixed to mono (one summary line in the log, and ``corpus.json``'s
``input``). Other files (transcripts, ...) are ignored and counted; hidden files and folders are
skipped, empty audio files ignored (counted). A file with an audio suffix that cannot be read
stops the build, naming it.

Built by :func:`.builder.build`, exactly as the embedded corpus (:mod:`.prompts`) is: recordings
are cleaned (silence trimmed, long pauses shortened), cut at pauses or joined into
``min_len..max_len`` s utterances, and mixed at a relative level of U(0, ``max_snr_db``) dB into
``<out>/wav8k/min/{tr,cv,tt}/...``, with the manifests ``json/<split>/{mix,s1,s2,utterances}.json``
(``utterances.json``: the pool for on-the-fly remixing), ``mixtures.csv`` and ``corpus.json``.

Splits, as the embedded corpus's:

* ``tr``/``cv``/``tt`` (80/10/10 %) by a SHA-256 hash of each recording's *file name* (no folder,
  no extension; :func:`~.builder.split_key`): utterance-disjoint, not speaker-disjoint, and the same
  file name (e.g. the same sentence read by several speakers) lands in the same split for every
  speaker. A recording (and every piece cut from it) stays in its split, so each speaker needs
  several recordings (about ten or more) to be in all three splits.
* ``tt_unseen``: the speaker folders of ``held_out`` (as the embedded corpus's unseen speakers) are
  in no tr/cv/tt mixture; the recipe's evaluation reports them as the unseen-speaker test.

CLI (sizes, seed, ``n_src`` and ``sample_rate`` default to the recipe's, ``config.DEFAULTS``)::

    python -m twostep_asteroid.data.audio_dir --audio_dir DIR --out OUT [--n_src 2]
        [--sample_rate 8000] [--seed S] [--n_tr N --n_cv N --n_tt N] [--held_out spk1,spk2]
        [--n_unseen N] [--min_len 2.5 --max_len 5] [--license ID]
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile as sf

from . import builder
from .audio_io import AudioError, MultichannelError, read_audio
from .builder import BuildConfig, Recording, assign_split, split_key
from .common import SPLITS, CorpusError, builder_parser, comma_list, run_build, setup_logging

log = logging.getLogger(__name__)

AUDIO_DIR_VERSION = 1
UNSEEN_SPLIT = "tt_unseen"
ALL_SPLITS = SPLITS + (UNSEEN_SPLIT,)

# Files with these suffixes are recordings (and must be readable); others are ignored, counted.
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                  ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".wv1", ".wv2")
# Audio that soundfile does not read: named in the error, with how to convert it.
OTHER_AUDIO_SUFFIXES = (".m4a", ".aac", ".wma", ".amr", ".mp4", ".webm", ".mka", ".ape", ".wv",
                        ".3gp", ".mp2", ".ac3")
FIX = ("Convert {them} to a format soundfile reads (WAV, FLAC, Ogg, MP3: e.g. "
       "`ffmpeg -i in.m4a out.wav`), or remove {them} from {root}.")
LAYOUT = ("Expected layout: {root}/<speaker>/<recordings> (one subfolder per speaker or sound "
          "class, audio files in it, any depth).")


@dataclass
class AudioDirConfig(BuildConfig):
    """How the corpus is built from a folder of recordings (the fields before ``held_out`` are
    :class:`~.builder.BuildConfig`'s, with the recipe's defaults)."""

    held_out: tuple = ()  # speaker folders (or their ids) that go only to tt_unseen
    n_unseen: Optional[int] = None  # mixtures of tt_unseen (None: n_tt)
    license: Optional[str] = None  # the recordings' licence, recorded per speaker in corpus.json

    def __post_init__(self):
        self.held_out = tuple(sorted({str(s) for s in self.held_out}))
        if self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        super().__post_init__()

    def n_mix(self, split: str) -> int:
        if split == UNSEEN_SPLIT:
            return self.n_tt if self.n_unseen is None else self.n_unseen
        return super().n_mix(split)


def speaker_id(folder: str) -> str:
    """The speaker id of a folder name: letters, digits, ``.``, ``_`` and ``-`` (other characters
    become ``-``); it names the utterance files and ids."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", folder).strip("-.")


def _walk(folder: Path) -> List[Path]:
    """Files under ``folder`` (symbolic links followed, each real folder once), sorted; hidden files
    and folders skipped."""
    files, seen = [], set()
    for dirpath, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(dirpath) / n for n in names if not n.startswith(".")]
    return sorted(f for f in files if f.is_file())


def _probe(path: Path) -> Tuple[int, int, int, str]:
    """``(rate, channels, frames, format)`` of a recording. Raises :class:`AudioError` naming the
    file."""
    if path.suffix.lower() in OTHER_AUDIO_SUFFIXES:
        raise AudioError(f"{path}: {path.suffix} is not a format soundfile reads")
    try:
        info = sf.info(str(path))
        rate, channels, frames, fmt = info.samplerate, info.channels, info.frames, info.format
    except Exception:  # e.g. NIST SPHERE that libsndfile cannot read: read_audio's own reader
        try:
            x, rate = read_audio(path)
            channels = 1
        except MultichannelError:
            x, rate = read_audio(path, allow_multichannel=True)
            channels = 2
        frames, fmt = len(x), path.suffix.lstrip(".").upper()
    return int(rate), int(channels), int(frames), str(fmt)


class AudioDirSource(builder.CorpusSource):
    """A folder of recordings, one subfolder per speaker, as :func:`.builder.build` takes it."""

    version = AUDIO_DIR_VERSION
    splits = ALL_SPLITS
    drop_why = {**builder.DROP_WHY,
                "not_audio": "files without an audio suffix (transcripts, ...), ignored",
                "empty": "audio files holding no samples, ignored",
                "not_in_speaker_folder": "audio files directly in the folder, not in a speaker "
                                         "subfolder, ignored"}

    def __init__(self, root, cfg: AudioDirConfig):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise CorpusError(f"--audio_dir {root}: no such folder. "
                              + LAYOUT.format(root=root))
        self.license = cfg.license
        self.folders = sorted(d for d in self.root.iterdir()
                              if d.is_dir() and not d.name.startswith("."))
        self.files = {d.name: _walk(d) for d in self.folders}
        self.loose = sorted(p for p in self.root.iterdir()
                            if p.is_file() and not p.name.startswith("."))
        h = hashlib.sha256()
        for d in self.folders:
            for p in self.files[d.name]:
                st = p.stat()
                h.update(f"{d.name}/{p.relative_to(d).as_posix()}\0{st.st_size}\0"
                         f"{int(st.st_mtime)}\n".encode())
        self.source_id = f"audio_dir:{self.root.name}:{h.hexdigest()[:16]}"
        self.ids: Dict[str, str] = {}  # speaker id -> folder name
        self.input: dict = {}

    def name(self, cfg: AudioDirConfig) -> str:
        return f"{self.root.name}-{cfg.n_src}mix"

    def recordings(self, cfg: AudioDirConfig, dropped: Dict[str, List[str]]):
        root = self.root
        audio = {d: [p for p in fs if p.suffix.lower() in AUDIO_SUFFIXES + OTHER_AUDIO_SUFFIXES]
                 for d, fs in self.files.items()}
        for d, fs in self.files.items():
            kept = set(audio[d])
            for p in fs:
                if p not in kept:
                    dropped["not_audio"].append(f"{d}/{p.relative_to(root / d).as_posix()}")
        loose = [p for p in self.loose if p.suffix.lower() in AUDIO_SUFFIXES + OTHER_AUDIO_SUFFIXES]
        if not any(audio.values()):
            where = (f"found {len(loose)} audio file(s) directly in {root} and no speaker "
                     "subfolder holding any" if loose else f"no audio files in {root}")
            raise CorpusError(f"{where}. " + LAYOUT.format(root=root))
        if loose:
            dropped["not_in_speaker_folder"] += [p.name for p in loose]
            log.warning("Ignored %d audio file(s) directly in %s (not in a speaker subfolder): %s",
                        len(loose), root, ", ".join(p.name for p in loose[:5]))
        empty = [d for d, fs in audio.items() if not fs]
        if empty:
            log.warning("Ignored %d folder(s) without audio files: %s", len(empty),
                        ", ".join(empty[:10]))
        ids: Dict[str, str] = {}
        for d in (d for d, fs in audio.items() if fs):
            spk = speaker_id(d)
            if not spk or spk in ids:
                raise CorpusError(f"{root}: speaker folder {d!r} gives the speaker id {spk!r}"
                                  + (f", as {ids[spk]!r} does" if spk in ids else "")
                                  + ": rename it (letters, digits, '.', '_', '-').")
            ids[spk] = d
        self.ids = ids
        self._check_speakers(cfg)
        held = {self._resolve(h) for h in cfg.held_out}
        recs, unreadable = [], []
        rates, channels, formats = Counter(), Counter(), Counter()
        for spk, d in sorted(ids.items()):
            for p in audio[d]:
                rel = p.relative_to(root / d).as_posix()
                try:
                    rate, ch, frames, fmt = _probe(p)
                except AudioError as e:
                    unreadable.append(str(e))
                    continue
                if frames == 0:
                    dropped["empty"].append(f"{d}/{rel}")
                    continue
                rates[rate] += 1
                channels[ch] += 1
                formats[fmt] += 1
                split = UNSEEN_SPLIT if d in held else assign_split(split_key(rel),
                                                                    cfg.split_fractions)
                recs.append(Recording(d, spk, rel, p, split))
        if unreadable:
            them = "it" if len(unreadable) == 1 else "them"
            raise CorpusError(f"{len(unreadable)} file(s) under {root} cannot be read as audio:\n  "
                              + "\n  ".join(unreadable[:20])
                              + (f"\n  ... and {len(unreadable) - 20} more" if len(unreadable) > 20
                                 else "")
                              + "\n" + FIX.format(them=them, root=root))
        n_resampled = sum(n for r, n in rates.items() if r != cfg.sample_rate)
        n_downmixed = sum(n for c, n in channels.items() if c > 1)
        self.input = {"sample_rates": {str(r): n for r, n in sorted(rates.items())},
                      "channels": {str(c): n for c, n in sorted(channels.items())},
                      "formats": dict(sorted(formats.items())),
                      "resampled_files": n_resampled, "downmixed_files": n_downmixed}
        log.info("Found %d recordings of %d speakers in %s (%s; %s); resampled to %d Hz: %d, "
                 "downmixed to mono: %d.", len(recs), len(ids), root,
                 ", ".join(f"{n} {f}" for f, n in sorted(formats.items())),
                 ", ".join(f"{n} at {r} Hz" for r, n in sorted(rates.items())),
                 cfg.sample_rate, n_resampled, n_downmixed)
        if dropped.get("empty"):
            log.warning("Ignored %d empty audio file(s) (0 samples): %s", len(dropped["empty"]),
                        ", ".join(dropped["empty"][:5]))
        if dropped.get("not_audio"):
            log.warning("Ignored %d file(s) without an audio suffix (not recordings): %s",
                        len(dropped["not_audio"]), ", ".join(dropped["not_audio"][:5]))
        n_files = len(recs) + sum(len(v) for v in dropped.values())
        return recs, n_files

    def _resolve(self, name: str) -> str:
        """The folder of a ``held_out`` entry (a folder name or a speaker id)."""
        if name in self.ids.values():
            return name
        return self.ids[name]

    def _check_speakers(self, cfg: AudioDirConfig):
        root, n = self.root, cfg.n_src
        found = sorted(self.ids.values())
        if len(found) < n:
            raise CorpusError(f"{root} has {len(found)} speaker folder(s) with audio "
                              f"({', '.join(found) or 'none'}); {n}-speaker mixtures need at least "
                              f"{n}. " + LAYOUT.format(root=root))
        unknown = [h for h in cfg.held_out if h not in self.ids and h not in self.ids.values()]
        if unknown:
            raise CorpusError(f"held_out speaker(s) {unknown} are not folders of {root}; its "
                              f"speaker folders: {', '.join(found)}")
        held = {self._resolve(h) for h in cfg.held_out}
        if held and len(held) < n:
            raise CorpusError(f"held_out has {len(held)} speaker(s) ({', '.join(sorted(held))}): "
                              f"the unseen-speaker test ({UNSEEN_SPLIT}) needs at least {n}")
        train = [d for d in found if d not in held]
        if len(train) < n:
            raise CorpusError(f"{root}: {len(train)} speaker folder(s) left for training "
                              f"({', '.join(train) or 'none'}) after held_out; need at least {n}")

    def check_pool(self, utts, cfg: AudioDirConfig):
        splits = SPLITS + ((UNSEEN_SPLIT,) if cfg.held_out else ())
        for split in splits:
            spk = sorted({self.ids[u.speaker] for u in utts.get(split, ())})
            if len(spk) < cfg.n_src:
                raise CorpusError(
                    f"{self.root}: split {split} holds utterances of {len(spk)} speaker folder(s) "
                    f"({', '.join(spk) or 'none'}); {cfg.n_src}-speaker mixtures need at least "
                    f"{cfg.n_src}. Each recording goes to tr/cv/tt by a hash of its file name "
                    "(80/10/10 %), so every speaker folder needs several recordings (about ten or "
                    "more; one long recording stays in one split: cut it into several files).")

    def speaker_info(self, speaker: str) -> dict:
        info = {"name": self.ids.get(speaker, speaker), "folder": self.ids.get(speaker, speaker)}
        if self.license:
            info["license"] = self.license
        return info

    def read(self, rec: Recording):
        try:
            return read_audio(rec.path, allow_multichannel=True)
        except AudioError as e:  # the header was read, the audio is not: stop, naming the file
            raise CorpusError(f"{e}\n" + FIX.format(them="it", root=self.root)) from e

    def record_extras(self, speakers_used: Sequence[str]) -> dict:
        return {"audio_dir": str(self.root), "input": self.input,
                "speaker_folders": {s: self.ids[s] for s in speakers_used}}


def build_audio_dir(audio_dir, out, cfg: Optional[AudioDirConfig] = None,
                    progress: bool = True) -> dict:
    """Build the corpus of a folder of recordings (one subfolder per speaker) into ``out``.

    Idempotent and resumable as :func:`.builder.build`; every file is checked, and every mixture
    drawn, before ``out`` is touched.

    Returns:
        The content of ``corpus.json``. Raises :class:`CorpusError` (naming the folder or the file,
        and the fix) for a layout or files it cannot use.
    """
    cfg = cfg or AudioDirConfig()
    root, dest = Path(audio_dir).resolve(), Path(out).resolve()
    if dest == root or root in dest.parents:
        raise CorpusError(f"--out {out} is inside --audio_dir {audio_dir}: its files would be read "
                          "as recordings; choose an output folder outside it.")
    return builder.build(AudioDirSource(audio_dir, cfg), out, cfg, progress=progress)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def get_parser() -> argparse.ArgumentParser:
    d = AudioDirConfig()
    p = builder_parser("audio_dir", "Build a wsj0-2mix-style corpus from a folder of your own "
                       "recordings, one subfolder per speaker (or sound class).", "output folder")
    p.add_argument("--audio_dir", required=True,
                   help="the recordings: AUDIO_DIR/<speaker>/<files> (any format soundfile reads)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--n_tr", type=int, default=d.n_tr)
    p.add_argument("--n_cv", type=int, default=d.n_cv)
    p.add_argument("--n_tt", type=int, default=d.n_tt)
    p.add_argument("--n_src", type=int, default=d.n_src)
    p.add_argument("--sample_rate", type=int, default=d.sample_rate)
    p.add_argument("--min_len", type=float, default=d.min_len)
    p.add_argument("--max_len", type=float, default=d.max_len)
    p.add_argument("--held_out", default="",
                   help="comma-separated speaker folders kept for the unseen-speaker test "
                        "(tt_unseen) only")
    p.add_argument("--n_unseen", type=int, default=None, help="mixtures of tt_unseen (default: n_tt)")
    p.add_argument("--license", default=None,
                   help="the recordings' licence (e.g. CC-BY-4.0), recorded in corpus.json")
    p.add_argument("--no_progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)

    def build():
        cfg = AudioDirConfig(n_tr=args.n_tr, n_cv=args.n_cv, n_tt=args.n_tt, n_src=args.n_src,
                             seed=args.seed, sample_rate=args.sample_rate, min_len=args.min_len,
                             max_len=args.max_len, n_unseen=args.n_unseen, license=args.license,
                             held_out=comma_list(args.held_out))
        build_audio_dir(args.audio_dir, args.out, cfg, progress=not args.no_progress)

    return run_build(build, (CorpusError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
