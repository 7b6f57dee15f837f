"""Tests of the manifests for an existing LibriMix folder (fake Libri2Mix/Libri3Mix trees with the
real layout, ids and metadata columns)."""
import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from tests.fake_corpora import FOREIGN_ROOT, make_librimix, read_csv, write_csv
from twostep_asteroid.data import librimix
from twostep_asteroid.data.common import CorpusError
from twostep_asteroid.data.datasets import make_dataset, validate_manifests
from twostep_asteroid.data.librimix import (
    LibriMixConfig,
    LibriMixError,
    librimix_manifests,
    librimix_utterances,
    resolve_listed_path,
)


def _json(out, split, name):
    return json.loads((Path(out) / "json" / split / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def libri2(tmp_path_factory):
    """A Libri2Mix folder whose CSVs name the paths of the machine that generated it."""
    return make_librimix(tmp_path_factory.mktemp("librimix"))


def _assert_no_manifests(out):
    out = Path(out)
    assert not (out / "json").exists() and not (out / ".json.staging").exists()
    assert not (out / ".done").exists()


def test_sep_clean_manifests_are_read_by_the_recipe(libri2, tmp_path):
    out = tmp_path / "data"
    info = librimix_manifests(libri2.parent, out, progress=False)  # the folder above Libri2Mix
    assert info["status"] == "built"
    assert {s: v["n_mixtures"] for s, v in info["splits"].items()} == {"tr": 4, "cv": 2, "tt": 2}
    rows = read_csv(libri2 / "wav8k/min/metadata/mixture_train-360_mix_clean.csv")
    assert rows[0]["mixture_path"].startswith(FOREIGN_ROOT)  # resolved under the given folder:
    mix = _json(out, "tr", "mix")
    assert mix[0] == [str(libri2 / "wav8k/min/train-360/mix_clean" / f"{rows[0]['mixture_ID']}.wav"),
                      int(rows[0]["length"])]
    for split in ("tr", "cv", "tt"):
        m, (s1, s2) = validate_manifests(out / "json" / split, n_src=2, check_files=True)
        assert all(sf.info(p).frames == n for p, n in m + s1 + s2)
        assert all("/s1/" in p for p, _ in s1) and all("/mix_clean/" in p for p, _ in m)
        assert not (out / "json" / split / "noise.json").exists()
    x, srcs = make_dataset(out / "json" / "tt", n_src=2, segment=None)[1]
    assert srcs.shape == (2, len(x)) == (2, _json(out, "tt", "mix")[1][1])
    # the utterance pool: LibriSpeech ids and speakers, for dynamic mixing
    utts = _json(out, "tr", "utterances")
    assert {u["utt_id"] for u in utts} == {u for r in rows for u in r["mixture_ID"].split("_")}
    assert all(u["speaker"] == u["utt_id"].split("-")[0] for u in utts)
    dm = make_dataset(out / "json" / "tr", n_src=2, segment=0.02, dynamic_mixing=True, n_items=3)
    assert dm[0][1].shape == (2, 160)
    assert json.loads((out / ".done").read_text())["kind"] == "Libri2Mix"


def test_3mix_sep_noisy_both_training_sets_16k_max(tmp_path):
    root = make_librimix(tmp_path / "src", n_src=3, sample_rate=16000, mode="max",
                         sizes=(("train-360", 3), ("train-100", 2), ("dev", 1), ("test", 2)),
                         foreign=False)
    out = tmp_path / "data"
    cfg = LibriMixConfig(task="sep_noisy", train_set="both", n_src=3, sample_rate=16000, mode="max")
    info = librimix_manifests(root, out, cfg, progress=False)
    assert info["splits"]["tr"]["n_mixtures"] == 5  # train-100 then train-360
    mix = _json(out, "tr", "mix")
    assert ["/train-100/" in p for p, _ in mix] == [True] * 2 + [False] * 3
    for split in ("tr", "cv", "tt"):
        m, srcs = validate_manifests(out / "json" / split, n_src=3, check_files=True)
        noise = _json(out, split, "noise")  # the noise: one more manifest, in mix.json's order
        assert [n for _, n in noise] == [n for _, n in m]
        assert all("/mix_both/" in p for p, _ in m) and all("/noise/" in p for p, _ in noise)
        assert [Path(p).name for p, _ in noise] == [Path(p).name for p, _ in m]
    x, srcs = make_dataset(out / "json" / "tt", n_src=3, sample_rate=16000, segment=None)[0]
    assert srcs.shape == (3, len(x))
    assert len({u["speaker"] for u in _json(out, "tr", "utterances")}) >= 3


def test_rerun_is_skipped_and_a_changed_config_rebuilds(libri2, tmp_path, monkeypatch):
    out = tmp_path / "data"
    librimix_manifests(libri2, out, progress=False)
    stamp = (out / "json/tr/mix.json").stat().st_mtime_ns
    monkeypatch.setattr(librimix, "check_listed", lambda *a, **k: pytest.fail("checked again"))
    assert librimix_manifests(libri2, out, progress=False)["status"] == "done"
    assert (out / "json/tr/mix.json").stat().st_mtime_ns == stamp
    monkeypatch.undo()
    noisy = LibriMixConfig(task="sep_noisy")
    assert librimix_manifests(libri2, out, noisy, progress=False)["status"] == "built"
    assert "/mix_both/" in _json(out, "tr", "mix")[0][0] and (out / "json/tr/noise.json").exists()
    librimix_manifests(libri2, out, progress=False)  # back to sep_clean: no stale noise.json
    assert not (out / "json/tr/noise.json").exists()


def test_mix_single_is_ignored_and_enh_single_refused(tmp_path, capsys):
    """A Libri2Mix folder generated with mix_single too (one speaker + noise, the enhancement task):
    sep_clean and sep_noisy read it as without; enh_single is refused, saying why."""
    root = make_librimix(tmp_path / "src", types=("mix_clean", "mix_both", "mix_single"))
    single = read_csv(root / "wav8k/min/metadata/mixture_dev_mix_single.csv")
    assert list(single[0]) == ["mixture_ID", "mixture_path", "source_1_path", "noise_path", "length"]
    for task, mix_dir in (("sep_clean", "mix_clean"), ("sep_noisy", "mix_both")):
        out = tmp_path / task
        info = librimix_manifests(root, out, LibriMixConfig(task=task), progress=False)
        assert {s: v["n_mixtures"] for s, v in info["splits"].items()} == {"tr": 4, "cv": 2, "tt": 2}
        for split in ("tr", "cv", "tt"):
            m, (s1, s2) = validate_manifests(out / "json" / split, n_src=2, check_files=True)
            assert all(f"/{mix_dir}/" in p for p, _ in m)
            assert not any("/mix_single/" in p for p, _ in m + s1 + s2)
    out = tmp_path / "enh"
    with pytest.raises(LibriMixError, match="enh_single.*mix_single: one speaker plus noise.*n_src >= 2.*"
                                            "softmax mask over the sources is all ones.*sep_noisy"):
        librimix_manifests(root, out, LibriMixConfig(task="enh_single"), progress=False)
    _assert_no_manifests(out)
    assert librimix.main(["--librimix_dir", str(root), "--out", str(out), "--task", "enh_single",
                          "--no_progress"]) == 2
    assert "error: task enh_single (LibriMix's mix_single" in capsys.readouterr().err
    _assert_no_manifests(out)


def test_wrong_layout_names_the_expected_folder(tmp_path):
    (tmp_path / "Libri2Mix" / "wav16k/min/metadata").mkdir(parents=True)  # generated at 16 kHz only
    with pytest.raises(LibriMixError) as e:
        librimix_manifests(tmp_path, tmp_path / "data", progress=False)
    assert isinstance(e.value, CorpusError)
    assert str(tmp_path / "wav8k/min/metadata") in str(e.value)
    assert str(tmp_path / "Libri2Mix/wav8k/min/metadata") in str(e.value)
    assert f"Found {tmp_path / 'Libri2Mix/wav16k/min/metadata'}: set data.sample_rate" in str(e.value)
    _assert_no_manifests(tmp_path / "data")


def test_a_missing_subset_csv_is_named(tmp_path):
    root = make_librimix(tmp_path / "src", sizes=(("train-100", 2), ("dev", 1), ("test", 1)))
    with pytest.raises(LibriMixError, match=re.escape(
            str(root / "wav8k/min/metadata/mixture_train-360_mix_clean.csv")) + ".*--train_set"):
        librimix_manifests(root, tmp_path / "data", progress=False)
    assert librimix_manifests(root, tmp_path / "data", LibriMixConfig(train_set="train-100"),
                              progress=False)["status"] == "built"


def test_a_missing_file_is_named_and_nothing_is_written(tmp_path):
    root = make_librimix(tmp_path / "src")
    victim = next((root / "wav8k/min/dev/s2").iterdir())
    victim.unlink()
    out = tmp_path / "data"
    with pytest.raises(LibriMixError) as e:
        librimix_manifests(root, out, progress=False)
    msg = str(e.value)
    assert f"{FOREIGN_ROOT}/Libri2Mix/wav8k/min/dev/s2/{victim.name}: file not found" in msg
    assert str(victim) in msg  # where it was looked for
    assert "mixture_dev_mix_clean.csv, line 2" in msg and "Regenerate LibriMix" in msg
    _assert_no_manifests(out)


def test_a_wrong_length_is_named_and_nothing_is_written(tmp_path):
    root = make_librimix(tmp_path / "src", foreign=False)
    meta = root / "wav8k/min/metadata/mixture_test_mix_clean.csv"
    rows = read_csv(meta)
    rows[1]["length"] = str(int(rows[1]["length"]) + 5)
    write_csv(meta, rows)
    out = tmp_path / "data"
    with pytest.raises(LibriMixError) as e:
        librimix_manifests(root, out, progress=False)
    assert (f"wrong length: {rows[1]['mixture_path']} has {int(rows[1]['length']) - 5} samples, "
            f"{meta}, line 3 says {rows[1]['length']}") in str(e.value)
    assert "Regenerate LibriMix" in str(e.value)
    _assert_no_manifests(out)


def test_an_error_keeps_the_previous_manifests(libri2, tmp_path):
    out = tmp_path / "data"
    librimix_manifests(libri2, out, progress=False)
    before = (out / "json/tr/mix.json").read_text()
    with pytest.raises(LibriMixError, match="mixture_train-360_mix_clean.csv has 2 source columns"):
        librimix_manifests(libri2, out, LibriMixConfig(n_src=3), progress=False)
    assert (out / "json/tr/mix.json").read_text() == before
    assert not (out / ".json.staging").exists()


def test_libri3mix_metadata_with_n_src_2_says_which_n_src(tmp_path):
    root = make_librimix(tmp_path / "src", n_src=3)
    with pytest.raises(LibriMixError, match="Libri3Mix metadata.*data.n_src: 3"):
        librimix_manifests(root, tmp_path / "data", progress=False)


def test_resolve_listed_path(tmp_path):
    f = tmp_path / "wav8k/min/dev/s1/a.wav"
    f.parent.mkdir(parents=True)
    f.touch()
    assert resolve_listed_path(tmp_path, str(f)) == (f, [])
    assert resolve_listed_path(tmp_path, "/elsewhere/Libri2Mix/wav8k/min/dev/s1/a.wav") == (f, [])
    assert resolve_listed_path(tmp_path, "wav8k/min/dev/s1/a.wav") == (f, [])
    found, tried = resolve_listed_path(tmp_path, "/elsewhere/wav8k/min/dev/s1/b.wav")
    assert found is None and tried[-1] == tmp_path / "wav8k/min/dev/s1/b.wav"
    assert librimix_utterances("103-1240-0003_1235-135887-0017", 2) == [
        ("103-1240-0003", "103"), ("1235-135887-0017", "1235")]
    assert librimix_utterances("3f2a9c", 2) is None


def test_cli(libri2, tmp_path, capsys):
    assert librimix.main(["--librimix_dir", str(libri2), "--out", str(tmp_path / "a"),
                          "--task", "sep_noisy", "--no_progress"]) == 0
    assert (tmp_path / "a/json/tt/noise.json").is_file()
    assert librimix.main(["--librimix_dir", str(tmp_path), "--out", str(tmp_path / "b"),
                          "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} does not look like a Libri2Mix folder")
    _assert_no_manifests(tmp_path / "b")
