"""A small wsj0-2mix-style corpus of real speech, built from voice recordings packaged by Debian.

Sources (:data:`~.voices.PACKAGES`, fetched with ``apt-get download``, unpacked with ``dpkg -x``
by :mod:`.debian`, never installed): Asterisk voice prompts (wav and raw GSM 6.10), the Czech and
Dutch voices of the game Fish Fillets NG (Ogg, 22.05 kHz; the Dutch ones stereo, averaged to mono),
the spoken words of KDE's KLettres and KTuberling (one voice per language folder; Ogg, wav, Opus;
stereo files averaged to mono, repeated files dropped) and codec2's speech samples (raw 16-bit, 8 kHz).
:data:`~.voices.SPEAKERS` lists the voices with their licences.

This module is the corpus's own part (:class:`PromptSource`): scanning the extracted packages
(speaker table, non-speech dropped by name, held-out speakers) and the licences. Cleaning,
utterances, mixtures and manifests are :mod:`.builder`'s, shared with :mod:`.audio_dir` (a
user's own recordings) and :mod:`.esc50` (sound clips).

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
import json
import logging
import os
import re
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from ..config import DEFAULTS
from ..fileio import atomic_write_bytes, atomic_write_text
from .audio_io import read_audio, write_wav
from . import builder
from .builder import (  # noqa: F401  (the generic steps, also importable from here)
    DROP_WHY as _BUILDER_DROP_WHY,
    MANAGED,
    BuildConfig,
    MixturePlan,
    Utterance,
    assign_split,
    clean_recording as clean_prompt,
    cut_long,
    make_utterances,
    plan_mixtures,
    split_key,
    stable_int,
    tree_fingerprint,
)
from .buildstate import BuildState, file_sha256
from .common import SPLITS, CorpusError, builder_parser, comma_list, run_build, setup_logging
from .debian import extract_debs, fetch_debs
from .voices import (
    CODEC2_CLIPS,
    DEFAULT_UNSEEN,
    FILLETS_NAME,
    FILLETS_SPEAKER,
    KDE_VOICES,
    PACKAGES,
    SPEAKERS,
    VOICE_DIRS,
    find_copyright_files,
    kde_speaker,
    license_records,
    licenses_md,
)

log = logging.getLogger(__name__)

CORPUS_VERSION = 4  # 2: the Czech voices and the unseen-speaker tests; 3: the Dutch voices;
# 4: the KDE voices (KLettres, KTuberling), opt-in (the default pool is version 3's)
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
    "other-language": "Fish Fillets lines in a language whose actors are not in FILLETS_SPEAKER",
    "codec2-unlisted": "codec2 files that are not speech or repeat another file (CODEC2_CLIPS)",
    "duplicate": "KDE voice files whose bytes repeat an earlier file (KTuberling's copies of the sr "
                 "folder, stamps that share a recording)",
    "not_in_train_pool": "speakers left out of the training pool (not in train_speakers; when it "
                         "is null, the opt-in KDE voices)",
    **_BUILDER_DROP_WHY,  # corrupt, multichannel, silent, short_remainder
}


_DATA = DEFAULTS["data"]  # the recipe's defaults: the corpus sizes, seed, rate and speakers


@dataclass
class CorpusConfig(BuildConfig):
    """How the corpus is built; its fields (with the source) identify a build.

    The sizes (``n_tr``, ``n_cv``, ``n_tt``), ``n_src``, ``seed``, ``sample_rate`` and
    ``train_speakers`` default to the recipe's ``data`` section (``config.DEFAULTS``); the fields
    before ``train_speakers`` are :class:`~.builder.BuildConfig`'s.
    """

    # Speakers of tr/cv/tt (None: every speaker found that is not held out), and the speakers held
    # out for tt_unseen; codec2 talkers always go to tt_codec2.
    train_speakers: Optional[tuple] = (None if _DATA["train_speakers"] is None
                                       else tuple(_DATA["train_speakers"]))
    unseen_speakers: tuple = DEFAULT_UNSEEN
    n_unseen: Optional[int] = None  # mixtures of tt_unseen (None: n_tt)
    n_codec2: Optional[int] = None  # mixtures of tt_codec2 (None: min(n_tt, 100); 37 utterances)

    def __post_init__(self):
        if self.train_speakers is not None:
            self.train_speakers = tuple(sorted({str(s) for s in self.train_speakers}))
        self.unseen_speakers = tuple(sorted({str(s) for s in self.unseen_speakers}))
        both = set(self.train_speakers or ()) & set(self.unseen_speakers)
        if both:
            raise ValueError(f"speakers {sorted(both)} are both in train_speakers and unseen_speakers")
        super().__post_init__()

    def n_mix(self, split: str) -> int:
        return {"tr": self.n_tr, "cv": self.n_cv, "tt": self.n_tt,
                "tt_unseen": self.n_tt if self.n_unseen is None else self.n_unseen,
                "tt_codec2": min(self.n_tt, 100) if self.n_codec2 is None else self.n_codec2}[split]


Prompt = builder.Recording  # a prompt file: voice folder, speaker, path inside it, split


# --------------------------------------------------------------------------------------------
# Scanning, splits
# --------------------------------------------------------------------------------------------
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


AUDIO_SUFFIXES = (".wav", ".gsm", ".ogg", ".opus")  # anywhere; ``.raw`` only in the codec2 layout
KDE_APPS = tuple(app.lower() for app, _ in KDE_VOICES.values())  # their folders, speaker prefixes


def locate_prompt(parts: Sequence[str], root_name: str = ""):
    """Where a file of an extracted tree belongs: ``(voice, speaker, rel)``, ``(None, reason,
    rel)`` for a file of a known layout that is not used, or ``None`` for a non-audio file.

    Layouts, by the path's folders (``parts``: the path relative to the tree's root):

    * Fish Fillets NG, ``.../fillets-ng/sound/<level>/<lang>/<file>.ogg``: voice
      ``fillets-ng-<lang>``, speaker from the language and the file name (:data:`FILLETS_NAME`,
      :data:`FILLETS_SPEAKER`); other characters' lines and sound effects give
      ``(None, "other-character", rel)``, a language without a speaker table
      ``(None, "other-language", rel)``.
    * codec2, ``.../codec2/{raw,wav}/<file>``: voice ``codec2``, speaker from
      :data:`CODEC2_CLIPS`; unlisted files give ``(None, "codec2-unlisted", rel)``.
    * KLettres, ``.../klettres/<lang>/{alpha,syllab}/<file>``, and KTuberling,
      ``.../ktuberling/sounds/<lang>/<file>``: voice and speaker ``klettres-<lang>`` or
      ``ktuberling-<lang>`` (:func:`~.voices.kde_speaker`).
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
        speaker = FILLETS_SPEAKER.get((lang, m.group(1)))
        if speaker is None:
            return None, "other-language", rel
        return f"fillets-ng-{lang}", speaker, rel
    kde = kde_layout(folders, name)
    if kde is not None:
        return kde
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


def kde_layout(folders: Sequence[str], name: str):
    """``(voice, speaker, rel)`` of a KLettres or KTuberling spoken word (:func:`locate_prompt`),
    else ``None``."""
    if "klettres" in folders:  # .../klettres/<lang>/{alpha,syllab}/<file>
        sub = folders[folders.index("klettres") + 1:]
        if len(sub) == 2 and sub[1] in ("alpha", "syllab"):
            spk = kde_speaker("klettres-data", sub[0])
            return spk, spk, f"{sub[1]}/{name}"
    if "ktuberling" in folders:  # .../ktuberling/sounds/<lang>/<file>
        sub = folders[folders.index("ktuberling") + 1:]
        if len(sub) == 2 and sub[0] == "sounds":
            spk = kde_speaker("ktuberling-data", sub[1])
            return spk, spk, name
    return None


def is_kde_voice(voice: str) -> bool:
    """A voice of KLettres or KTuberling (:func:`kde_layout`)."""
    return any(voice.startswith(app + "-") for app in KDE_APPS)


def scan_prompt_tree(roots: Iterable, fractions=(0.8, 0.1, 0.1), dropped: Optional[dict] = None):
    """Find prompt files under ``roots`` (extracted packages or any tree), as
    :func:`locate_prompt` places them; symbolic links are not followed.

    Non-speech files are dropped by name and recorded in ``dropped`` (reason -> list of source
    ids); so are KDE voice files whose bytes repeat an earlier file (``duplicate``). Every prompt
    gets its tr/cv/tt split from its file name (:func:`assign_split`); held-out speakers are moved
    by :func:`assign_splits`.
    """
    dropped = dropped if dropped is not None else defaultdict(list)
    prompts: List[Prompt] = []
    unknown = set()
    seen_kde = set()  # content hashes of the KDE voices' files: their copies are dropped
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
            reason = drop_reason(rel)
            if reason is None and is_kde_voice(voice):
                digest = file_sha256(p)
                reason = "duplicate" if digest in seen_kde else None
                seen_kde.add(digest)
            if reason:
                dropped[reason].append(f"{voice}/{rel}")
                continue
            if speaker not in SPEAKERS and voice not in ("codec2",):
                unknown.add(voice)
            prompts.append(Prompt(voice, speaker, rel, p, assign_split(split_key(rel), fractions)))
    for v in sorted(unknown):
        log.warning("Voice folder %r is not in the speaker table: speaker id %r.", v,
                    _speaker_of(v))
    prompts.sort(key=lambda q: (q.speaker, q.voice, q.rel))
    return prompts, dropped


def assign_splits(prompts: Sequence[Prompt], cfg: "CorpusConfig", dropped: dict) -> List[Prompt]:
    """Held-out speakers to the unseen-speaker splits, the others to tr/cv/tt (their hash split)
    when they are in ``cfg.train_speakers`` (when None: all but the opt-in voices, the KDE ones);
    prompts of other speakers are dropped (reason ``not_in_train_pool``). Raises :class:`CorpusError` for a speaker asked for that is not
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
        elif (p.speaker not in cfg.train_speakers if cfg.train_speakers is not None
              else info.get("opt_in", False)):
            dropped["not_in_train_pool"].append(p.source_id)
            continue
        kept.append(p)
    return kept



# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
class PromptSource(builder.CorpusSource):
    """The embedded corpus's part of :func:`.builder.build`: the prompts of extracted package
    trees (:func:`scan_prompt_tree`, :func:`assign_splits`), the speaker table and the licences."""

    version = CORPUS_VERSION
    splits = ALL_SPLITS
    drop_why = DROP_WHY

    def __init__(self, roots: Sequence[Path], source_id: str, provenance: Optional[dict] = None):
        self.roots = [Path(r) for r in roots]
        self.source_id = source_id
        self.provenance = provenance

    def name(self, cfg: CorpusConfig) -> str:
        return "asterisk-prompts-{}mix".format(cfg.n_src)

    def recordings(self, cfg: CorpusConfig, dropped: Dict[str, List[str]]):
        prompts, dropped = scan_prompt_tree(self.roots, cfg.split_fractions, dropped)
        n_files = len(prompts) + sum(len(v) for v in dropped.values())
        if not prompts:
            raise CorpusError(f"no prompt audio files found under {[str(r) for r in self.roots]}")
        log.info("Found %d audio files, %d after dropping non-speech by name.", n_files, len(prompts))
        return assign_splits(prompts, cfg, dropped), n_files

    def read(self, rec: builder.Recording):
        """Mono files as they are; the voices of :data:`DOWNMIX_VOICES` and the KDE voices
        averaged to mono."""
        return read_audio(rec.path, allow_multichannel=rec.voice in DOWNMIX_VOICES
                          or is_kde_voice(rec.voice))

    def speaker_info(self, speaker: str) -> dict:
        return dict(SPEAKERS.get(speaker, {"name": speaker}))

    def write_extras(self, build, speakers_used: Sequence[str], per_split: Dict[str, List[str]]):
        """Copy the packages' copyright files to ``licenses/`` and write ``LICENSES.md``."""
        cfiles = find_copyright_files(self.roots)
        for pkg, path in sorted(cfiles.items()):
            build.keep.append(atomic_write_bytes(build.out / "licenses" / f"{pkg}.copyright",
                                                 path.read_bytes()))
        build.keep.append(atomic_write_text(build.out / "LICENSES.md",
                                            licenses_md(speakers_used, cfiles, self.provenance,
                                                        per_split)))

    def record_extras(self, speakers_used: Sequence[str]) -> dict:
        return {"provenance": self.provenance or {}, "licenses": license_records(speakers_used),
                "downmixed_voices": list(DOWNMIX_VOICES) + [app + "-*" for app in KDE_APPS]}


# Voices whose files are stereo recordings of one voice (fillets-ng-data-nl: two correlated channels,
# the same line in both); their files are averaged to mono, as are the KDE voices' stereo files
# (:func:`is_kde_voice`). Any other multichannel file is dropped and counted (``multichannel``).
DOWNMIX_VOICES = ("fillets-ng-nl",)


def content_hash(cfg: CorpusConfig, source_id: str) -> str:
    """Identity of the corpus content (the same wherever it is written)."""
    return builder.content_hash(cfg, source_id, CORPUS_VERSION)


def corpus_hash(cfg: CorpusConfig, out, source_id: str) -> str:
    """Identity of a build: content plus location (the manifests hold absolute paths)."""
    return builder.corpus_hash(cfg, out, source_id, CORPUS_VERSION)


def _write_wav(*args, **kwargs):
    return write_wav(*args, **kwargs)  # looked up when called: tests patch ``prompts.write_wav``


def build_corpus(roots: Sequence, out, cfg: Optional[CorpusConfig] = None,
                 source_id: Optional[str] = None, provenance: Optional[dict] = None,
                 progress: bool = True) -> dict:
    """Build the corpus from prompt trees into ``out`` (:func:`.builder.build` of a
    :class:`PromptSource`).

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
    roots = [Path(r) for r in roots]
    source = PromptSource(roots, source_id or tree_fingerprint(roots), provenance)
    return builder.build(source, out, cfg or CorpusConfig(), progress=progress, writer=_write_wav)


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
    setup_logging(args.verbose)

    def build():
        cfg = CorpusConfig(n_tr=args.n_tr, n_cv=args.n_cv, n_tt=args.n_tt, n_src=args.n_src,
                           seed=args.seed, min_len=args.min_len, max_len=args.max_len,
                           train_speakers=comma_list(args.train_speakers) or None,
                           unseen_speakers=comma_list(args.unseen_speakers),
                           n_unseen=args.n_unseen, n_codec2=args.n_codec2)
        if args.src_dir:
            build_corpus(args.src_dir, args.out, cfg, progress=not args.no_progress)
        else:
            build_from_debs(args.out, cfg, args.deb_cache, progress=not args.no_progress)

    return run_build(build, (CorpusError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
