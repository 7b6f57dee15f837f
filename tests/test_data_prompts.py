"""Tests of the Asterisk prompt corpus builder, on a small fake prompt tree (no .debs needed)."""
import csv
import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twostep_asteroid.data import debian, prompts
from twostep_asteroid.data.audio_io import read_audio, to_int16
from twostep_asteroid.data.buildstate import BuildState
from twostep_asteroid.fileio import atomic_write_text
from twostep_asteroid.data.mixing import mix_sources, shorten_pauses, trim_silence
from twostep_asteroid.data.prompts import (
    CorpusConfig,
    CorpusError,
    assign_split,
    build_corpus,
    cut_long,
    drop_reason,
    split_key,
)

SR = 8000
VOICES = {"en_US_f_Allison": 140.0, "fr_CA_f_June": 210.0, "it_IT_m_Carlo": 110.0}


def fake_speech(rng, dur, sr=SR, f0=150.0, lead=0.25, tail=0.3, pause_at=None):
    """Harmonic 'syllables' with a wobbling pitch, silent lead/tail (and optional long pause)."""
    n = int(dur * sr)
    t = np.arange(n) / sr
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    ph = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * ph + rng.uniform(0, 6)) / k for k in range(1, 6))
    env = np.abs(np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t)) ** 0.5
    x = 0.25 * x * env + 0.002 * rng.standard_normal(n)
    if pause_at is not None:
        a = int(pause_at * sr)
        x = np.concatenate([x[:a], np.zeros(int(1.5 * sr)), x[a:]])
    x = np.concatenate([np.zeros(int(lead * sr)), x, np.zeros(int(tail * sr))])
    return x.astype(np.float32)


def _names_per_split(k_per_split=6, fractions=(0.8, 0.1, 0.1)):
    """Prompt names such that every split gets ``k_per_split`` of them."""
    got = {"tr": [], "cv": [], "tt": []}
    i = 0
    while min(len(v) for v in got.values()) < k_per_split:
        name = f"prompt-{i:03d}"
        s = assign_split(split_key(name + ".wav"), fractions)
        if len(got[s]) < k_per_split:
            got[s].append(name)
        i += 1
    return sorted(n for v in got.values() for n in v)


def make_fake_tree(root: Path, seed=0, k_per_split=6):
    rng = np.random.default_rng(seed)
    names = _names_per_split(k_per_split)
    for vi, (voice, f0) in enumerate(VOICES.items()):
        pkg = root / f"pkg{vi}" / "usr/share/asterisk/sounds" / voice
        for j, name in enumerate(names):
            dur = [0.6, 1.1, 1.8, 3.2, 6.5, 9.0][j % 6]
            sub = "digits/" if j % 5 == 0 else ""
            x = fake_speech(rng, dur, f0=f0 * rng.uniform(0.95, 1.05),
                            pause_at=dur / 2 if dur > 5 else None)
            p = pkg / f"{sub}{name}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, x, SR, subtype="PCM_16")
        # non-speech files, dropped by name
        (pkg / "silence").mkdir(exist_ok=True)
        sf.write(pkg / "silence" / "1.wav", np.zeros(SR, np.float32), SR, subtype="PCM_16")
        t = np.arange(SR // 2) / SR
        sf.write(pkg / "beep.wav", 0.3 * np.sin(2 * np.pi * 1000 * t), SR, subtype="PCM_16")
        sf.write(pkg / "ascending-2tone.wav", 0.3 * np.sin(2 * np.pi * 700 * t), SR,
                 subtype="PCM_16")
        sf.write(pkg / "tt-monkeys.wav", 0.1 * rng.standard_normal(SR), SR, subtype="PCM_16")
    carlo = root / "pkg2" / "usr/share/asterisk/sounds" / "it_IT_m_Carlo"
    # a 16 kHz prompt (resampled), a stereo one and a corrupt one (skipped, counted)
    sf.write(carlo / "wideband-prompt.wav", fake_speech(rng, 3.0, sr=16000, f0=110.0), 16000,
             subtype="PCM_16")
    st = fake_speech(rng, 2.0, f0=110.0)
    sf.write(carlo / "stereo-prompt.wav", np.stack([st, st], 1), SR, subtype="PCM_16")
    (carlo / "corrupt-prompt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    doc = root / "pkg0" / "usr/share/doc/asterisk-core-sounds-en-wav"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: asterisk-core-sounds\n\nFiles: *\nCopyright: 2003-2010, Allison Smith\n"
        "License: CC-BY-SA-3.0\n")
    return root


SMALL = dict(n_tr=12, n_cv=4, n_tt=4, seed=3)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_fake_tree(tmp_path_factory.mktemp("prompts_src"))


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "out"
    info = build_corpus([tree], out, CorpusConfig(**SMALL), progress=False)
    return out, info


def _all_files(root: Path):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------------------------ units
def test_assign_split_is_stable_and_balanced():
    # SHA-256 based: the same on every machine and Python process (hash() is salted).
    expect = {k: ("tr" if int(hashlib.sha256(k.encode()).hexdigest()[:13], 16) / 16 ** 13 < 0.8
                  else "cv" if int(hashlib.sha256(k.encode()).hexdigest()[:13], 16) / 16 ** 13
                  < 0.9 else "tt") for k in ["vm-options", "digits-1", "a"]}
    for k, v in expect.items():
        assert assign_split(k) == v
    c = Counter(assign_split(f"key{i}") for i in range(3000))
    assert 0.76 < c["tr"] / 3000 < 0.84 and 0.07 < c["cv"] / 3000 < 0.13
    # the same prompt name in any folder/language goes to the same split
    assert split_key("followme/sorry.wav") == split_key("sorry.wav") == "sorry"


@pytest.mark.parametrize("name,reason", [
    ("silence/1.wav", "silence"), ("beep.wav", "beep"), ("beeperr.wav", "beep"),
    ("ascending-2tone.wav", "tone"), ("descending-2tone.wav", "tone"),
    ("confbridge-join.wav", "jingle"), ("spy-jingle.wav", "jingle"),
    ("tt-monkeys.wav", "non-speech"),
    ("at-tone-time-exactly.wav", None), ("tt-monkeysintro.wav", None), ("tt-weasels.wav", None),
    ("vm-options.wav", None), ("digits/1.wav", None), ("confbridge-has-joined.wav", None),
])
def test_drop_rules(name, reason):
    assert drop_reason(name) == reason


def test_trim_and_pauses():
    rng = np.random.default_rng(0)
    x = fake_speech(rng, 2.0, lead=0.5, tail=0.7, pause_at=1.0)
    y = trim_silence(x, SR)
    assert len(x) - len(y) > 0.9 * SR  # most of the 1.2 s of edge silence removed
    assert np.abs(y[:40]).max() < np.abs(y).max()  # starts near the onset, not mid-speech
    z = shorten_pauses(y, SR, max_pause_s=0.3)
    assert 1.0 * SR < len(y) - len(z) < 1.4 * SR  # the 1.5 s pause shortened to ~0.3 s
    assert len(trim_silence(np.zeros(SR, np.float32), SR)) == 0


def test_cut_long_pieces_within_range():
    rng = np.random.default_rng(1)
    cfg = CorpusConfig()
    x = fake_speech(rng, 17.3, lead=0, tail=0)
    pieces = cut_long(x, cfg)
    assert sum(len(p) for p in pieces) == len(x)
    for p in pieces:
        assert cfg.min_len * SR <= len(p) <= cfg.max_len * SR


def test_mix_sources_wsj0_style():
    rng = np.random.default_rng(2)
    a, b = fake_speech(rng, 3.0, lead=0, tail=0), 0.1 * fake_speech(rng, 2.0, lead=0, tail=0)
    mix, (s1, s2) = mix_sources([a, b], [1.5, -1.5], mode="min")
    assert len(mix) == len(s1) == len(s2) == len(b)
    assert np.array_equal(mix.astype(np.int32), s1.astype(np.int32) + s2.astype(np.int32))
    peak = max(np.abs(mix).max(), np.abs(s1).max(), np.abs(s2).max()) / 32768
    assert abs(peak - 0.9) < 1e-3
    mix_max, _ = mix_sources([a, b], [0.0, 0.0], mode="max")
    assert len(mix_max) == len(a)


# ------------------------------------------------------------------------------------ build
def test_build_layout_and_manifests(built):
    out, info = built
    for split in ("tr", "cv", "tt"):
        n_expected = SMALL[f"n_{split}"]
        lists = {}
        for name in ("mix", "s1", "s2"):
            lst = json.loads((out / "json" / split / f"{name}.json").read_text())
            assert len(lst) == n_expected
            for path, n in lst:
                assert os.path.isabs(path) and Path(path).parent == out / "wav8k/min" / split / name
                inf = sf.info(path)
                assert (inf.frames, inf.samplerate, inf.channels, inf.subtype) == \
                    (n, 8000, 1, "PCM_16")
            lists[name] = lst
        for (m, n), (p1, _), (p2, _) in zip(lists["mix"], lists["s1"], lists["s2"]):
            x = sf.read(m, dtype="int16")[0].astype(np.int32)
            y = sf.read(p1, dtype="int16")[0].astype(np.int32)
            z = sf.read(p2, dtype="int16")[0].astype(np.int32)
            assert np.array_equal(x, y + z)  # exact: mixture written as the sum of its sources
            assert np.abs(np.concatenate([x, y, z])).max() <= int(0.9 * 32768) + 1
            assert Path(m).name == Path(p1).name == Path(p2).name
        utts = json.loads((out / "json" / split / "utterances.json").read_text())
        assert utts and {"path", "speaker", "n_samples"} <= set(utts[0])
        for u in utts:
            assert sf.info(u["path"]).frames == u["n_samples"]
            assert 2.5 * SR <= u["n_samples"] <= 5.0 * SR
            # utterance-disjoint splits: every source prompt of the utterance is of this split
            for src in u["sources"]:
                assert assign_split(split_key(src.split("#")[0])) == split
    rows = list(csv.DictReader(open(out / "mixtures.csv")))
    assert len(rows) == SMALL["n_tr"] + SMALL["n_cv"] + SMALL["n_tt"]
    utt_len = {}
    for split in ("tr", "cv", "tt"):
        for u in json.loads((out / "json" / split / "utterances.json").read_text()):
            utt_len[os.path.relpath(u["path"], out)] = (u["n_samples"], u["speaker"], split)
    for r in rows:
        assert r["s1_speaker"] != r["s2_speaker"]
        assert 0.0 <= float(r["snr_db"]) <= 5.0
        n1, spk1, sp1 = utt_len[r["s1_path"]]
        n2, spk2, sp2 = utt_len[r["s2_path"]]
        assert sp1 == sp2 == r["split"] and spk1 == r["s1_speaker"]
        assert int(r["n_samples"]) == min(n1, n2)  # "min" mode
    assert (out / ".done").exists() and not (out / ".building").exists()
    assert (out / "LICENSES.md").read_text().count("CC-BY-SA-3.0") >= 1
    assert (out / "licenses" / "asterisk-core-sounds-en-wav.copyright").exists()


def test_corpus_stats_and_skips(built):
    out, info = built
    c = json.loads((out / "corpus.json").read_text())
    assert c == info
    assert set(c["speakers"]) == {"allison", "june", "carlo"}
    assert "skipped_splits" not in c  # recorded only when a held-out test was left out
    assert c["resampled_files"] == 1
    assert c["dropped"]["corrupt"]["count"] == 1
    assert c["dropped"]["multichannel"]["count"] == 1
    assert c["dropped"]["silence"]["count"] == 3 and c["dropped"]["beep"]["count"] == 3
    assert c["dropped"]["tone"]["count"] == 3 and c["dropped"]["non-speech"]["count"] == 3
    for split in ("tr", "cv", "tt"):
        assert c["splits"][split]["n_mixtures"] == SMALL[f"n_{split}"]
        assert c["splits"][split]["hours_mixtures"] > 0
    assert c["prompts_cut"] > 0 and c["utterances_joined"] > 0


def test_deterministic_byte_identical(tree, built, tmp_path):
    out, _ = built
    other = tmp_path / "again"
    build_corpus([tree], other, CorpusConfig(**SMALL), progress=False)
    a, b = _all_files(out), _all_files(other)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith(".json"):  # manifests hold absolute paths
            ka = a[k].replace(str(out).encode(), b"@")
            assert ka == b[k].replace(str(other).encode(), b"@"), k
        elif k != ".done":
            assert a[k] == b[k], k
    # another seed gives other mixtures
    c = build_corpus([tree], tmp_path / "seed4", CorpusConfig(**{**SMALL, "seed": 4}),
                     progress=False)
    assert c["config_hash"] != json.loads((out / "corpus.json").read_text())["config_hash"]
    assert json.loads((other / "corpus.json").read_text())["config_hash"] == \
        json.loads((out / "corpus.json").read_text())["config_hash"]
    assert (tmp_path / "seed4" / "mixtures.csv").read_bytes() != (out / "mixtures.csv").read_bytes()


def test_rerun_with_marker_does_nothing(tree, built, monkeypatch):
    out, info = built
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise AssertionError("nothing should be written")

    monkeypatch.setattr(prompts, "write_wav", boom)
    monkeypatch.setattr(prompts, "scan_prompt_tree", boom)
    assert build_corpus([tree], out, CorpusConfig(**SMALL), progress=False) == info
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_crash_then_rerun_repairs(tree, built, tmp_path, monkeypatch):
    ref, _ = built
    out = tmp_path / "crash"
    n_wavs = len(list(ref.rglob("*.wav")))
    calls = {"n": 0}
    real = prompts.write_wav

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == int(0.6 * n_wavs):
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(prompts, "write_wav", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_corpus([tree], out, CorpusConfig(**SMALL), progress=False)
    assert not (out / ".done").exists() and (out / ".building").exists()
    # a stray temp file and a stale file from "somewhere else" must not survive the repair
    (out / "wav8k/min/tr/mix/.x.wav.123.tmp").parent.mkdir(parents=True, exist_ok=True)
    (out / "wav8k/min/tr/mix/.x.wav.123.tmp").write_bytes(b"partial")
    monkeypatch.setattr(prompts, "write_wav", real)
    build_corpus([tree], out, CorpusConfig(**SMALL), progress=False)
    a, b = _all_files(ref), _all_files(out)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith((".wav", ".csv", ".md")):
            assert a[k] == b[k], k
    assert not list(out.rglob("*.tmp"))


def test_config_change_rebuilds_without_stale_files(tree, tmp_path):
    out = tmp_path / "c"
    build_corpus([tree], out, CorpusConfig(**SMALL), progress=False)
    build_corpus([tree], out, CorpusConfig(**{**SMALL, "n_tr": 5, "seed": 9}), progress=False)
    listed = set()
    for split in ("tr", "cv", "tt"):
        for name in ("mix", "s1", "s2"):
            lst = json.loads((out / "json" / split / f"{name}.json").read_text())
            listed |= {p for p, _ in lst}
        listed |= {u["path"] for u in
                   json.loads((out / "json" / split / "utterances.json").read_text())}
    on_disk = {str(p) for p in out.rglob("*.wav")}
    assert on_disk == listed
    assert len(json.loads((out / "json/tr/mix.json").read_text())) == 5


def test_build_state_marker(tmp_path):
    st = BuildState(tmp_path, "abc", ["data"])
    assert st.begin() == "fresh"
    atomic_write_text(tmp_path / "data" / "f.txt", "x")
    assert BuildState(tmp_path, "abc", ["data"]).begin() == "resume"
    assert (tmp_path / "data" / "f.txt").exists()
    assert BuildState(tmp_path, "other", ["data"]).begin() == "fresh"  # wiped
    assert not (tmp_path / "data").exists()
    st = BuildState(tmp_path, "other", ["data"])
    st.begin()
    st.finish()
    assert BuildState(tmp_path, "other", ["data"]).begin() == "done"


def test_too_few_speakers_is_an_error(tmp_path):
    root = tmp_path / "one"
    d = root / "usr/share/asterisk/sounds/xx_XX_f_Solo"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in _names_per_split(2):
        sf.write(d / f"{name}.wav", fake_speech(rng, 3.0), SR, subtype="PCM_16")
    with pytest.raises(CorpusError, match="speaker"):
        build_corpus([root], tmp_path / "out", CorpusConfig(**SMALL), progress=False)


# ------------------------------------------------------------------------------------ debs
def test_fetch_debs_uses_cache_without_apt(tmp_path, monkeypatch):
    for p in prompts.PACKAGES:
        (tmp_path / f"{p}_1.0-1_all.deb").write_bytes(b"!<arch>\n")

    def no_subprocess(*a, **k):
        raise AssertionError("apt-get must not run when the cache is complete")

    monkeypatch.setattr(debian.subprocess, "run", no_subprocess)
    debs = prompts.fetch_debs(prompts.PACKAGES, tmp_path)
    assert [d.name.split("_")[0] for d in debs] == list(prompts.PACKAGES)


def test_fetch_debs_clear_error_without_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(prompts.shutil, "which", lambda name: None)
    with pytest.raises(CorpusError) as e:
        prompts.fetch_debs(prompts.PACKAGES, tmp_path)
    msg = str(e.value)
    assert "apt-get" in msg and "dpkg" in msg and "--wsj0_dir" in msg


def test_fetch_debs_download_failure(tmp_path, monkeypatch):
    class R:
        returncode, stdout, stderr = 100, "", "E: Unable to locate package"

    calls = []
    monkeypatch.setattr(prompts.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(debian.subprocess, "run", lambda cmd, **k: calls.append(cmd) or R())
    with pytest.raises(CorpusError, match="apt-get download failed"):
        prompts.fetch_debs(["asterisk-core-sounds-en-wav"], tmp_path)
    assert calls[1] == ["apt-get", "update"] and calls[2][:2] == ["apt-get", "download"]


def test_cli(tree, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli"
    assert prompts.main(["--out", str(out), "--src_dir", str(tree), "--n_tr", "3", "--n_cv", "2",
                         "--n_tt", "2", "--no_progress"]) == 0
    assert len(json.loads((out / "json/cv/mix.json").read_text())) == 2
    monkeypatch.setattr(prompts.shutil, "which", lambda name: None)
    assert prompts.main(["--out", str(tmp_path / "nodebs"), "--no_progress"]) == 2
    assert "apt-get" in capsys.readouterr().err


def test_read_audio_resamples_and_rejects(tmp_path):
    x = np.sin(np.linspace(0, 100, 16000)).astype(np.float32) * 0.5
    sf.write(tmp_path / "a.wav", x, 16000, subtype="PCM_16")
    y, sr = read_audio(tmp_path / "a.wav", sample_rate=8000)
    assert sr == 8000 and abs(len(y) - 8000) <= 1
    assert np.array_equal(to_int16(sf.read(tmp_path / "a.wav", dtype="float32")[0]),
                          sf.read(tmp_path / "a.wav", dtype="int16")[0])  # exact round trip


def test_three_speaker_mixtures(tree, tmp_path):
    out = tmp_path / "3mix"
    c = build_corpus([tree], out, CorpusConfig(**{**SMALL, "n_src": 3}), progress=False)
    assert c["name"] == "asterisk-prompts-3mix"
    rows = list(csv.DictReader(open(out / "mixtures.csv")))
    assert rows and all(len({r["s1_speaker"], r["s2_speaker"], r["s3_speaker"]}) == 3
                        for r in rows)
    (m, n), = json.loads((out / "json/tt/mix.json").read_text())[:1]
    srcs = [json.loads((out / "json/tt" / f"s{i}.json").read_text())[0][0] for i in (1, 2, 3)]
    x = sf.read(m, dtype="int16")[0].astype(np.int32)
    assert len(x) == n
    assert np.array_equal(x, sum(sf.read(s, dtype="int16")[0].astype(np.int32) for s in srcs))


def test_held_out_test_with_too_few_speakers_is_skipped_and_recorded(tree, tmp_path, caplog):
    """A 3-speaker corpus from the default pool holds out 2 voices: tt_unseen cannot be mixed, so it
    is left out with a warning and named in corpus.json, and tr/cv/tt are built (here: 1 held-out
    voice for 2-speaker mixtures)."""
    out = tmp_path / "o"
    with caplog.at_level("WARNING"):
        c = build_corpus([tree], out, CorpusConfig(**{**SMALL, "unseen_speakers": ("carlo",)}), progress=False)
    assert c["skipped_splits"] == {"tt_unseen": "1 held-out speaker(s) (carlo) for 2-speaker mixtures"}
    assert set(c["splits"]) == {"tr", "cv", "tt"} and c["unseen_speakers"] == []
    assert not (out / "json" / "tt_unseen").exists() and not (out / "utterances" / "tt_unseen").exists()
    assert "Split tt_unseen skipped" in caplog.text
