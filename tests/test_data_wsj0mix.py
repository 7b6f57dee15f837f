"""Tests of wsj0-2mix/3mix creation and of manifests for existing folders (fake WSJ0 tree)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twostep_asteroid.data import wsj0mix
from twostep_asteroid.data.audio_io import AudioError, read_audio
from twostep_asteroid.data.wsj0mix import (
    Wsj0MixConfig,
    Wsj0MixError,
    create_wsj0mix,
    parse_mix_list,
    wsj0mix_manifests,
)

SPK = {"01t": 120.0, "02c": 200.0, "40a": 160.0}


def tone_speech(f0, dur, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
    return (0.2 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def write_sphere(path, x_int16, sr=16000, coding="pcm"):
    hdr = (f"NIST_1A\n   1024\nsample_count -i {len(x_int16)}\nsample_rate -i {sr}\n"
           f"channel_count -i 1\nsample_n_bytes -i 2\nsample_byte_format -s2 01\n"
           f"sample_coding -s{len(coding)} {coding}\nend_head\n").encode()
    path.write_bytes(hdr + b" " * (1024 - len(hdr)) + x_int16.astype("<i2").tobytes())


@pytest.fixture(scope="module")
def fake_wsj0(tmp_path_factory):
    return make_fake_wsj0(tmp_path_factory.mktemp("wsj0root"))


def make_fake_wsj0(root):
    """WSJ0-like tree: wsj0/si_tr_s/<spk>/<utt>.wav at 16 kHz (+ one .wv1 SPHERE file), and the
    mixture lists in ``root/lists``. Returns ``(root, lists, lines)``."""
    root = Path(root)
    utts = {}
    for i, (spk, f0) in enumerate(SPK.items()):
        for j in range(3):
            uid = f"{spk}a01{j}{i}"
            d = root / "wsj0" / "si_tr_s" / spk
            d.mkdir(parents=True, exist_ok=True)
            x = tone_speech(f0, 1.0 + 0.25 * j, seed=10 * i + j) * (0.3 + 0.5 * j)
            if spk == "40a" and j == 0:  # one SPHERE file, as in the original WSJ0
                write_sphere(d / f"{uid}.wv1", np.round(x * 32767).astype(np.int16))
            else:
                sf.write(d / f"{uid}.wav", x, 16000, subtype="PCM_16")
            utts[uid] = f"wsj0/si_tr_s/{spk}/{uid}.wv1"  # lists name .wv1: .wav found instead
    lists = root / "lists"
    lists.mkdir()
    u = sorted(utts)
    lines = {
        "tr": [(u[0], "1.2345", u[3], "-1.2345"), (u[1], "0.5", u[6], "-0.5"),
               (u[6], "2.1", u[4], "-2.1")],
        "cv": [(u[2], "0.0", u[5], "0.0")],
        "tt": [(u[7], "1.7783", u[8 - 6], "-1.7783")],
    }
    for split, ls in lines.items():
        (lists / f"mix_2_spk_{split}.txt").write_text(
            "".join(f"{utts[a]} {sa} {utts[b]} {sb}\n" for a, sa, b, sb in ls))
    three = [(u[0], "1.0", u[4], "-1.0", u[8], "0.5")]
    for split in ("tr", "cv", "tt"):
        (lists / f"mix_3_spk_{split}.txt").write_text(
            "".join(f"{utts[a]} {sa} {utts[b]} {sb} {utts[c]} {sc}\n"
                    for a, sa, b, sb, c, sc in three))
    return root, lists, lines


@pytest.fixture(scope="module")
def built2(fake_wsj0, tmp_path_factory):
    root, lists, lines = fake_wsj0
    out = tmp_path_factory.mktemp("wsj0_2mix")
    create_wsj0mix(root, out, lists, Wsj0MixConfig(n_src=2), progress=False)
    return out, lines


def test_parse_list(fake_wsj0):
    _, lists, lines = fake_wsj0
    ls = parse_mix_list(lists / "mix_2_spk_tr.txt")
    assert len(ls) == 3 and ls[0].snrs == ["1.2345", "-1.2345"]
    assert ls[0].mix_id == f"{lines['tr'][0][0]}_1.2345_{lines['tr'][0][2]}_-1.2345"
    with pytest.raises(Wsj0MixError, match="expected 6 fields"):
        parse_mix_list(lists / "mix_2_spk_tr.txt", n_src=3)


def test_create_2mix(fake_wsj0, built2):
    root, _, lines = fake_wsj0
    out, _ = built2
    for split, ls in lines.items():
        mix = json.loads((out / "json" / split / "mix.json").read_text())
        s1 = json.loads((out / "json" / split / "s1.json").read_text())
        s2 = json.loads((out / "json" / split / "s2.json").read_text())
        assert len(mix) == len(s1) == len(s2) == len(ls)
        for (a, sa, b, sb), (pm, n), (p1, _), (p2, _) in zip(ls, mix, s1, s2):
            name = f"{a}_{sa}_{b}_{sb}.wav"
            assert Path(pm) == out / "wav8k/min" / split / "mix" / name
            assert Path(p1).name == Path(p2).name == name
            x, sr = sf.read(pm, dtype="int16")
            y, z = sf.read(p1, dtype="int16")[0], sf.read(p2, dtype="int16")[0]
            assert sr == 8000 and len(x) == n
            assert np.array_equal(x.astype(int), y.astype(int) + z.astype(int))
            peak = max(np.abs(x).max(), np.abs(y).max(), np.abs(z).max()) / 32768
            assert abs(peak - 0.9) < 1e-3  # scaled by 0.9 / max as the MATLAB scripts
            # "min": the shorter of the two resampled utterances
            la = len(read_audio(wsj0mix.resolve_wsj0_path(root, f"wsj0/si_tr_s/{a[:3]}/{a}.wv1"),
                                8000)[0])
            lb = len(read_audio(wsj0mix.resolve_wsj0_path(root, f"wsj0/si_tr_s/{b[:3]}/{b}.wv1"),
                                8000)[0])
            assert n == min(la, lb)
    # levels: the full utterances are normalised to equal RMS before weighting, so on the
    # (min-length) overlap s1/s2 follows snr1 - snr2 up to the level of the cut-off part
    (pm, _), (p1, _), (p2, _) = [json.loads((out / "json/cv" / f"{k}.json").read_text())[0]
                                 for k in ("mix", "s1", "s2")]
    y, z = sf.read(p1)[0], sf.read(p2)[0]
    assert abs(10 * np.log10(np.mean(y ** 2) / np.mean(z ** 2))) < 1.0  # cv line is 0 dB
    utts = json.loads((out / "json/tr/utterances.json").read_text())
    assert {u["speaker"] for u in utts} <= set(SPK) and all(Path(u["path"]).exists() for u in utts)
    assert (out / ".done").exists()


def test_create_3mix_and_16k_max(fake_wsj0, tmp_path):
    root, lists, _ = fake_wsj0
    out = tmp_path / "3mix"
    create_wsj0mix(root, out, lists, Wsj0MixConfig(n_src=3, sample_rate=16000, mode="max"),
                   progress=False)
    mix = json.loads((out / "json/tt/mix.json").read_text())
    srcs = [json.loads((out / "json/tt" / f"s{i}.json").read_text()) for i in (1, 2, 3)]
    (pm, n), = mix
    assert "/wav16k/max/tt/mix/" in pm and sf.info(pm).samplerate == 16000
    x = sf.read(pm, dtype="int16")[0].astype(int)
    assert np.array_equal(x, sum(sf.read(s[0][0], dtype="int16")[0].astype(int) for s in srcs))
    # "max": padded to the longest; the shortest source ends in zeros
    tails = [np.abs(sf.read(s[0][0])[0][-100:]).max() for s in srcs]
    assert min(tails) == 0.0 and max(tails) > 0.0


def test_rerun_is_noop_and_resolves_wav(fake_wsj0, built2, monkeypatch):
    root, lists, _ = fake_wsj0
    out, _ = built2
    monkeypatch.setattr(wsj0mix, "write_wav", lambda *a, **k: pytest.fail("rewrote a file"))
    assert create_wsj0mix(root, out, lists, Wsj0MixConfig(n_src=2), progress=False)["status"] \
        == "done"


def test_sphere_reading(tmp_path):
    x = (np.sin(np.arange(1600) / 5) * 10000).astype(np.int16)
    write_sphere(tmp_path / "a.wv1", x)
    y, sr = read_audio(tmp_path / "a.wv1")
    assert sr == 16000 and np.array_equal(np.round(y * 32768).astype(np.int16), x)
    write_sphere(tmp_path / "b.wv1", x, coding="pcm,embedded-shorten-v2.00")
    with pytest.raises(AudioError, match="sph2pipe"):
        read_audio(tmp_path / "b.wv1")


def test_clear_errors(fake_wsj0, tmp_path):
    root, lists, _ = fake_wsj0
    with pytest.raises(Wsj0MixError, match="create-speaker-mixtures.zip"):
        create_wsj0mix(root, tmp_path / "o", None, progress=False)
    with pytest.raises(Wsj0MixError, match="mix_2_spk_tr.txt"):
        create_wsj0mix(root, tmp_path / "o", tmp_path, progress=False)
    bad = tmp_path / "badlists"
    bad.mkdir()
    for s in ("tr", "cv", "tt"):
        (bad / f"mix_2_spk_{s}.txt").write_text("wsj0/si_tr_s/zzz/nothere.wv1 1 "
                                                "wsj0/si_tr_s/01t/x.wv1 -1\n")
    with pytest.raises(Wsj0MixError, match="nothere"):
        create_wsj0mix(root, tmp_path / "o2", bad, progress=False)


def test_existing_wsj0mix_dir_manifests(built2, tmp_path):
    src, lines = built2
    out = tmp_path / "manifests"
    info = wsj0mix_manifests(src, out, progress=False)
    assert info["splits"]["tr"]["n_mixtures"] == len(lines["tr"])
    mix = json.loads((out / "json/tr/mix.json").read_text())
    assert all(Path(p).is_file() and sf.info(p).frames == n for p, n in mix)
    utts = json.loads((out / "json/tr/utterances.json").read_text())
    assert {u["speaker"] for u in utts} <= set(SPK)
    # a missing source is named in the error
    victim = Path(json.loads((out / "json/cv/s2.json").read_text())[0][0])
    victim.rename(victim.with_suffix(".bak"))
    try:
        with pytest.raises(Wsj0MixError, match=re.escape(str(victim))):
            wsj0mix_manifests(src, tmp_path / "m2", progress=False)
    finally:
        victim.with_suffix(".bak").rename(victim)
    with pytest.raises(Wsj0MixError, match="does not look like"):
        wsj0mix_manifests(tmp_path, tmp_path / "m3", progress=False)


def test_cli(fake_wsj0, built2, tmp_path, capsys):
    root, lists, _ = fake_wsj0
    src, _ = built2
    assert wsj0mix.main(["--out", str(tmp_path / "a"), "--wsj0mix_dir", str(src),
                         "--no_progress"]) == 0
    assert (tmp_path / "a/json/tt/s2.json").exists()
    assert wsj0mix.main(["--out", str(tmp_path / "b"), "--wsj0_dir", str(root),
                         "--no_progress"]) == 2
    assert "--lists_dir" in capsys.readouterr().err
