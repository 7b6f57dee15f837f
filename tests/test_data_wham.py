"""Tests of the manifests for an existing WHAM! folder (fake wham_mix tree with the real layout and
wsj0-2mix file names)."""
import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from tests.fake_corpora import make_wham
from twostep_asteroid.data import wham
from twostep_asteroid.data.common import CorpusError
from twostep_asteroid.data.datasets import make_dataset, validate_manifests
from twostep_asteroid.data.wham import WhamConfig, WhamError, wham_manifests, wham_utterances


def _json(out, split, name):
    return json.loads((Path(out) / "json" / split / f"{name}.json").read_text())


def _assert_no_manifests(out):
    out = Path(out)
    assert not (out / "json").exists() and not (out / ".json.staging").exists()
    assert not (out / ".done").exists()


@pytest.fixture(scope="module")
def wham_dir(tmp_path_factory):
    return make_wham(tmp_path_factory.mktemp("wham"))


def test_sep_clean_manifests_are_read_by_the_recipe(wham_dir, tmp_path):
    out = tmp_path / "data"
    info = wham_manifests(wham_dir, out, progress=False)
    assert {s: v["n_mixtures"] for s, v in info["splits"].items()} == {"tr": 4, "cv": 2, "tt": 2}
    for split in ("tr", "cv", "tt"):
        m, (s1, s2) = validate_manifests(out / "json" / split, n_src=2, check_files=True)
        assert all(sf.info(p).frames == n for p, n in m + s1 + s2)
        assert all(f"/wav8k/min/{split}/mix_clean/" in p for p, _ in m)
        assert [Path(p).name for p, _ in s2] == [Path(p).name for p, _ in m]
        assert not (out / "json" / split / "noise.json").exists()
    x, srcs = make_dataset(out / "json" / "cv", n_src=2, segment=None)[0]
    assert srcs.shape == (2, len(x))
    utts = _json(out, "tr", "utterances")
    assert {u["speaker"] for u in utts} == {"011", "01t", "20a", "40b"}
    dm = make_dataset(out / "json" / "tr", n_src=2, segment=0.02, dynamic_mixing=True, n_items=2)
    assert dm[1][1].shape == (2, 160)
    # the wav8k/min folder itself is accepted too
    assert wham_manifests(wham_dir / "wav8k/min", tmp_path / "d2", progress=False)["status"] == "built"


def test_sep_noisy_records_the_noise(wham_dir, tmp_path):
    out = tmp_path / "data"
    wham_manifests(wham_dir, out, WhamConfig(task="sep_noisy"), progress=False)
    for split in ("tr", "cv", "tt"):
        m, _ = validate_manifests(out / "json" / split, n_src=2, check_files=True)
        noise = _json(out, split, "noise")
        assert all("/mix_both/" in p for p, _ in m) and all("/noise/" in p for p, _ in noise)
        assert [(Path(p).name, n) for p, n in noise] == [(Path(p).name, n) for p, n in m]


def test_rerun_is_skipped_and_a_changed_config_rebuilds(wham_dir, tmp_path, monkeypatch):
    out = tmp_path / "data"
    wham_manifests(wham_dir, out, progress=False)
    monkeypatch.setattr(wham, "check_listed", lambda *a, **k: pytest.fail("checked again"))
    assert wham_manifests(wham_dir, out, progress=False)["status"] == "done"
    monkeypatch.undo()
    assert wham_manifests(wham_dir, out, WhamConfig(task="sep_noisy"),
                          progress=False)["status"] == "built"


def test_wrong_layout_names_the_expected_folder(tmp_path):
    (tmp_path / "wham_mix" / "wav16k" / "min" / "tr" / "mix_clean").mkdir(parents=True)
    with pytest.raises(WhamError) as e:
        wham_manifests(tmp_path / "wham_mix", tmp_path / "data", progress=False)
    assert isinstance(e.value, CorpusError)
    assert f"{tmp_path / 'wham_mix/wav8k/min'}/{{tr,cv,tt}}/mix_clean/" in str(e.value)
    assert f"Found {tmp_path / 'wham_mix/wav16k/min'}: set data.sample_rate" in str(e.value)
    (tmp_path / "wham_mix" / "wav8k" / "min" / "tr" / "mix_clean").mkdir(parents=True)  # tr only
    with pytest.raises(WhamError, match=re.escape(str(tmp_path / "wham_mix/wav8k/min/tr/s1")) + " not found"):
        wham_manifests(tmp_path / "wham_mix", tmp_path / "data", progress=False)
    _assert_no_manifests(tmp_path / "data")


def test_a_missing_noise_folder_is_named(tmp_path):
    root = make_wham(tmp_path / "src", sizes=(("tr", 1), ("cv", 1), ("tt", 1)))
    for f in (root / "wav8k/min/cv/noise").iterdir():
        f.unlink()
    (root / "wav8k/min/cv/noise").rmdir()
    with pytest.raises(WhamError, match=re.escape(str(root / "wav8k/min/cv/noise")) + " not found"):
        wham_manifests(root, tmp_path / "data", WhamConfig(task="sep_noisy"), progress=False)
    assert wham_manifests(root, tmp_path / "data", progress=False)["status"] == "built"  # sep_clean


def test_a_missing_source_and_a_wrong_length_are_named(tmp_path):
    root = make_wham(tmp_path / "src")
    tt = root / "wav8k/min/tt"
    victim = sorted((tt / "s2").iterdir())[0]
    victim.unlink()
    short = sorted((root / "wav8k/min/tr/s1").iterdir())[1]
    x, sr = sf.read(short)
    sf.write(short, x[:-7], sr, subtype="PCM_16")
    out = tmp_path / "data"
    with pytest.raises(WhamError) as e:
        wham_manifests(root, out, progress=False)
    msg = str(e.value)
    assert msg.startswith(f"2 problem(s) in {root / 'wav8k/min'}:")
    assert f"{victim}: file not found (mixture {tt / 'mix_clean' / victim.name})" in msg
    mix = root / "wav8k/min/tr/mix_clean" / short.name
    assert f"wrong length: {short} has {len(x) - 7} samples, its mixture {mix} has {len(x)}" in msg
    assert "Regenerate WHAM!" in msg
    _assert_no_manifests(out)


def test_wham_has_two_speakers(wham_dir, tmp_path):
    with pytest.raises(WhamError, match="data.n_src: 2"):
        wham_manifests(wham_dir, tmp_path / "data", WhamConfig(n_src=3), progress=False)
    assert wham_utterances("011c0201_0.35_01to0301_-0.35") == [("011c0201", "011"), ("01to0301", "01t")]
    assert wham_utterances("noise") is None


def test_enh_single_is_refused_saying_why(wham_dir, tmp_path):
    assert (wham_dir / "wav8k/min/tt/mix_single").is_dir()  # the fake folder has it, as WHAM!'s
    with pytest.raises(WhamError, match="enh_single.*WHAM!'s mix_single.*softmax mask"):
        wham_manifests(wham_dir, tmp_path / "data", WhamConfig(task="enh_single"), progress=False)
    _assert_no_manifests(tmp_path / "data")


def test_cli(wham_dir, tmp_path, capsys):
    assert wham.main(["--wham_dir", str(wham_dir), "--out", str(tmp_path / "a"), "--no_progress"]) == 0
    assert (tmp_path / "a/json/tt/s2.json").is_file()
    assert wham.main(["--wham_dir", str(tmp_path), "--out", str(tmp_path / "b"), "--n_src", "3"]) == 2
    assert "WHAM! mixtures have 2 speakers" in capsys.readouterr().err
    _assert_no_manifests(tmp_path / "b")
