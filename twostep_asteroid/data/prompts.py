"""A small wsj0-2mix-style corpus of real speech, built from voice recordings packaged by Debian.

Sources (:data:`PACKAGES`, fetched with ``apt-get download``, unpacked with ``dpkg -x``, never
installed): Asterisk voice prompts (wav and raw GSM 6.10), the Czech voices of the game Fish Fillets
NG (Ogg, 22.05 kHz) and codec2's speech samples (raw 16-bit, 8 kHz). :data:`SPEAKERS` lists the
voices with their licences.

Pipeline (each step is a function, testable on a fake tree of audio files)::

    .debs --(apt-get download, dpkg -x)--> extracted tree
          --scan_prompt_tree--> prompts (speaker, split, path), non-speech dropped by name
          --assign_splits--> held-out speakers to the unseen-speaker test splits
          --clean_prompt--> trimmed 8 kHz mono speech, long internal pauses shortened
          --make_utterances--> 2.5-5 s single-speaker utterances (long prompts cut at pauses,
                               short ones joined with 0.1-0.3 s gaps; same speaker, same split)
          --make_mixtures--> 2-speaker "min" mixtures, relative level U(0, 5) dB, wsj0-2mix scaling
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

CLI::

    python -m twostep_asteroid.data.prompts --out DIR [--deb_cache DIR] [--seed 0]
        [--n_tr 4000 --n_cv 400 --n_tt 400] [--n_src 2] [--train_speakers a,b,...]
        [--unseen_speakers armelle,july] [--n_unseen N] [--n_codec2 N] [--src_dir TREE ...]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from .audio_io import (
    AudioError,
    BuildState,
    MultichannelError,
    config_hash,
    file_sha256,
    from_int16,
    read_audio,
    resample,
    to_int16,
    write_wav,
)
from ..fileio import DiskFullError, atomic_write_bytes, atomic_write_json, atomic_write_text
from .mixing import mix_sources, quietest_cut, relative_gains, shorten_pauses, trim_silence

log = logging.getLogger(__name__)

CORPUS_VERSION = 2
SPLITS = ("tr", "cv", "tt")                 # training pool: split by prompt name
UNSEEN_SPLITS = ("tt_unseen", "tt_codec2")  # held-out speakers only
ALL_SPLITS = SPLITS + UNSEEN_SPLITS

PACKAGES = (
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-es-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-ru-wav",
    "asterisk-prompt-it-menardi-wav",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-es-co",
    "fillets-ng-data-cs",
    "codec2-examples",
)

# Speakers. Sources, both inside the .debs:
#  * the voice folder names, /usr/share/asterisk/sounds/<lang>_<REGION>_<f|m>_<Voice>/;
#  * /usr/share/doc/<package>/copyright (Debian DEP-5). The five asterisk-core-sounds-*-wav
#    packages (1.6.1-1) ship the same copyright file, which quotes the upstream CREDITS files:
#      "Files: *"   Copyright: 2003-2010, Allison Smith; "Recorded by: Allison Smith
#                   (http://www.theivrvoice.com)"; License: CC-BY-SA-3.0. The en (en_US) and es
#                   (es_MX) packages are both Allison Smith: ONE speaker.
#      "Files: fr-*" Copyright: 2006-2008, June Wallack; "Recorded by: June Wallack"; CC-BY-SA-3.0.
#      "Files: ru-*" Copyright: 2010, Maxim; "Provided by: Maxim Topal, http://www.ivrvoice.ru";
#                   CC-BY-3.0. The voice actor is not named; the folder says female (ru_RU_f_).
#      "Files: it-*" Copyright: 2012 Carlo Flora; "Recorded by: Carlo Flora"; CC-BY-3.0.
#    asterisk-prompt-it-menardi-wav (1:1.4.22+mm20110907-3.1): "Copyright: 2006-2011, Marco
#    Menardi.e Paola Dal Zot (?the voice?)", License "CC-SA-BY-3.0": Creative Commons
#    Attribuzione - Condividi allo stesso modo 3.0 Italia (CC BY-SA 3.0 IT), with the condition
#    that the authors and http://www.voip.ammdomus.it are credited visibly to the end user.
SPEAKERS: Dict[str, dict] = {
    "allison": dict(
        name="Allison Smith", gender="f",
        url="http://www.theivrvoice.com",
        voice_dirs=["en_US_f_Allison", "es_MX_f_Allison"],
        packages=["asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav"],
        copyright="2003-2010, Allison Smith (recorded by Allison Smith, http://www.theivrvoice.com;"
                  " financial contributions by Digium, Inc.)",
        license="CC-BY-SA-3.0", license_url="https://creativecommons.org/licenses/by-sa/3.0/",
    ),
    "june": dict(
        name="June Wallack", gender="f",
        url="http://www.junewallack.com",
        voice_dirs=["fr_CA_f_June"],
        packages=["asterisk-core-sounds-fr-wav"],
        copyright="2006-2008, June Wallack (recorded by June Wallack, http://www.junewallack.com;"
                  " translated by Clod Patry, Kristopher Lalletti, June Wallack)",
        license="CC-BY-SA-3.0", license_url="https://creativecommons.org/licenses/by-sa/3.0/",
    ),
    "carlo": dict(
        name="Carlo Flora", gender="m",
        url="http://www.carloflora.com",
        voice_dirs=["it_IT_m_Carlo"],
        packages=["asterisk-core-sounds-it-wav"],
        copyright="2012 Carlo Flora, http://www.segreterietelefoniche.it (recorded by Carlo Flora,"
                  " http://www.carloflora.com; translated by Silvia Petrin)",
        license="CC-BY-3.0", license_url="https://creativecommons.org/licenses/by/3.0/",
    ),
    "ivrvoiceru": dict(
        name="ivrvoice.ru female voice (provided by Maxim Topal)", gender="f",
        url="http://www.ivrvoice.ru",
        voice_dirs=["ru_RU_f_IvrvoiceRU"], packages=["asterisk-core-sounds-ru-wav"],
        copyright="2010, Maxim (provided by Maxim Topal, http://www.ivrvoice.ru)",
        license="CC-BY-3.0", license_url="https://creativecommons.org/licenses/by/3.0/",
    ),
    "paola": dict(
        name="Paola Dal Zot (Menardi Italian prompts)", gender="f",
        url="http://www.voip.ammdomus.it",
        voice_dirs=["it_IT_f_Menardi"], packages=["asterisk-prompt-it-menardi-wav"],
        copyright="2006-2011, Marco Menardi e Paola Dal Zot (the voice),"
                  " http://www.voip.ammdomus.it",
        license="CC-BY-SA-3.0-IT", license_url="https://creativecommons.org/licenses/by-sa/3.0/it/",
        note="Attribution condition of the authors: wherever the files are distributed, state"
             " visibly to the end user that the sound files were made by Marco Menardi and Paola"
             " Dal Zot, and give the URL http://www.voip.ammdomus.it.",
    ),
    # asterisk-prompt-fr-armelle (20070613-2.2): raw GSM 6.10 files in sounds/fr/. Its copyright file:
    # "Voice actor: Armelle Desjardins", "Copyright holder (2006): Michel Gutierrez", licence: a
    # BSD-style permission ("Redistribution and use, with or without modification, are permitted
    # provided that ... 1. Redistributions must retain the above copyright notice, this list of
    # conditions and the following disclaimer. 2. Neither the name of the Indigen Solutions nor the
    # names of its contributors ... may be used to endorse or promote products derived ...").
    "armelle": dict(
        name="Armelle Desjardins", gender="f", source="Asterisk voice prompts (French)",
        url="http://public.aclap.com/",
        voice_dirs=["fr"], packages=["asterisk-prompt-fr-armelle"],
        copyright="(C) 2006 Michel Gutierrez (voice actor: Armelle Desjardins)",
        license="BSD-style (asterisk-prompt-fr-armelle)",
        license_url="https://packages.debian.org/asterisk-prompt-fr-armelle",
        note="Keep the copyright notice, the conditions and the disclaimer of"
             " licenses/asterisk-prompt-fr-armelle.copyright with the files; the names of the"
             " copyright holder and contributors may not be used to endorse derived products.",
    ),
    # asterisk-prompt-es-co (0.20070403-2.1): raw GSM 6.10 files in sounds/es/, Colombian Spanish.
    # copyright: "Upstream Author: Avatar Ltda. / July E. Jimenez", GNU GPL version 2; LEEME:
    # "Sonidos grabados por Avatar Ltda. con la voz de July E. Jimenez", "Copyright (C) 2006, Avatar
    # Ltda. http://www.avatar.com.co/".
    "july": dict(
        name="July E. Jiménez", gender="f", source="Asterisk voice prompts (Colombian Spanish)",
        url="http://www.avatar.com.co/",
        voice_dirs=["es"], packages=["asterisk-prompt-es-co"],
        copyright="(C) 2006, Avatar Ltda. (recorded by Avatar Ltda. with the voice of July E."
                  " Jiménez)",
        license="GPL-2.0-only", license_url="https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
        note="GPL-2: a file containing this voice (a mixture included) is distributed under the"
             " GPL-2 terms, with its copyright notice.",
    ),
}
# Fish Fillets NG, Czech voices (fillets-ng-data-cs 1.0.1-1.1): Ogg Vorbis at 22.05 kHz in
# games/fillets-ng/sound/<level>/cs/. The two fish are voiced by two actors: the file names say who
# speaks, ``[<level>-]m-<word>.ogg`` for the small fish (median F0 about 290 Hz) and
# ``[<level>-]v-<word>.ogg`` for the big fish (about 130 Hz); the other characters' lines and the
# sound effects (``-x-``) are dropped. copyright: "Upstream Authors: Ivo Danihelka, Pavel Danihelka,
# ALTAR interactive, ..."; GNU GPL version 2. The actors are not named in the package.
FILLETS_COPYRIGHT = ("ALTAR interactive, Ivo Danihelka, Pavel Danihelka and the Fish Fillets NG"
                     " authors (fillets.sourceforge.net); the Czech actors are not named")
for _spk, _role, _gender in (("fillets-m", "small fish", "f"), ("fillets-v", "big fish", "m")):
    SPEAKERS[_spk] = dict(
        name=f"Fish Fillets NG Czech actor ({_role})", gender=_gender,
        source="Fish Fillets NG Czech voices", url="http://fillets.sourceforge.net",
        voice_dirs=[], packages=["fillets-ng-data-cs"], copyright=FILLETS_COPYRIGHT,
        license="GPL-2.0-only", license_url="https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
        note="GPL-2: a file containing this voice (a mixture included) is distributed under the"
             " GPL-2 terms, with its copyright notice.")
FILLETS_SPEAKER = {"m": "fillets-m", "v": "fillets-v"}
FILLETS_NAME = re.compile(r"^(?:[a-z0-9]+-)?([mv])-[^-]+$")

# codec2's speech samples (codec2-examples 1.0.5-1, /usr/share/codec2/{raw,wav}/; copyright:
# "Files: ... raw/* ... wav/*", "Copyright 2007-2019 David Rowe", LGPL-2.1). The package documents
# neither the talkers nor the recordings, so the talkers are taken from the file names, one per
# name (the amateur-radio call signs ve9qrp, vk5qi, g3plx, vk2tpm are over-the-air recordings).
# Kept: one file per recording, checked by cross-correlation (wav/ repeats most of raw/; hts1a and
# hts2a are the first halves of hts1 and hts2; ve9qrp_10s is the first 10 s of ve9qrp; wav/all.wav
# is a compilation; f2400/m2400 are forig/morig through a 2400 bit/s codec). Dropped too: modem
# signals (700d_end_over, testframes_700d, test_datac1_006), sine tests and wia_16kHz (1 s).
CODEC2_CLIPS = {
    "raw/big_dog.raw": "bigdog", "raw/cq_ref.raw": "cqref", "raw/cross.raw": "cross",
    "raw/forig.raw": "forig", "raw/g3plx.raw": "g3plx", "raw/hts1.raw": "hts1",
    "raw/hts2.raw": "hts2", "raw/kristoff.raw": "kristoff", "raw/mmt1.raw": "mmt1",
    "raw/morig.raw": "morig", "raw/ve9qrp_10s.raw": "ve9qrp", "raw/vk5qi.raw": "vk5qi",
    "raw/speech_orig_16k.wav": "speechorig", "wav/david4.wav": "david4",
    "wav/vk2tpm_004.wav": "vk2tpm",
}
for _talker in sorted(set(CODEC2_CLIPS.values())):
    SPEAKERS[f"codec2-{_talker}"] = dict(
        name=f"codec2 sample talker '{_talker}' (from the file name)", gender="?",
        source="codec2 speech samples", url="https://github.com/drowe67/codec2",
        voice_dirs=[], packages=["codec2-examples"], copyright="2007-2019 David Rowe",
        license="LGPL-2.1-or-later", license_url="https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
        test_only="tt_codec2")
VOICE_DIRS = {d: spk for spk, info in SPEAKERS.items() for d in info["voice_dirs"]}
DEFAULT_UNSEEN = ("armelle", "july")

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


class CorpusError(RuntimeError):
    """A user-facing error: the message says what to do."""


@dataclass
class CorpusConfig:
    n_tr: int = 4000
    n_cv: int = 400
    n_tt: int = 400
    n_src: int = 2
    seed: int = 0
    sample_rate: int = 8000
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
    train_speakers: Optional[tuple] = None
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
        return f"wav{self.sample_rate // 1000}k/{self.mode}"


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
    h = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16) / float(16 ** 13)
    acc = 0.0
    for split, frac in zip(SPLITS, fractions):
        acc += frac
        if h < acc:
            return split
    return SPLITS[-1]


def drop_reason(rel: str) -> Optional[str]:
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

    sr = cfg.sample_rate
    min_n, max_n = int(cfg.min_len * sr), int(cfg.max_len * sr)
    groups: Dict[tuple, List[Prompt]] = defaultdict(list)
    for p in prompts:
        groups[(p.speaker, p.split)].append(p)

    out: Dict[str, List[Utterance]] = {s: [] for s in ALL_SPLITS}
    counters: Counter = Counter()
    bar = tqdm(total=len(prompts), desc="prompts", unit="file", disable=None if progress else True)
    for (spk, split) in sorted(groups):
        # One random stream per group: a group's utterances do not depend on the other speakers.
        rng = np.random.default_rng([cfg.seed, 1, stable_int(f"{spk}/{split}")])
        made: List[Utterance] = []
        buf: List[np.ndarray] = []
        buf_src: List[str] = []
        buf_len = 0

        def emit(chunks, srcs):
            counters[(spk, split)] += 1
            uid = f"{spk}-{split}{counters[(spk, split)] - 1:04d}"
            made.append(Utterance(uid, spk, split, to_int16(np.concatenate(chunks)), list(srcs)))

        for p in groups[(spk, split)]:
            bar.update(1)
            x, reason = clean_prompt(p, cfg, stats)
            if x is None:
                dropped[reason].append(p.source_id)
                continue
            stats["prompts_used"] += 1
            stats["prompt_seconds_used"] += len(x) / sr
            pieces = cut_long(x, cfg) if len(x) > max_n else [x]
            if len(pieces) > 1:
                stats["prompts_cut"] += 1
            for k, piece in enumerate(pieces):
                if len(pieces) > 1:
                    piece = trim_silence(piece, sr, top_db=cfg.top_db)
                    if len(piece) < cfg.min_prompt * sr:
                        continue
                src = p.source_id if len(pieces) == 1 else f"{p.source_id}#{k}"
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
        if buf:  # short remainder
            if made:
                u = made[-1]
                gap = int(round(cfg.gap_min * sr))
                if u.n_samples + gap + buf_len <= max_n:
                    tail = to_int16(np.concatenate(buf))
                    u.audio = np.concatenate([u.audio, np.zeros(gap, np.int16), tail])
                    u.sources.extend(buf_src)
                    buf = []
            if buf:
                stats["remainder_seconds_dropped"] += buf_len / sr
                dropped["short_remainder"].extend(buf_src)
        out[split].extend(made)
    bar.close()
    for split in ALL_SPLITS:
        out[split].sort(key=lambda u: u.utt_id)
    return out


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


def _parse_dep5(text: str) -> List[dict]:
    """Paragraphs of a DEP-5 copyright file: first lines of Files/Copyright/License fields."""
    paras = []
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        for line in block.splitlines():
            m = re.match(r"^(Files|Copyright|License|Upstream-Name|Source):\s*(.*)$", line)
            if m:
                fields.setdefault(m.group(1), m.group(2).strip())
        if "Files" in fields or "Upstream-Name" in fields:
            paras.append(fields)
    return paras


def find_copyright_files(roots: Iterable) -> Dict[str, Path]:
    found = {}
    for root in roots:
        for p in sorted(Path(root).rglob("copyright")):
            if p.parent.parent.name == "doc" and p.is_file():
                found.setdefault(p.parent.name, p)
    return found


def licenses_md(speakers_used: Sequence[str], copyright_files: Dict[str, Path],
                provenance: Optional[dict], speakers_per_split: Optional[dict] = None) -> str:
    lines = [
        "# Licenses of the embedded speech corpus",
        "",
        "This corpus is an adaptation of voice recordings (Asterisk voice prompts, the Czech",
        "voices of Fish Fillets NG, codec2's speech samples) from the Debian packages listed below.",
        "Changes made: leading/trailing silence trimmed, internal pauses longer than the",
        "configured maximum shortened, long prompts cut into pieces, short prompts of one",
        "speaker concatenated with short silences, sample rate converted where needed, and",
        "utterances of different speakers mixed at random relative levels and rescaled.",
        "The original recordings are not endorsed by their authors for this use.",
        "",
        "Every file keeps the license of the recordings it contains. A mixture that contains a",
        "CC BY-SA source is an adaptation that must be shared under the same license (ShareAlike);",
        "one that contains a GPL-2 source (July E. Jiménez, the Fish Fillets actors) is distributed",
        "under the GPL-2 terms.",
        "",
        "## Voices",
        "",
    ]
    for spk in speakers_used:
        info = SPEAKERS.get(spk)
        if info is None:
            lines += [f"### {spk}", "", "Unknown voice: check the license of its source files.", ""]
            continue
        lines += [f"### {info['name']} (speaker id `{spk}`)", ""]
        if info.get("voice_dirs"):
            lines.append(f"- Voice folders: {', '.join(info['voice_dirs'])}")
        lines += [
            f"- Source: {info.get('source', 'Asterisk voice prompts')}",
            f"- Debian packages: {', '.join(info['packages'])}",
            f"- Copyright: {info['copyright']}",
            f"- License: {info['license']} <{info['license_url']}>",
        ]
        if info.get("note"):
            lines.append(f"- {info['note']}")
        lines.append("")
    if speakers_per_split:
        lines += ["## Speakers per split", "",
                  "tr/cv/tt: the training pool (tt: seen-speaker test); tt_unseen, tt_codec2: speakers",
                  "that are in no training or validation mixture (unseen-speaker tests).", ""]
        lines += [f"- `{split}`: {', '.join(spks)}" for split, spks in speakers_per_split.items()]
        lines.append("")
    lines += ["## Source copyright files", "",
              "Copied to `licenses/<package>.copyright`. Their license paragraphs:", ""]
    for pkg, path in sorted(copyright_files.items()):
        lines.append(f"### {pkg}")
        lines.append("")
        text = path.read_text(errors="replace")
        paras = _parse_dep5(text)
        for para in paras:
            desc = "; ".join(f"{k}: {v}" for k, v in para.items())
            lines.append(f"- {desc}")
        if not paras:  # a free-form copyright file: its authorship and licence lines
            lines.append(f"- Free-form copyright file (read `licenses/{pkg}.copyright`); its key lines:")
            for line in text.splitlines():
                if re.search(r"copyright|author|voice|licen[cs]e|version 2", line, re.I):
                    lines.append(f"  - {line.strip()}")
        lines.append("")
    if provenance and provenance.get("debs"):
        lines += ["## Package files", ""]
        for d in provenance["debs"]:
            lines.append(f"- `{d['file']}` sha256 `{d['sha256']}`")
        lines.append("")
    return "\n".join(lines)


def build_corpus(roots: Sequence, out, cfg: Optional[CorpusConfig] = None,
                 source_id: Optional[str] = None, provenance: Optional[dict] = None,
                 progress: bool = True) -> dict:
    """Build the corpus from prompt trees ``roots`` into ``out``. Idempotent: returns the
    existing ``corpus.json`` content when the completion marker matches the config."""
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
    from tqdm import tqdm

    t0 = time.time()
    sr = cfg.sample_rate
    stats: Counter = Counter()
    dropped: Dict[str, List[str]] = defaultdict(list)
    prompts, dropped = scan_prompt_tree(roots, cfg.split_fractions, dropped)
    n_files = len(prompts) + sum(len(v) for v in dropped.values())
    if not prompts:
        raise CorpusError(f"no prompt audio files found under {[str(r) for r in roots]}")
    log.info("Found %d audio files, %d after dropping non-speech by name.", n_files, len(prompts))
    prompts = assign_splits(prompts, cfg, dropped)
    utts = make_utterances(prompts, cfg, stats, dropped, progress=progress)
    splits = SPLITS + tuple(s for s in UNSEEN_SPLITS if utts[s])
    for reason in ("corrupt", "multichannel"):
        if dropped.get(reason):
            log.warning("Skipped %d %s file(s): %s", len(dropped[reason]), reason,
                        ", ".join(dropped[reason][:10]))

    keep: List[Path] = []
    skip = state.resume
    # Single-speaker utterances
    utt_path: Dict[str, Path] = {}
    manifests = {}
    for split in splits:
        records = []
        for u in tqdm(utts[split], desc=f"utterances {split}", unit="utt",
                      disable=None if progress else True):
            p = out / "utterances" / split / u.speaker / f"{u.utt_id}.wav"
            write_wav(p, u.audio, sr, skip_existing=skip)
            keep.append(p)
            utt_path[u.utt_id] = p
            records.append({"path": str(p), "speaker": u.speaker, "n_samples": u.n_samples,
                            "utt_id": u.utt_id, "sources": u.sources})
        manifests[(split, "utterances")] = records

    # Mixtures
    src_names = [f"s{i + 1}" for i in range(cfg.n_src)]
    csv_rows = []
    split_stats = {}
    for split in splits:
        rng = np.random.default_rng([cfg.seed, 2, ALL_SPLITS.index(split)])
        plans = plan_mixtures(utts[split], cfg.n_mix(split), cfg.n_src, rng, cfg.max_snr_db, split)
        lists = {k: [] for k in ["mix"] + src_names}
        spk_count: Counter = Counter()
        total = 0
        for plan in tqdm(plans, desc=f"mixtures {split}", unit="mix",
                         disable=None if progress else True):
            mix_q, srcs_q = mix_sources([from_int16(u.audio) for u in plan.utts], plan.gains_db,
                                        mode=cfg.mode)
            n = len(mix_q)
            base = out / cfg.wav_dir / split
            for name, sig in zip(["mix"] + src_names, [mix_q] + srcs_q):
                p = base / name / f"{plan.mix_id}.wav"
                write_wav(p, sig, sr, skip_existing=skip)
                keep.append(p)
                lists[name].append([str(p), n])
            total += n
            for u in plan.utts:
                spk_count[u.speaker] += 1
            row = {"split": split, "mix_id": plan.mix_id, "n_samples": n,
                   "snr_db": f"{plan.gains_db[0] - plan.gains_db[1]:.4f}"}
            for name, u, g in zip(src_names, plan.utts, plan.gains_db):
                row[f"{name}_path"] = os.path.relpath(utt_path[u.utt_id], out)
                row[f"{name}_speaker"] = u.speaker
                row[f"{name}_gain_db"] = f"{g:.4f}"
            csv_rows.append(row)
        for name, lst in lists.items():
            manifests[(split, name)] = lst
        u_total = sum(u.n_samples for u in utts[split])
        split_stats[split] = {
            "n_mixtures": len(plans),
            "hours_mixtures": round(total / sr / 3600, 4),
            "n_utterances": len(utts[split]),
            "hours_utterances": round(u_total / sr / 3600, 4),
            "utterances_per_speaker": dict(sorted(Counter(u.speaker for u in utts[split]).items())),
            "mixtures_per_speaker": dict(sorted(spk_count.items())),
            "mean_mixture_seconds": round(total / sr / max(1, len(plans)), 3),
            "minutes_per_speaker": {
                spk: round(sum(u.n_samples for u in utts[split] if u.speaker == spk) / sr / 60, 2)
                for spk in sorted({u.speaker for u in utts[split]})},
        }

    for (split, name), obj in manifests.items():
        p = out / "json" / split / f"{name}.json"
        atomic_write_json(p, obj, indent=None if name != "utterances" else 1)
        keep.append(p)

    # CSV
    fields = ["split", "mix_id", "n_samples", "snr_db"]
    for name in src_names:
        fields += [f"{name}_path", f"{name}_speaker", f"{name}_gain_db"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(csv_rows)
    keep.append(atomic_write_text(out / "mixtures.csv", buf.getvalue()))

    # Licenses
    speakers_used = sorted({u.speaker for s in splits for u in utts[s]})
    cfiles = find_copyright_files(roots)
    for pkg, path in sorted(cfiles.items()):
        keep.append(atomic_write_bytes(out / "licenses" / f"{pkg}.copyright", path.read_bytes()))
    per_split = {s: sorted({u.speaker for u in utts[s]}) for s in splits}
    seen = set(per_split["tr"]) | set(per_split["cv"])
    for s_ in UNSEEN_SPLITS:
        if seen & set(per_split.get(s_, ())):  # cannot happen: assign_splits moves whole speakers
            raise RuntimeError(f"{s_} shares speakers with tr/cv: {sorted(seen & set(per_split[s_]))}")
    keep.append(atomic_write_text(out / "LICENSES.md",
                                  licenses_md(speakers_used, cfiles, provenance, per_split)))

    # Stats
    drop_summary = {
        reason: {"count": len(v), "examples": sorted(v)[:8]}
        for reason, v in sorted(dropped.items())
    }
    drop_why = {
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
        "silent": f"shorter than {cfg.min_prompt} s after trimming silence",
        "short_remainder": "last short pieces of a speaker/split group that could not be joined",
    }
    for reason in drop_summary:
        drop_summary[reason]["why"] = drop_why.get(reason, reason)
    corpus = {
        "name": "asterisk-prompts-{}mix".format(cfg.n_src),
        "version": CORPUS_VERSION,
        "config_hash": content_hash(cfg, source_id),
        "config": asdict(cfg),
        "sample_rate": sr,
        "mode": cfg.mode,
        "n_src": cfg.n_src,
        "splits": split_stats,
        "speakers_per_split": per_split,
        "train_speakers": sorted({u.speaker for s in SPLITS for u in utts[s]}),
        "unseen_speakers": sorted({u.speaker for s in UNSEEN_SPLITS for u in utts[s]}),
        "hours_total_mixtures": round(sum(s["hours_mixtures"] for s in split_stats.values()), 4),
        "speakers": {s: {k: v for k, v in SPEAKERS.get(s, {"name": s}).items()}
                     for s in speakers_used},
        "files_seen": n_files,
        "prompts_used": int(stats["prompts_used"]),
        "prompt_hours_used": round(stats["prompt_seconds_used"] / 3600, 4),
        "prompts_cut": int(stats["prompts_cut"]),
        "utterances_joined": int(stats["utterances_joined"]),
        "resampled_files": int(stats["resampled"]),
        "seconds_trimmed": round(stats["trimmed_seconds"], 2),
        "pause_seconds_removed": round(stats["pause_seconds_removed"], 2),
        "remainder_seconds_dropped": round(stats["remainder_seconds_dropped"], 2),
        "dropped": drop_summary,
        "source": source_id,
        "provenance": provenance or {},
        "licenses": [
            {"title": f"{SPEAKERS[s].get('source', 'Asterisk voice prompts')}: {SPEAKERS[s]['name']}",
             "title_link": "https://packages.debian.org/" + SPEAKERS[s]["packages"][0],
             "author": SPEAKERS[s]["copyright"], "author_link": SPEAKERS[s]["url"],
             "license": SPEAKERS[s]["license"],
             "license_link": SPEAKERS[s]["license_url"], "non_commercial": False}
            for s in speakers_used if s in SPEAKERS
        ],
    }
    keep.append(atomic_write_json(out / "corpus.json", corpus))
    state.prune(keep)
    state.finish({"corpus": corpus["name"], "content_hash": corpus["config_hash"]})
    log.info("Corpus built in %s in %.1f s: %s", out, time.time() - t0,
             ", ".join(f"{s} {v['n_mixtures']} mixtures / {v['hours_mixtures']:.2f} h"
                       for s, v in split_stats.items()))
    return json.loads(json.dumps(corpus))  # as read back from corpus.json


# --------------------------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------------------------
NO_APT_HINT = (
    "Fetch the packages with `make debs` (apt-get download into ~/.cache/twostep-asteroid/debs, "
    "the recipe's --deb_cache), or put the .deb files of {pkgs} into --deb_cache yourself, or pass "
    "an already extracted tree with --src_dir, or build from WSJ0 instead: "
    "python -m twostep_asteroid.data.wsj0mix --out DIR (--wsj0_dir PATH | --wsj0mix_dir PATH). "
    "Without apt-get and dpkg (Debian/Ubuntu: part of the base system; elsewhere install the 'apt' "
    "and 'dpkg' packages) only the last two work."
)


def _cached_deb(cache: Path, pkg: str) -> Optional[Path]:
    found = sorted(cache.glob(f"{pkg}_*.deb"))
    return found[-1] if found else None


def fetch_debs(packages: Sequence[str], cache) -> List[Path]:
    """Return the .deb of each package, downloading the missing ones with ``apt-get download``
    (never installs), one package at a time so that an error names the package that cannot be
    had. Downloads go to a temporary folder and are moved into the cache when complete, so an
    interrupted download never leaves a partial .deb in the cache."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if _cached_deb(cache, p) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise CorpusError(f"package(s) {', '.join(missing)} not in {cache}, and apt-get not found. "
                              + NO_APT_HINT.format(pkgs=", ".join(missing)))
        log.info("Downloading %s into %s", " ".join(missing), cache)
        failed, updated = {}, False
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            for pkg in missing:
                def download():
                    return subprocess.run(["apt-get", "download", pkg], cwd=tmp,
                                          capture_output=True, text=True)

                r = download()
                if r.returncode != 0 and not updated:
                    log.info("apt-get download %s failed (%s); running apt-get update once and "
                             "retrying.", pkg, r.stderr.strip().splitlines()[-1:] or r.returncode)
                    u = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
                    updated = True
                    if u.returncode != 0:
                        log.warning("apt-get update failed: %s", u.stderr.strip()[-500:])
                    r = download()
                if r.returncode != 0:
                    failed[pkg] = (r.stderr or r.stdout).strip()[-600:]
                for f in sorted(Path(tmp).glob("*.deb")):
                    os.replace(f, cache / f.name)
        if failed:
            raise CorpusError(
                f"apt-get download failed for package(s) {', '.join(failed)}:\n"
                + "\n".join(f"{k}: {v}" for k, v in failed.items()) + "\n"
                + NO_APT_HINT.format(pkgs=", ".join(failed)))
    debs = []
    for p in packages:
        d = _cached_deb(cache, p)
        if d is None:
            raise CorpusError(f"package {p} is not in {cache} after download. "
                              + NO_APT_HINT.format(pkgs=p))
        debs.append(d)
    return debs


def extract_debs(debs: Sequence[Path], dest) -> Path:
    """``dpkg -x`` each .deb into ``dest`` (data files only; nothing is installed)."""
    if shutil.which("dpkg") is None:
        raise CorpusError("dpkg not found (needed for `dpkg -x`). "
                          + NO_APT_HINT.format(pkgs=", ".join(d.name for d in debs)))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for d in debs:
        r = subprocess.run(["dpkg", "-x", str(d), str(dest)], capture_output=True, text=True)
        if r.returncode != 0:
            raise CorpusError(f"dpkg -x {d} failed: {r.stderr.strip()[-800:]}\n"
                              f"The file may be damaged: delete it from the cache and rerun.")
    return dest


def build_from_debs(out, cfg: Optional[CorpusConfig] = None, deb_cache=None,
                    packages: Sequence[str] = PACKAGES, progress: bool = True) -> dict:
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
    p = argparse.ArgumentParser(
        prog="python -m twostep_asteroid.data.prompts",
        description="Build a wsj0-2mix-style corpus from voice recordings packaged by Debian.")
    p.add_argument("--out", required=True, help="output folder")
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
    p.add_argument("--train_speakers", default="",
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
    try:
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
    except (CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DiskFullError as e:
        print(f"error: {e} The files already written are kept: the rerun resumes the build "
              "(./run.sh --stage 0 --stop_stage 0).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
