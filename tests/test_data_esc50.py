"""Tests of the ESC-50 mixture builder, on a fake ESC-50 download (the real layout, names and CSV
columns; short synthetic 44.1 kHz clips)."""
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.fake_esc50 import CLASSES, make_esc50
from twostep_asteroid.data import builder, esc50
from twostep_asteroid.data.audio_io import read_audio, to_int16
from twostep_asteroid.data.builder import cut
from twostep_asteroid.data.datasets import DynamicMixingDataset, Wsj0mixManifestDataset
from twostep_asteroid.data.esc50 import Esc50Config, Esc50Error, build_esc50

SMALL = dict(segment=1.0, n_cv=8, n_tt=6, seed=0)
SEG = 8000  # 1 s at 8 kHz


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_esc50(tmp_path_factory.mktemp("src"), silent_clip=True)


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("esc50") / "corpus"
    info = build_esc50(tree, out, Esc50Config(**SMALL), progress=False)
    return out, info


def _meta(tree):
    with open(tree / "meta" / "esc50.csv") as f:
        return {r["filename"]: r for r in csv.DictReader(f)}


def _rows(out):
    with open(out / "mixtures.csv") as f:
        return list(csv.DictReader(f))


def _pool(out, split):
    return json.loads((out / "json" / split / "utterances.json").read_text())


def _all_files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_folds_to_splits_and_fold5_halves(tree, built):
    out, info = built
    meta = _meta(tree)
    pools = {s: {Path(u["path"]).stem + ".wav" for u in _pool(out, s)} for s in ("tr", "cv", "tt")}
    assert pools["tr"] == {n for n, r in meta.items() if r["fold"] != "5"} - {"1-999999-A-0.wav"}
    assert not pools["cv"] & pools["tt"]
    fold5 = defaultdict(list)
    for n, r in meta.items():
        if r["fold"] == "5":
            fold5[r["target"]].append(n)
    for target, names in fold5.items():  # 3 clips per class: the first (sorted) to tt, 2 to cv
        names.sort()
        assert names[:1] == sorted(pools["tt"] & set(names))
        assert names[1:] == sorted(pools["cv"] & set(names))
    assert info["splits"]["tt"]["n_utterances"] == len(CLASSES) and info["splits"]["cv"]["n_utterances"] == 2 * len(CLASSES)
    assert "fold 5" in info["split_rule"]
    # the pool's speaker is the class, as the CSV names it
    for split in ("tr", "cv", "tt"):
        for u in _pool(out, split):
            assert u["speaker"] == meta[u["utt_id"] + ".wav"]["category"]
    assert info["dropped"]["silent"]["examples"] == ["1-999999-A-0.wav"] and info["dropped"]["silent"]["count"] == 1


def test_clips_are_resampled_to_8k(tree, built):
    out, _ = built
    u = _pool(out, "cv")[0]
    info = sf.info(u["path"])
    assert info.samplerate == 8000 and info.channels == 1 and info.frames == u["n_samples"]
    x, _ = read_audio(tree / "audio" / (u["utt_id"] + ".wav"), sample_rate=8000)
    assert abs(len(x) - sf.info(str(tree / "audio" / (u["utt_id"] + ".wav"))).frames * 8000 / 44100) < 2
    y, _ = sf.read(u["path"], dtype="int16")
    assert np.array_equal(y, to_int16(x))


def test_fixed_mixtures_different_classes_levels_and_lengths(built):
    out, info = built
    rows = _rows(out)
    assert sorted({r["split"] for r in rows}) == ["cv", "tt"]  # tr is mixed on the fly
    assert sum(r["split"] == "cv" for r in rows) == 8 and sum(r["split"] == "tt" for r in rows) == 6
    assert not (out / "json" / "tr" / "mix.json").exists()
    for r in rows:
        assert r["s1_speaker"] != r["s2_speaker"]  # the classes
        assert 0.0 <= float(r["snr_db"]) <= 2.5
    for split in ("cv", "tt"):
        mix = json.loads((out / "json" / split / "mix.json").read_text())
        s1 = json.loads((out / "json" / split / "s1.json").read_text())
        s2 = json.loads((out / "json" / split / "s2.json").read_text())
        for (m, n), (a, _), (b, _) in zip(mix, s1, s2):
            assert n == SEG
            xm, xa, xb = (sf.read(p, dtype="int16")[0].astype(np.int32) for p in (m, a, b))
            assert np.array_equal(xm, xa + xb)
            level = 20 * np.log10(np.sqrt(np.mean(xa.astype(float) ** 2)) / np.sqrt(np.mean(xb.astype(float) ** 2)))
            assert -0.01 <= level <= 2.51
        # the recipe's reader takes the fixed mixtures as they are
        ds = Wsj0mixManifestDataset(out / "json" / split, n_src=2, sample_rate=8000, segment=None)
        x, srcs = ds[0]
        assert x.shape == (SEG,) and srcs.shape == (2, SEG)
    assert all(r["s1_path"].startswith("clips/") for r in rows)
    # each source is its clip cut at the start mixtures.csv records (scaled by its gain)
    for r in rows[:6]:
        for name in ("s1", "s2"):
            clip, _ = sf.read(out / r[f"{name}_path"], dtype="int16")
            src, _ = sf.read(out / "wav8k/min" / r["split"] / name / f"{r['mix_id']}.wav", dtype="int16")
            seg = cut(clip, int(r[f"{name}_start"]), SEG).astype(float)
            assert np.corrcoef(seg, src.astype(float))[0, 1] > 0.999


def test_training_items_never_mix_one_class(built):
    out, _ = built
    ds = DynamicMixingDataset(out / "json" / "tr", n_src=2, sample_rate=8000, segment=0.5, n_items=60)
    assert sorted(ds.speakers) == sorted(c for _, c, _ in CLASSES)
    for epoch in range(2):
        ds.set_epoch(epoch)
        for idx in range(len(ds)):
            spk = [s["speaker"] for s in ds.item_info(idx)["sources"]]
            assert len(set(spk)) == 2, spk
    mix, srcs = ds[3]
    assert mix.shape == (4000,) and srcs.shape == (2, 4000)


def test_deterministic_and_seeded(tree, built, tmp_path):
    out, _ = built
    other = tmp_path / "again"
    build_esc50(tree, other, Esc50Config(**SMALL), progress=False)
    a, b = _all_files(out), _all_files(other)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith(".json") and k != "corpus.json":  # manifests hold absolute paths
            assert a[k].replace(str(out).encode(), b"@") == b[k].replace(str(other).encode(), b"@"), k
        elif k != ".done":
            assert a[k] == b[k], k
    c = build_esc50(tree, tmp_path / "seed3", Esc50Config(**{**SMALL, "seed": 3}), progress=False)
    assert c["config_hash"] != json.loads((out / "corpus.json").read_text())["config_hash"]
    assert (tmp_path / "seed3" / "mixtures.csv").read_bytes() != (out / "mixtures.csv").read_bytes()


def test_rerun_does_nothing(tree, built, monkeypatch):
    out, info = built
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise AssertionError("nothing should be written or decoded")

    monkeypatch.setattr(builder, "write_wav", boom)
    monkeypatch.setattr(esc50, "load_clips", boom)
    assert build_esc50(tree, out, Esc50Config(**SMALL), progress=False) == info
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_crash_resumes_and_option_change_rebuilds_without_stale_files(tree, built, tmp_path, monkeypatch):
    ref, _ = built
    out = tmp_path / "crash"
    real, calls = builder.write_wav, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(builder, "write_wav", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_esc50(tree, out, Esc50Config(**SMALL), progress=False)
    assert not (out / ".done").exists() and not (out / "json").exists()
    monkeypatch.setattr(builder, "write_wav", real)
    build_esc50(tree, out, Esc50Config(**SMALL), progress=False)
    a, b = _all_files(ref), _all_files(out)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a if k.endswith((".wav", ".csv", ".md")))
    # other options: rebuilt, and every wav on disk is listed in a manifest
    build_esc50(tree, out, Esc50Config(**{**SMALL, "n_tt": 3, "n_tr": 4, "seed": 5}), progress=False)
    listed = set()
    for split in ("tr", "cv", "tt"):
        for name in ("mix", "s1", "s2"):
            listed |= {p for p, _ in json.loads((out / "json" / split / f"{name}.json").read_text())}
        listed |= {u["path"] for u in _pool(out, split)}
    assert {str(p) for p in out.rglob("*.wav")} == listed
    assert len(json.loads((out / "json" / "tt" / "mix.json").read_text())) == 3
    assert len(json.loads((out / "json" / "tr" / "mix.json").read_text())) == 4


def test_licence_and_esc10(tree, built, tmp_path):
    out, info = built
    (lic,) = info["licenses"]
    assert lic["license"] == "CC BY-NC 3.0" and lic["non_commercial"] is True
    assert (out / "licenses" / "ESC-50.LICENSE").read_bytes() == (tree / "LICENSE").read_bytes()
    assert "CC BY-NC 3.0" in (out / "LICENSES.md").read_text()
    small = build_esc50(tree, tmp_path / "esc10", Esc50Config(**{**SMALL, "esc10": True}), progress=False)
    assert small["licenses"][0]["license"] == "CC BY 3.0" and small["name"] == "esc10-2mix"
    esc10 = {c for _, c, e in CLASSES if e}
    assert {u["speaker"] for s in ("tr", "cv", "tt") for u in _pool(tmp_path / "esc10", s)} == esc10


def test_wrong_layout_names_the_expected_path(tmp_path):
    (tmp_path / "ESC-50-master" / "audio").mkdir(parents=True)
    out = tmp_path / "out"
    with pytest.raises(Esc50Error) as e:
        build_esc50(tmp_path / "ESC-50-master", out, Esc50Config(**SMALL), progress=False)
    assert str(tmp_path / "ESC-50-master" / "meta" / "esc50.csv") in str(e.value)
    assert "--esc50_dir" in str(e.value)
    assert not out.exists()


def test_missing_and_bad_clips_are_named_and_nothing_is_written(tmp_path, capsys):
    root = make_esc50(tmp_path / "src", per_fold=(1, 1, 1, 1, 2), dur=(0.3, 0.5))
    meta = root / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    gone = lines[3].split(",")[0]
    (root / "audio" / gone).unlink()
    (root / "audio" / lines[5].split(",")[0]).write_bytes(b"not audio")
    meta.write_text("\n".join(lines + ["5-1-A-0.wav,seven,0,dog,True,1,A"]) + "\n")
    out = tmp_path / "out"
    with pytest.raises(Esc50Error) as e:
        build_esc50(root, out, Esc50Config(**SMALL), progress=False)
    msg = str(e.value)
    assert f"{root / 'audio' / gone}: file not found (listed in {meta}, line 4)" in msg
    assert "unreadable audio" in msg and f"{meta}, line {len(lines) + 1}" in msg
    assert msg.startswith(f"3 problem(s) in {meta}") and "Restore the files named" in msg
    assert not out.exists()
    # the command line: exit code 2, the same message
    assert esc50.main(["--esc50_dir", str(tmp_path / "src"), "--out", str(out), "--no_progress"]) == 2
    assert "error: 3 problem(s)" in capsys.readouterr().err and not out.exists()


def test_a_missing_column_and_too_few_classes(tmp_path):
    root = make_esc50(tmp_path / "src", per_fold=(1, 1, 1, 1, 2), dur=(0.3, 0.5))
    meta = root / "meta" / "esc50.csv"
    text = meta.read_text()
    meta.write_text(text.replace(",esc10,", ",esc_10,", 1))
    with pytest.raises(Esc50Error, match="lacks the column.*esc10"):
        build_esc50(root, tmp_path / "out", Esc50Config(**SMALL), progress=False)
    two = make_esc50(tmp_path / "two", per_fold=(1, 1, 1, 1, 2), dur=(0.3, 0.5), classes=CLASSES[:2])
    with pytest.raises(Esc50Error, match="split tr has clips of 2 class.*need 3 different classes"):
        build_esc50(two, tmp_path / "out", Esc50Config(**{**SMALL, "n_src": 3}), progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_builds(tree, tmp_path):
    out = tmp_path / "cli"
    assert esc50.main(["--esc50_dir", str(tree.parent), "--out", str(out), "--segment", "1.0",
                       "--n_cv", "3", "--n_tt", "2", "--no_progress"]) == 0
    assert json.loads((out / "corpus.json").read_text())["splits"]["tt"]["n_mixtures"] == 2
    assert (out / ".done").is_file()
