"""The corpus builder's added voices and unseen-speaker tests, on a fake tree of each package's
format (raw GSM 6.10 Asterisk voices, Fish Fillets Ogg at 22.05 kHz, KLettres/KTuberling Ogg, wav and
Opus, codec2 raw 16-bit), beside the fake wav voices of test_data_prompts. No .debs needed."""
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twostep_asteroid.data import debian, prompts
from twostep_asteroid.data.audio_io import read_audio
from twostep_asteroid.data.prompts import CorpusConfig, CorpusError, build_corpus, locate_prompt

from .test_data_prompts import _names_per_split, fake_speech, make_fake_tree

SR = 8000
SMALL = dict(n_tr=12, n_cv=4, n_tt=4, n_unseen=5, n_codec2=3, seed=3)
FREE_FORM = {
    "asterisk-prompt-fr-armelle": "Upstream:\n Voice actor: Armelle Desjardins\n"
                                  " Copyright holder (2006): Michel Gutierrez\n",
    "asterisk-prompt-es-co": "Upstream Author: Avatar Ltda. / July E. Jimenez\n"
                             "GNU General Public License; version 2 dated June, 1991.\n",
}


def _write_gsm(path, x):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, SR, format="RAW", subtype="GSM610")


def make_voices_tree(root: Path, seed=1):
    """The fake wav voices (allison, june, carlo) plus one fake package of each new format."""
    make_fake_tree(root, seed=seed)
    rng = np.random.default_rng(seed + 10)
    names = _names_per_split(3)
    sounds = root / "gsm" / "usr/share/asterisk/sounds"
    for voice, f0 in (("fr", 230.0), ("es", 190.0)):
        for j, name in enumerate(names):
            _write_gsm(sounds / voice / f"{name}.gsm", fake_speech(rng, [1.2, 3.1, 4.0][j % 3], f0=f0))
        _write_gsm(sounds / voice / "beep.gsm", 0.3 * np.sin(np.arange(SR // 4) * 0.8))  # dropped
    (sounds / "digits").mkdir()
    os.symlink("../fr", sounds / "digits" / "fr")  # as in the package: not scanned twice
    for pkg, text in FREE_FORM.items():
        doc = root / "gsm" / "usr/share/doc" / pkg
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(text)
    fillets = root / "fillets" / "usr/share/games/fillets-ng/sound"
    for j, name in enumerate(names):
        level = ["barrel", "cave", "ufo"][j % 3]
        for lang, who, f0 in (("cs", "m", 290.0), ("cs", "v", 130.0), ("nl", "m", 200.0), ("nl", "v", 140.0),
                              ("en", "v", 120.0)):  # en: a language without a speaker table, dropped
            stem = f"{level[:3]}-{who}-{name.replace('-', '')}" if j % 2 else f"{who}-{name.replace('-', '')}"
            p = fillets / level / lang / f"{stem}.ogg"
            p.parent.mkdir(parents=True, exist_ok=True)
            dur = [1.2, 3.2, 1.4][j % 3]  # short lines are joined (random gaps)
            x = fake_speech(rng, dur, sr=22050, f0=f0)
            if lang == "nl":  # stereo, as in fillets-ng-data-nl: averaged to mono
                x = np.stack([x, 0.8 * x], axis=1)
            sf.write(p, x, 22050, format="OGG", subtype="VORBIS")
    for stem in ("bar-x-kchkch", "bar-hs-ahoj"):  # a sound effect, another character: dropped
        sf.write(fillets / "barrel" / "cs" / f"{stem}.ogg", fake_speech(rng, 2.0, sr=22050), 22050,
                 format="OGG", subtype="VORBIS")
    kde = root / "kde" / "usr/share"
    for j, name in enumerate(names):  # KLettres: stereo letters (averaged to mono), mono syllables
        x = fake_speech(rng, [0.9, 1.1, 0.8][j % 3], sr=44100, f0=170.0)
        for rel, y in ((f"klettres/en/alpha/{name}.ogg", np.stack([x, 0.9 * x], axis=1)),
                       (f"klettres/de/syllab/{name}.ogg", x)):
            (kde / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(kde / rel, y, 44100, format="OGG", subtype="VORBIS")
        # KTuberling: wav and Opus words; sr@latin copies sr and tux-<name> copies <name> (dropped)
        w, v = (fake_speech(rng, 1.0, f0=f0) for f0 in (110.0, 240.0))
        for rel, y in ((f"fr/{name}.wav", w), (f"fr/tux-{name}.wav", w), (f"sr/{name}.wav", v),
                       (f"sr@latin/{name}.wav", v)):
            (kde / "ktuberling/sounds" / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(kde / "ktuberling/sounds" / rel, y, SR, subtype="PCM_16")
        (kde / "ktuberling/sounds/nn").mkdir(parents=True, exist_ok=True)
        sf.write(kde / "ktuberling/sounds/nn" / f"{name}.opus", fake_speech(rng, 1.0, sr=48000, f0=200.0),
                 48000, format="OGG", subtype="OPUS")
    (kde / "ktuberling/sounds/fr.soundtheme").write_text("<theme/>")  # not audio
    codec2 = root / "codec2" / "usr/share/codec2"
    (codec2 / "raw").mkdir(parents=True)
    (codec2 / "wav").mkdir()
    for rel, f0, dur in (("raw/hts1.raw", 120.0, 9.0), ("raw/hts2.raw", 210.0, 9.0),
                         ("raw/kristoff.raw", 100.0, 6.0), ("raw/sine1k_2Hz_spread.raw", None, 3.0)):
        x = fake_speech(rng, dur, f0=f0) if f0 else 0.3 * np.sin(np.arange(int(dur * SR)) * 0.785)
        np.round(x * 32767).astype("<i2").tofile(codec2 / rel)
    sf.write(codec2 / "wav/david4.wav", fake_speech(rng, 8.0, f0=105.0), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def vtree(tmp_path_factory):
    return make_voices_tree(tmp_path_factory.mktemp("voices_src"))


@pytest.fixture(scope="module")
def vbuilt(vtree, tmp_path_factory):
    out = tmp_path_factory.mktemp("voices") / "out"
    return out, build_corpus([vtree], out, CorpusConfig(**SMALL), progress=False)


def _speakers(out, split):
    return {u["speaker"] for u in json.loads((out / "json" / split / "utterances.json").read_text())}


def _files(root: Path, under=""):
    base = root / under if under else root
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ formats
def test_read_audio_headerless_formats(tmp_path):
    x = fake_speech(np.random.default_rng(0), 1.0, lead=0, tail=0)
    _write_gsm(tmp_path / "a.gsm", x)
    y, sr = read_audio(tmp_path / "a.gsm")
    assert sr == SR and len(y) == len(x) and np.corrcoef(x, y)[0, 1] > 0.9  # GSM is lossy
    q = np.round(x * 32767).astype("<i2")
    q.tofile(tmp_path / "b.raw")
    z, sr = read_audio(tmp_path / "b.raw")
    assert sr == SR and np.array_equal(np.round(z * 32768).astype(np.int16), q)


@pytest.mark.parametrize("parts,expect", [
    (("usr/share/asterisk/sounds/fr/vm-options.gsm",), ("fr", "armelle", "vm-options.gsm")),
    (("usr/share/asterisk/sounds/es/digits/1.gsm",), ("es", "july", "digits/1.gsm")),
    (("usr/share/games/fillets-ng/sound/barrel/cs/bar-m-barel.ogg",),
     ("fillets-ng-cs", "fillets-m", "barrel/cs/bar-m-barel.ogg")),
    (("usr/share/games/fillets-ng/sound/hanoi/cs/v-zkus.ogg",),
     ("fillets-ng-cs", "fillets-v", "hanoi/cs/v-zkus.ogg")),
    (("usr/share/games/fillets-ng/sound/city/nl/vit-m-hlava.ogg",),
     ("fillets-ng-nl", "fillets-nl-m", "city/nl/vit-m-hlava.ogg")),
    (("usr/share/games/fillets-ng/sound/city/nl/vit-v-proc.ogg",),
     ("fillets-ng-nl", "fillets-nl-v", "city/nl/vit-v-proc.ogg")),
    (("usr/share/games/fillets-ng/sound/city/en/vit-v-proc.ogg",),  # no actors known for en
     (None, "other-language", "city/en/vit-v-proc.ogg")),
    (("usr/share/games/fillets-ng/sound/barrel/cs/bar-x-gr1.ogg",),
     (None, "other-character", "barrel/cs/bar-x-gr1.ogg")),
    (("usr/share/games/fillets-ng/sound/barrel/cs/m-hs-ahoj.ogg",),  # speaker hs, not m
     (None, "other-character", "barrel/cs/m-hs-ahoj.ogg")),
    (("usr/share/klettres/en_GB/alpha/a.ogg",), ("klettres-en-gb", "klettres-en-gb", "alpha/a.ogg")),
    (("usr/share/klettres/pics/a.png",), None),
    (("usr/share/ktuberling/sounds/sr@latin/brkovi.ogg",),
     ("ktuberling-sr-latin", "ktuberling-sr-latin", "brkovi.ogg")),
    (("usr/share/ktuberling/sounds/nn/ball.opus",), ("ktuberling-nn", "ktuberling-nn", "ball.opus")),
    (("usr/share/codec2/raw/hts1.raw",), ("codec2", "codec2-hts1", "raw/hts1.raw")),
    (("usr/share/codec2/raw/hts1a.raw",), (None, "codec2-unlisted", "raw/hts1a.raw")),
    (("usr/share/codec2/octave/foo.m",), None),
    (("usr/share/doc/x/copyright",), None),
])
def test_locate_prompt(parts, expect):
    assert locate_prompt(tuple(parts[0].split("/")), "root") == expect


# ------------------------------------------------------------------------------------ build
def test_new_voices_in_corpus(vbuilt):
    out, info = vbuilt
    spk = set(info["speakers"])
    assert {"armelle", "july", "fillets-m", "fillets-v", "fillets-nl-m", "fillets-nl-v", "codec2-hts1",
            "codec2-hts2"} <= spk
    assert info["dropped"]["other-character"]["count"] == 2
    assert info["dropped"]["other-language"]["count"] == len(_names_per_split(3))  # the en lines
    # the stereo Dutch lines are averaged to mono; any other stereo file is still dropped
    assert info["dropped"]["multichannel"]["examples"] == ["it_IT_m_Carlo/stereo-prompt.wav"]
    assert info["downmixed_voices"] == ["fillets-ng-nl", "klettres-*", "ktuberling-*"]
    names = _names_per_split(3)
    # the KDE voices are opt-in: left out of the default pool, their files counted
    assert not {s for s in spk if s.startswith(("klettres-", "ktuberling-"))}
    assert info["dropped"]["not_in_train_pool"]["count"] == 5 * len(names)
    # every copy is dropped (the first file in path order is kept): tux-<name> and sr@latin
    copies = [f"ktuberling-fr/tux-{n}.wav" for n in names] + [f"ktuberling-sr-latin/{n}.wav" for n in names]
    assert info["dropped"]["duplicate"]["count"] == len(copies)
    assert info["dropped"]["duplicate"]["examples"] == sorted(copies)[:8]
    assert info["dropped"]["codec2-unlisted"]["count"] == 1
    assert info["dropped"]["beep"]["count"] == 3 + 2  # the wav voices' and the GSM voices' beeps
    assert info["resampled_files"] >= 6 + 1  # the fillets Ogg files (22.05 kHz) and a 16 kHz wav
    gsm_used = [u for s in ("tt_unseen",) for u in
                json.loads((out / "json" / s / "utterances.json").read_text()) if u["speaker"] == "armelle"]
    assert {src.split("/", 1)[0] for u in gsm_used for src in u["sources"]} == {"fr"}
    n_armelle = sum(len(u["sources"]) for u in gsm_used)
    assert n_armelle <= len(names)  # the symlinked digits/fr folder is not read a second time
    for split in ("tr", "cv", "tt", "tt_unseen", "tt_codec2"):
        for u in json.loads((out / "json" / split / "utterances.json").read_text()):
            i = sf.info(u["path"])
            assert (i.samplerate, i.channels, i.frames) == (SR, 1, u["n_samples"])


def test_unseen_speakers_are_in_no_training_mixture(vbuilt):
    out, info = vbuilt
    train = _speakers(out, "tr") | _speakers(out, "cv")
    assert {"fillets-m", "fillets-v", "fillets-nl-m", "fillets-nl-v", "allison"} <= _speakers(out, "tr")
    assert _speakers(out, "tt_unseen") == {"armelle", "july"}
    assert _speakers(out, "tt_codec2") and all(s.startswith("codec2-") for s in _speakers(out, "tt_codec2"))
    assert not train & (_speakers(out, "tt_unseen") | _speakers(out, "tt_codec2"))
    rows = list(csv.DictReader(open(out / "mixtures.csv")))
    by_split = {}
    for r in rows:
        by_split.setdefault(r["split"], set()).update({r["s1_speaker"], r["s2_speaker"]})
        assert r["s1_speaker"] != r["s2_speaker"]
    assert by_split["tt_unseen"] == {"armelle", "july"}
    assert not (by_split["tr"] | by_split["cv"]) & (by_split["tt_unseen"] | by_split["tt_codec2"])
    for split, n in (("tt_unseen", SMALL["n_unseen"]), ("tt_codec2", SMALL["n_codec2"])):
        lists = [json.loads((out / "json" / split / f"{k}.json").read_text()) for k in ("mix", "s1", "s2")]
        assert len(lists[0]) == n == info["splits"][split]["n_mixtures"]
        for (m, _), (a, _), (b, _) in zip(*lists):
            x, y, z = (sf.read(p, dtype="int16")[0].astype(np.int32) for p in (m, a, b))
            assert np.array_equal(x, y + z)
    assert info["speakers_per_split"]["tt_unseen"] == ["armelle", "july"]
    lic = (out / "LICENSES.md").read_text()
    for text in ("Armelle Desjardins", "July E. Jiménez", "GPL-2.0-only", "LGPL-2.1", "Speakers per split",
                 "Fish Fillets NG Dutch actor (big fish)", "the Dutch actors are not named",
                 "`tt_unseen`: armelle, july", "Voice actor: Armelle Desjardins", "version 2 dated June"):
        assert text in lic, text


def test_train_pool_switch_keeps_unseen_tests_identical(vtree, vbuilt, tmp_path):
    out, info = vbuilt
    few = tmp_path / "few"
    c = build_corpus([vtree], few, CorpusConfig(**SMALL, train_speakers=("allison", "june", "carlo")),
                     progress=False)
    assert _speakers(few, "tr") == {"allison", "june", "carlo"}
    assert c["dropped"]["not_in_train_pool"]["count"] > 0
    assert c["config_hash"] != info["config_hash"]
    for under in ("wav8k/min/tt_unseen", "wav8k/min/tt_codec2", "utterances/tt_unseen"):
        a, b = _files(out, under), _files(few, under)
        assert a and a == b, under  # the same unseen tests whatever the training pool
    with pytest.raises(CorpusError, match="nobody"):
        build_corpus([vtree], tmp_path / "bad", CorpusConfig(**SMALL, train_speakers=("allison", "nobody")),
                     progress=False)
    with pytest.raises(CorpusError, match="test-only"):
        build_corpus([vtree], tmp_path / "bad", CorpusConfig(**SMALL, train_speakers=("allison", "codec2-hts1")),
                     progress=False)
    with pytest.raises(ValueError, match="both"):
        CorpusConfig(train_speakers=("armelle", "june"))


KDE = ("klettres-en", "klettres-de", "ktuberling-fr", "ktuberling-sr", "ktuberling-nn")


def test_kde_voices_join_the_pool_when_named(vtree, vbuilt, tmp_path):
    out, info = vbuilt
    pool = tuple(info["speakers_per_split"]["tr"]) + KDE
    c = build_corpus([vtree], tmp_path / "kde", CorpusConfig(**SMALL, train_speakers=pool), progress=False)
    assert set(KDE) <= _speakers(tmp_path / "kde", "tr") and "not_in_train_pool" not in c["dropped"]
    assert not {s for s in c["speakers"] if s.startswith("ktuberling-sr-")}  # sr@latin: copies only
    for split in ("tr", "cv", "tt"):  # the stereo KLettres letters come out mono, at 8 kHz
        for u in json.loads((tmp_path / "kde" / "json" / split / "utterances.json").read_text()):
            i = sf.info(u["path"])
            assert (i.samplerate, i.channels, i.frames) == (SR, 1, u["n_samples"])
    lic = (tmp_path / "kde" / "LICENSES.md").read_text()
    for text in ("KTuberling voice, language folder 'nn'", "GPL-2.0-or-later", "Anne-Marie Mahfouf"):
        assert text in lic, text
    for under in ("wav8k/min/tt_unseen", "wav8k/min/tt_codec2"):
        assert _files(out, under) == _files(tmp_path / "kde", under), under


def test_voices_build_deterministic_and_marker_tracks_new_options(vtree, vbuilt, tmp_path, monkeypatch):
    out, info = vbuilt
    other = tmp_path / "again"
    build_corpus([vtree], other, CorpusConfig(**SMALL), progress=False)
    a, b = _files(out), _files(other)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith(".json"):  # manifests hold absolute paths
            assert a[k].replace(str(out).encode(), b"@") == b[k].replace(str(other).encode(), b"@"), k
        elif k != ".done":
            assert a[k] == b[k], k
    # the .done marker holds the new options: changing one rebuilds, the same ones do nothing
    c = build_corpus([vtree], other, CorpusConfig(**{**SMALL, "n_codec2": 2}), progress=False)
    assert c["splits"]["tt_codec2"]["n_mixtures"] == 2
    c = build_corpus([vtree], other, CorpusConfig(**{**SMALL, "n_codec2": 2,
                                                    "unseen_speakers": ("july", "fillets-m")}), progress=False)
    assert c["speakers_per_split"]["tt_unseen"] == ["fillets-m", "july"]
    assert "armelle" in c["speakers_per_split"]["tr"] and "fillets-m" not in c["speakers_per_split"]["tr"]
    # One held-out voice cannot make mixtures: tt_unseen is left out and recorded, the rest is built.
    one = build_corpus([vtree], other, CorpusConfig(**{**SMALL, "unseen_speakers": ("july",)}), progress=False)
    assert "tt_unseen" not in one["splits"] and "1 held-out speaker(s) (july)" in one["skipped_splits"]["tt_unseen"]

    def boom(*a, **k):
        raise AssertionError("nothing should be written")

    monkeypatch.setattr(prompts, "write_wav", boom)
    assert build_corpus([vtree], out, CorpusConfig(**SMALL), progress=False) == info


# ------------------------------------------------------------------------------------ debs
def test_missing_package_is_named_with_the_fix(tmp_path, monkeypatch):
    class R:
        def __init__(self, rc, err=""):
            self.returncode, self.stdout, self.stderr = rc, "", err

    calls = []

    def fake_run(cmd, cwd=None, **k):
        calls.append(cmd)
        if cmd[:2] == ["apt-get", "download"]:
            if cmd[2] == "fillets-ng-data-cs":
                return R(100, "E: Unable to locate package fillets-ng-data-cs")
            (Path(cwd) / f"{cmd[2]}_1.0_all.deb").write_bytes(b"!<arch>\n")
        return R(0)

    monkeypatch.setattr(prompts.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(debian.subprocess, "run", fake_run)
    with pytest.raises(CorpusError) as e:
        prompts.fetch_debs(prompts.PACKAGES, tmp_path)
    msg = str(e.value)
    assert "failed for package(s) fillets-ng-data-cs:" in msg and "make debs" in msg
    assert "codec2-examples" not in msg.split("\n")[0]
    assert sorted(p.name.split("_")[0] for p in tmp_path.glob("*.deb")) == sorted(
        p for p in prompts.PACKAGES if p != "fillets-ng-data-cs")  # the others are cached
    assert ["apt-get", "update"] in calls


def test_makefile_fetches_every_package():
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("PROMPT_DEBS"))
    assert line.split(":=", 1)[1].split() == list(prompts.PACKAGES)


def test_compare_unseen_pool52_names_every_voice_of_the_corpus():
    """local/compare_unseen.sh's pool52 arm lists the default pool and every opt-in voice, no other."""
    script = (Path(__file__).resolve().parents[1] / "egs/wsj0-2mix/twostep/local/compare_unseen.sh").read_text()
    kde = "".join(l.split("=", 1)[1].strip('"') for l in script.splitlines() if l.startswith("kde_voices"))
    line = next(l for l in script.splitlines() if l.startswith("all_voices="))
    listed = line.split("=", 1)[1].strip('"[]').replace("$kde_voices", kde).split(",")
    trainable = {s for s, info in prompts.SPEAKERS.items()
                 if not info.get("test_only") and s not in prompts.DEFAULT_UNSEEN}
    assert len(listed) == len(set(listed)) == 52 and set(listed) == trainable
    assert {s for s in listed if prompts.SPEAKERS[s].get("opt_in")} == {
        s for s in listed if s.startswith(("klettres-", "ktuberling-"))}
