"""The voices of the embedded corpus: who speaks, from which Debian package, under which licence.

Sources, all inside the .debs of :data:`PACKAGES`: the voice folder names,
``/usr/share/asterisk/sounds/<lang>_<REGION>_<f|m>_<Voice>/``, the file names (Fish Fillets NG,
codec2) and ``/usr/share/doc/<package>/copyright``. :data:`SPEAKERS` is the table;
:func:`licenses_md` and :func:`license_records` turn it into the corpus's licence notices.

Nothing here imports torch or the model modules of the package.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

# The Debian packages of the corpus (the Makefile's PROMPT_DEBS is the same list).
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
    "fillets-ng-data-nl",
    "codec2-examples",
    "klettres-data",
    "ktuberling-data",
)

LICENSE_URLS = {
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-SA-3.0-IT": "https://creativecommons.org/licenses/by-sa/3.0/it/",
    "BSD-style (asterisk-prompt-fr-armelle)": "https://packages.debian.org/asterisk-prompt-fr-armelle",
    "GPL-2.0-only": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-2.0-or-later": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "LGPL-2.1-or-later": "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
}
GPL2_NOTE = ("GPL-2: a file containing this voice (a mixture included) is distributed under the"
             " GPL-2 terms, with its copyright notice.")


def speaker_entry(name: str, gender: str, url: str, packages: Sequence[str], copyright: str,
                  license: str, voice_dirs: Sequence[str] = (), source: Optional[str] = None,
                  **extra) -> dict:
    """One row of :data:`SPEAKERS`.

    Args:
        name, gender, url: who speaks (``gender`` ``"f"``, ``"m"`` or ``"?"``).
        packages, voice_dirs: where the recordings are (Debian packages, Asterisk voice folders).
        copyright, license: as the package's copyright file says; ``license`` is a key of
            :data:`LICENSE_URLS`.
        source: the collection, when not the Asterisk voice prompts.
        **extra: ``note`` (a licence condition to show), ``test_only`` (the only split) or
            ``opt_in`` (in the training pool only when ``train_speakers`` names it).

    Returns:
        The row, its keys in the order ``corpus.json`` lists them.
    """
    info = dict(name=name, gender=gender)
    if source is not None:
        info["source"] = source
    info.update(url=url, voice_dirs=list(voice_dirs), packages=list(packages), copyright=copyright,
                license=license, license_url=LICENSE_URLS[license], **extra)
    return info


# The five asterisk-core-sounds-*-wav packages (1.6.1-1) ship the same copyright file, which quotes
# the upstream CREDITS files:
#   "Files: *"   Copyright: 2003-2010, Allison Smith; "Recorded by: Allison Smith
#                (http://www.theivrvoice.com)"; License: CC-BY-SA-3.0. The en (en_US) and es
#                (es_MX) packages are both Allison Smith: ONE speaker.
#   "Files: fr-*" Copyright: 2006-2008, June Wallack; "Recorded by: June Wallack"; CC-BY-SA-3.0.
#   "Files: ru-*" Copyright: 2010, Maxim; "Provided by: Maxim Topal, http://www.ivrvoice.ru";
#                CC-BY-3.0. The voice actor is not named; the folder says female (ru_RU_f_).
#   "Files: it-*" Copyright: 2012 Carlo Flora; "Recorded by: Carlo Flora"; CC-BY-3.0.
# asterisk-prompt-it-menardi-wav (1:1.4.22+mm20110907-3.1): "Copyright: 2006-2011, Marco
# Menardi.e Paola Dal Zot (?the voice?)", License "CC-SA-BY-3.0": Creative Commons
# Attribuzione - Condividi allo stesso modo 3.0 Italia (CC BY-SA 3.0 IT), with the condition
# that the authors and http://www.voip.ammdomus.it are credited visibly to the end user.
SPEAKERS: Dict[str, dict] = {
    "allison": speaker_entry(
        "Allison Smith", "f", "http://www.theivrvoice.com",
        ["asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav"],
        "2003-2010, Allison Smith (recorded by Allison Smith, http://www.theivrvoice.com;"
        " financial contributions by Digium, Inc.)",
        "CC-BY-SA-3.0", voice_dirs=["en_US_f_Allison", "es_MX_f_Allison"]),
    "june": speaker_entry(
        "June Wallack", "f", "http://www.junewallack.com", ["asterisk-core-sounds-fr-wav"],
        "2006-2008, June Wallack (recorded by June Wallack, http://www.junewallack.com;"
        " translated by Clod Patry, Kristopher Lalletti, June Wallack)",
        "CC-BY-SA-3.0", voice_dirs=["fr_CA_f_June"]),
    "carlo": speaker_entry(
        "Carlo Flora", "m", "http://www.carloflora.com", ["asterisk-core-sounds-it-wav"],
        "2012 Carlo Flora, http://www.segreterietelefoniche.it (recorded by Carlo Flora,"
        " http://www.carloflora.com; translated by Silvia Petrin)",
        "CC-BY-3.0", voice_dirs=["it_IT_m_Carlo"]),
    "ivrvoiceru": speaker_entry(
        "ivrvoice.ru female voice (provided by Maxim Topal)", "f", "http://www.ivrvoice.ru",
        ["asterisk-core-sounds-ru-wav"],
        "2010, Maxim (provided by Maxim Topal, http://www.ivrvoice.ru)",
        "CC-BY-3.0", voice_dirs=["ru_RU_f_IvrvoiceRU"]),
    "paola": speaker_entry(
        "Paola Dal Zot (Menardi Italian prompts)", "f", "http://www.voip.ammdomus.it",
        ["asterisk-prompt-it-menardi-wav"],
        "2006-2011, Marco Menardi e Paola Dal Zot (the voice), http://www.voip.ammdomus.it",
        "CC-BY-SA-3.0-IT", voice_dirs=["it_IT_f_Menardi"],
        note="Attribution condition of the authors: wherever the files are distributed, state"
             " visibly to the end user that the sound files were made by Marco Menardi and Paola"
             " Dal Zot, and give the URL http://www.voip.ammdomus.it."),
    # asterisk-prompt-fr-armelle (20070613-2.2): raw GSM 6.10 files in sounds/fr/. Its copyright file:
    # "Voice actor: Armelle Desjardins", "Copyright holder (2006): Michel Gutierrez", licence: a
    # BSD-style permission ("Redistribution and use, with or without modification, are permitted
    # provided that ... 1. Redistributions must retain the above copyright notice, this list of
    # conditions and the following disclaimer. 2. Neither the name of the Indigen Solutions nor the
    # names of its contributors ... may be used to endorse or promote products derived ...").
    "armelle": speaker_entry(
        "Armelle Desjardins", "f", "http://public.aclap.com/", ["asterisk-prompt-fr-armelle"],
        "(C) 2006 Michel Gutierrez (voice actor: Armelle Desjardins)",
        "BSD-style (asterisk-prompt-fr-armelle)", voice_dirs=["fr"],
        source="Asterisk voice prompts (French)",
        note="Keep the copyright notice, the conditions and the disclaimer of"
             " licenses/asterisk-prompt-fr-armelle.copyright with the files; the names of the"
             " copyright holder and contributors may not be used to endorse derived products."),
    # asterisk-prompt-es-co (0.20070403-2.1): raw GSM 6.10 files in sounds/es/, Colombian Spanish.
    # copyright: "Upstream Author: Avatar Ltda. / July E. Jimenez", GNU GPL version 2; LEEME:
    # "Sonidos grabados por Avatar Ltda. con la voz de July E. Jimenez", "Copyright (C) 2006, Avatar
    # Ltda. http://www.avatar.com.co/".
    "july": speaker_entry(
        "July E. Jiménez", "f", "http://www.avatar.com.co/", ["asterisk-prompt-es-co"],
        "(C) 2006, Avatar Ltda. (recorded by Avatar Ltda. with the voice of July E. Jiménez)",
        "GPL-2.0-only", voice_dirs=["es"], source="Asterisk voice prompts (Colombian Spanish)",
        note=GPL2_NOTE),
}
# Fish Fillets NG, spoken dialogue (1.0.1-1.1): Ogg Vorbis at 22.05 kHz in
# games/fillets-ng/sound/<level>/<lang>/, the Czech voices in fillets-ng-data-cs, the Dutch ones in
# fillets-ng-data-nl. In each language the two fish are voiced by two actors, and the file names say
# who speaks: ``[<level>-]m-<word>.ogg`` for the small fish and ``[<level>-]v-<word>.ogg`` for the
# big fish (median F0 about 290 and 130 Hz in Czech, 200 and 140 Hz in Dutch); the other characters'
# lines, the sound effects (``-x-``) and the other languages are dropped. copyright (the same in both
# packages): "Upstream Authors: Ivo Danihelka, Pavel Danihelka, ALTAR interactive, ..."; GNU GPL
# version 2. The actors are not named in the packages.
FILLETS_COPYRIGHT = ("ALTAR interactive, Ivo Danihelka, Pavel Danihelka and the Fish Fillets NG"
                     " authors (fillets.sourceforge.net); the {} actors are not named")
FILLETS_SPEAKER = {}  # (language folder, role letter) -> speaker id
for _lang, _language, _prefix, _genders in (("cs", "Czech", "fillets", ("f", "m")),
                                             ("nl", "Dutch", "fillets-nl", ("?", "m"))):
    for _role, _fish, _gender in (("m", "small fish", _genders[0]), ("v", "big fish", _genders[1])):
        _spk = f"{_prefix}-{_role}"
        SPEAKERS[_spk] = speaker_entry(
            f"Fish Fillets NG {_language} actor ({_fish})", _gender, "http://fillets.sourceforge.net",
            [f"fillets-ng-data-{_lang}"], FILLETS_COPYRIGHT.format(_language), "GPL-2.0-only",
            source=f"Fish Fillets NG {_language} voices", note=GPL2_NOTE)
        FILLETS_SPEAKER[(_lang, _role)] = _spk
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
    SPEAKERS[f"codec2-{_talker}"] = speaker_entry(
        f"codec2 sample talker '{_talker}' (from the file name)", "?",
        "https://github.com/drowe67/codec2", ["codec2-examples"], "2007-2019 David Rowe",
        "LGPL-2.1-or-later", source="codec2 speech samples", test_only="tt_codec2")

# KDE Education's spoken words (22.12.3): KLettres (klettres-data, letters and syllables read by a
# native speaker, /usr/share/klettres/<lang>/{alpha,syllab}/*.ogg) and KTuberling (ktuberling-data,
# the names of the stamps, /usr/share/ktuberling/sounds/<lang>/*.{ogg,wav,opus}). The packages name
# no speaker: each language folder of each package is taken as one voice, so the same person may be
# two voices (one per package). Their copyright files: KLettres "Files: *" Copyright 2001-2011
# Anne-Marie Mahfouf, Eric Bischoff, Mark Kretschmann, Michael Goettsche, Pino Toscano, GPL-2+;
# KTuberling "Files: *" Copyright 2007-2017 Albert Astals Cid, 2000 KDE Team, 2000-2002 Meni Livne,
# 2010 Rosetta Contributors and Canonical Ltd, 1999-2006 Eric Bischoff, GPL-2+. Many files are
# stereo copies of one voice and are averaged to mono; a file whose bytes repeat an earlier one
# (KTuberling's sr@latin, sr@ijekavian and sr@ijekavianlatin folders copy sr, and a few stamps share
# a recording) is dropped as ``duplicate``. They are opt-in (``opt_in``): the default pool leaves them
# out, because with them the unseen-speaker tests scored lower (README, "Unseen speakers");
# ``data.train_speakers`` that names them brings them in (local/compare_unseen.sh, arm pool52).
KDE_VOICES = {  # package -> (collection, language folders of the packaged version)
    "klettres-data": ("KLettres", ("ar", "cs", "da", "de", "en", "en_GB", "es", "fr", "he", "hu",
                                    "it", "lt", "ml", "nb", "nds", "nl", "pt_BR", "ru", "tn", "uk")),
    "ktuberling-data": ("KTuberling", ("ca", "da", "de", "el", "en", "es", "fi", "fr", "ga", "gl",
                                        "it", "lt", "nds", "nl", "nn", "pt", "ro", "ru", "sl", "sr",
                                        "sv", "uk", "wa")),
}
KDE_COPYRIGHT = {
    "klettres-data": "2001-2011 Anne-Marie Mahfouf, 2001 Eric Bischoff, 2005 Mark Kretschmann, 2005"
                     " Michael Goettsche, 2007 Pino Toscano (KLettres); the speakers are not named",
    "ktuberling-data": "2007-2017 Albert Astals Cid, 2000 KDE Team, 2000-2002 Meni Livne, 2010 Rosetta"
                       " Contributors and Canonical Ltd, 1999-2006 Eric Bischoff (KTuberling); the"
                       " speakers are not named",
}


def kde_speaker(package: str, lang: str) -> str:
    """The speaker id of a KDE language folder: ``klettres-<lang>`` or ``ktuberling-<lang>``."""
    return "{}-{}".format(KDE_VOICES[package][0].lower(), re.sub(r"[^a-z0-9]+", "-", lang.lower()))


for _pkg, (_app, _langs) in KDE_VOICES.items():
    for _lang in _langs:
        SPEAKERS[kde_speaker(_pkg, _lang)] = speaker_entry(
            f"{_app} voice, language folder '{_lang}' (not named)", "?", "https://edu.kde.org",
            [_pkg], KDE_COPYRIGHT[_pkg], "GPL-2.0-or-later", source=f"{_app} spoken words (KDE Education)",
            note="GPL-2+: a file containing this voice (a mixture included) is distributed under the"
                 " GPL-2 (or later) terms, with its copyright notice.", opt_in=True)
VOICE_DIRS = {d: spk for spk, info in SPEAKERS.items() for d in info["voice_dirs"]}
DEFAULT_UNSEEN = ("armelle", "july")  # held out for tt_unseen: the two GSM voices


# --------------------------------------------------------------------------------------------
# Licence notices
# --------------------------------------------------------------------------------------------
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
    """The Debian copyright files under ``roots``: ``usr/share/doc/<package>/copyright``, by
    package (the first one found when a package is in several roots)."""
    found = {}
    for root in roots:
        for p in sorted(Path(root).rglob("copyright")):
            if p.parent.parent.name == "doc" and p.is_file():
                found.setdefault(p.parent.name, p)
    return found


LICENSES_INTRO = [  # the head of LICENSES.md
    "# Licenses of the embedded speech corpus",
    "",
    "This corpus is an adaptation of voice recordings (Asterisk voice prompts, the Czech and",
    "Dutch voices of Fish Fillets NG, the spoken words of KDE's KLettres and KTuberling,",
    "codec2's speech samples) from the Debian packages listed below.",
    "Changes made: leading/trailing silence trimmed, internal pauses longer than the",
    "configured maximum shortened, long prompts cut into pieces, short prompts of one",
    "speaker concatenated with short silences, sample rate converted where needed, and",
    "utterances of different speakers mixed at random relative levels and rescaled.",
    "The original recordings are not endorsed by their authors for this use.",
    "",
    "Every file keeps the license of the recordings it contains. A mixture that contains a",
    "CC BY-SA source is an adaptation that must be shared under the same license (ShareAlike);",
    "one that contains a GPL-2 source (July E. Jiménez, the Fish Fillets actors, the KDE",
    "voices) is distributed under the GPL-2 terms.",
    "",
    "## Voices",
    "",
]


def licenses_md(speakers_used: Sequence[str], copyright_files: Dict[str, Path],
                provenance: Optional[dict], speakers_per_split: Optional[dict] = None) -> str:
    """The corpus's ``LICENSES.md``: what was changed, each voice's copyright and licence, the
    speakers of each split and the licence paragraphs of the packages' copyright files.

    Args:
        speakers_used: speaker ids in the corpus.
        copyright_files: package -> copyright file (:func:`find_copyright_files`).
        provenance: ``{"debs": [{"file", "sha256"}, ...]}`` when built from the .debs.
        speakers_per_split: split -> speaker ids, listed if given.

    Returns:
        The Markdown text.
    """
    lines = list(LICENSES_INTRO)
    for spk in speakers_used:
        lines += _voice_lines(spk)
    if speakers_per_split:
        lines += ["## Speakers per split", "",
                  "tr/cv/tt: the training pool (tt: seen-speaker test); tt_unseen, tt_codec2: speakers",
                  "that are in no training or validation mixture (unseen-speaker tests).", ""]
        lines += [f"- `{split}`: {', '.join(spks)}" for split, spks in speakers_per_split.items()]
        lines.append("")
    lines += ["## Source copyright files", "",
              "Copied to `licenses/<package>.copyright`. Their license paragraphs:", ""]
    for pkg, path in sorted(copyright_files.items()):
        lines += _copyright_lines(pkg, path)
    if provenance and provenance.get("debs"):
        lines += ["## Package files", ""]
        for d in provenance["debs"]:
            lines.append(f"- `{d['file']}` sha256 `{d['sha256']}`")
        lines.append("")
    return "\n".join(lines)


def _voice_lines(spk: str) -> List[str]:
    """The section of ``LICENSES.md`` on one speaker."""
    info = SPEAKERS.get(spk)
    if info is None:
        return [f"### {spk}", "", "Unknown voice: check the license of its source files.", ""]
    lines = [f"### {info['name']} (speaker id `{spk}`)", ""]
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
    return lines + [""]


def _copyright_lines(pkg: str, path: Path) -> List[str]:
    """The section of ``LICENSES.md`` on one package's copyright file: its DEP-5 paragraphs or,
    for a free-form file, its authorship and licence lines."""
    lines = [f"### {pkg}", ""]
    text = path.read_text(errors="replace")
    paras = _parse_dep5(text)
    for para in paras:
        lines.append("- " + "; ".join(f"{k}: {v}" for k, v in para.items()))
    if not paras:
        lines.append(f"- Free-form copyright file (read `licenses/{pkg}.copyright`); its key lines:")
        for line in text.splitlines():
            if re.search(r"copyright|author|voice|licen[cs]e|version 2", line, re.I):
                lines.append(f"  - {line.strip()}")
    return lines + [""]


def license_records(speakers_used: Sequence[str]) -> List[dict]:
    """The ``licenses`` of ``corpus.json``, one per known speaker, in the fields of Asteroid's
    dataset infos (``title``, ``author``, ``license`` and their links, ``non_commercial``)."""
    return [
        {"title": f"{SPEAKERS[s].get('source', 'Asterisk voice prompts')}: {SPEAKERS[s]['name']}",
         "title_link": "https://packages.debian.org/" + SPEAKERS[s]["packages"][0],
         "author": SPEAKERS[s]["copyright"], "author_link": SPEAKERS[s]["url"],
         "license": SPEAKERS[s]["license"],
         "license_link": SPEAKERS[s]["license_url"], "non_commercial": False}
        for s in speakers_used if s in SPEAKERS
    ]
