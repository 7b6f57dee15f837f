"""The corpus builder for a user's own recordings (``--audio_dir``), on a fake folder made here: one
subfolder per speaker, wav at 16 kHz stereo, flac/ogg at 8 kHz and 22.05 kHz, synthetic speech."""
import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from twostep_asteroid.data import audio_dir, builder
from twostep_asteroid.data.audio_dir import AudioDirConfig, build_audio_dir
from twostep_asteroid.data.builder import assign_split, split_key
from twostep_asteroid.data.common import CorpusError

from .test_data_prompts import fake_speech

SR = 8000
# speaker folder -> (f0, [(suffix, rate, channels, soundfile format/subtype)], cycled over its files)
SPEAKERS = {
    "alice": (210.0, [(".wav", 16000, 2, ("WAV", "PCM_16"))]),
    "bob": (120.0, [(".flac", 8000, 1, ("FLAC", "PCM_16"))]),
    "carol": (250.0, [(".ogg", 8000, 1, ("OGG", "VORBIS"))]),
    "dave": (100.0, [(".wav", 8000, 1, ("WAV", "PCM_16")), (".flac", 16000, 2, ("FLAC", "PCM_16"))]),
    "erin": (180.0, [(".ogg", 22050, 1, ("OGG", "VORBIS")), (".wav", 8000, 1, ("WAV", "PCM_16"))]),
}
DURATIONS = [0.6, 1.1, 1.8, 3.2, 6.5, 9.0]  # short ones are joined, long ones cut at pauses
SMALL = dict(n_tr=8, n_cv=3, n_tt=3, n_unseen=3, seed=5)


def names_per_split(counts=(6, 3, 3)):
    """File names such that tr/cv/tt get ``counts`` of them (the split is a hash of the name)."""
    want = dict(zip(("tr", "cv", "tt"), counts))
    got = {s: [] for s in want}
    i = 0
    while any(len(got[s]) < want[s] for s in want):
        name = f"rec{i:03d}"
        s = assign_split(split_key(name))
        if len(got[s]) < want[s]:
            got[s].append(name)
        i += 1
    return sorted(n for v in got.values() for n in v)


def make_audio_dir(root: Path, speakers=SPEAKERS, counts=(6, 3, 3), seed=0) -> Path:
    """A folder of recordings, one subfolder per speaker (a nested session folder, a transcript and
    a hidden file beside the audio)."""
    rng = np.random.default_rng(seed)
    for spk, (f0, formats) in speakers.items():
        for j, name in enumerate(names_per_split(counts)):
            suffix, rate, channels, (fmt, subtype) = formats[j % len(formats)]
            dur = DURATIONS[j % len(DURATIONS)]
            x = fake_speech(rng, dur, sr=rate, f0=f0 * rng.uniform(0.95, 1.05),
                            pause_at=dur / 2 if dur > 5 else None)
            if channels == 2:
                x = np.stack([x, 0.8 * x], 1)
            p = root / spk / ("session2" if j % 4 == 3 else "") / f"{name}{suffix}"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, x, rate, format=fmt, subtype=subtype)
        (root / spk / "transcripts.txt").write_text("not audio\n")
        (root / spk / ".DS_Store").write_bytes(b"\0")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_audio_dir(tmp_path_factory.mktemp("audio_src") / "my_voices")


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("adir") / "out"
    return out, build_audio_dir(tree, out, AudioDirConfig(**SMALL, held_out=("dave", "erin")),
                                progress=False)


def _files(root: Path):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _speakers(out, split):
    return {u["speaker"] for u in json.loads((out / "json" / split / "utterances.json").read_text())}


def test_layout_manifests_and_corpus_json(built):
    out, info = built
    for split, n in (("tr", 8), ("cv", 3), ("tt", 3), ("tt_unseen", 3)):
        lists = [json.loads((out / "json" / split / f"{k}.json").read_text()) for k in ("mix", "s1", "s2")]
        assert len(lists[0]) == n == info["splits"][split]["n_mixtures"]
        for (m, k), (a, _), (b, _) in zip(*lists):
            assert Path(m).parent == out / "wav8k/min" / split / "mix"
            x, y, z = (sf.read(p, dtype="int16")[0].astype(np.int32) for p in (m, a, b))
            assert len(x) == k and np.array_equal(x, y + z)  # the mixture is the sum of its sources
            assert sf.info(m).samplerate == SR and sf.info(m).channels == 1
        for u in json.loads((out / "json" / split / "utterances.json").read_text()):
            i = sf.info(u["path"])
            assert (i.samplerate, i.channels, i.frames) == (SR, 1, u["n_samples"])
            assert 2.5 * SR <= u["n_samples"] <= 5.0 * SR
            if split != "tt_unseen":  # utterance-disjoint splits: by a hash of each file name
                assert all(assign_split(split_key(s.split("#")[0])) == split for s in u["sources"])
    rows = list(csv.DictReader(open(out / "mixtures.csv")))
    assert len(rows) == 8 + 3 + 3 + 3
    assert all(r["s1_speaker"] != r["s2_speaker"] and 0 <= float(r["snr_db"]) <= 5 for r in rows)
    assert all((out / r["s1_path"]).is_file() for r in rows)
    c = json.loads((out / "corpus.json").read_text())
    assert c == info and c["name"] == "my_voices-2mix" and c["version"] == audio_dir.AUDIO_DIR_VERSION
    assert set(c["speakers"]) == set(SPEAKERS) and c["speakers"]["bob"]["folder"] == "bob"
    inp = c["input"]
    assert inp["sample_rates"] == {"8000": 36, "16000": 18, "22050": 6}
    assert inp["downmixed_files"] == 12 + 6 and inp["resampled_files"] == 24 == c["resampled_files"]
    assert c["dropped"]["not_audio"]["count"] == 5  # the transcripts; hidden files are skipped
    assert c["prompts_cut"] > 0 and c["utterances_joined"] > 0
    assert (out / ".done").is_file() and not (out / ".building").exists()


def test_held_out_speakers_only_in_the_unseen_test(built):
    out, info = built
    train = _speakers(out, "tr") | _speakers(out, "cv") | _speakers(out, "tt")
    assert train == {"alice", "bob", "carol"} and _speakers(out, "tt_unseen") == {"dave", "erin"}
    assert info["unseen_speakers"] == ["dave", "erin"] and info["train_speakers"] == ["alice", "bob", "carol"]
    rows = list(csv.DictReader(open(out / "mixtures.csv")))
    for r in rows:
        held = {r["s1_speaker"], r["s2_speaker"]} & {"dave", "erin"}
        assert (r["split"] == "tt_unseen") == bool(held) and (not held or len(held) == 2)


def test_deterministic_and_rerun_is_skipped(tree, built, tmp_path, monkeypatch, caplog):
    out, info = built
    other = tmp_path / "again"
    build_audio_dir(tree, other, AudioDirConfig(**SMALL, held_out=("erin", "dave")), progress=False)
    a, b = _files(out), _files(other)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith(".json"):  # manifests hold absolute paths
            assert a[k].replace(str(out).encode(), b"@") == b[k].replace(str(other).encode(), b"@"), k
        elif k != ".done":
            assert a[k] == b[k], k
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise AssertionError("nothing should be read or written")

    monkeypatch.setattr(builder, "write_wav", boom)
    monkeypatch.setattr(audio_dir, "_probe", boom)
    with caplog.at_level(logging.INFO):
        assert build_audio_dir(tree, out, AudioDirConfig(**SMALL, held_out=("dave", "erin")),
                               progress=False) == info
    assert "up to date" in caplog.text
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_one_summary_line_for_resampling_and_downmixing(tree, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        c = build_audio_dir(tree, tmp_path / "o", AudioDirConfig(n_tr=4, n_cv=2, n_tt=2, n_src=3), progress=False)
    lines = [r.getMessage() for r in caplog.records if "resampled" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "Found 60 recordings of 5 speakers" in lines[0] and "resampled to 8000 Hz: 24" in lines[0]
    assert "downmixed to mono: 18" in lines[0]
    assert c["name"] == "my_voices-3mix" and c["splits"]["tr"]["n_mixtures"] == 4
    assert "tt_unseen" not in c["splits"]


def test_unreadable_file_is_named_with_the_fix_and_nothing_is_written(tree, built, tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(tree, src)
    (src / "bob" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (src / "carol" / "phone.m4a").write_bytes(b"\0\0\0\x18ftypM4A ")
    sf.write(src / "alice" / "empty.wav", np.zeros(0, np.float32), SR)  # readable, no samples: ignored
    out = tmp_path / "out"
    with pytest.raises(CorpusError) as e:
        build_audio_dir(src, out, AudioDirConfig(**SMALL), progress=False)
    msg = str(e.value)
    assert "2 file(s)" in msg and str(src / "bob" / "broken.wav") in msg and str(src / "carol" / "phone.m4a") in msg
    assert "ffmpeg" in msg and "remove them from" in msg
    assert not out.exists()  # checked before anything is written
    # an existing corpus is left as it was, not half rebuilt
    good, _ = built
    shutil.copytree(good, out)
    before = _files(out)
    with pytest.raises(CorpusError, match="broken.wav"):
        build_audio_dir(src, out, AudioDirConfig(**SMALL), progress=False)
    assert _files(out) == before
    (src / "bob" / "broken.wav").unlink()
    (src / "carol" / "phone.m4a").unlink()
    c = build_audio_dir(src, out, AudioDirConfig(**SMALL), progress=False)
    assert c["dropped"]["empty"]["examples"] == ["alice/empty.wav"]


def test_wrong_layouts_name_the_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match=f"no audio files in {empty}.*Expected layout"):
        build_audio_dir(empty, tmp_path / "o1", AudioDirConfig(**SMALL), progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        sf.write(flat / f"a{i}.wav", fake_speech(np.random.default_rng(i), 3.0), SR)
    with pytest.raises(CorpusError, match=f"3 audio file.*directly in {flat}.*<speaker>"):
        build_audio_dir(flat, tmp_path / "o2", AudioDirConfig(**SMALL), progress=False)
    one = make_audio_dir(tmp_path / "one", {"solo": SPEAKERS["bob"]}, counts=(2, 1, 1))
    with pytest.raises(CorpusError, match=f"{one} has 1 speaker folder.*solo.*at least 2"):
        build_audio_dir(one, tmp_path / "o3", AudioDirConfig(**SMALL), progress=False)
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))
    # through the CLI: exit status 2 and the message
    assert audio_dir.main(["--audio_dir", str(one), "--out", str(tmp_path / "o4"), "--no_progress"]) == 2
    assert f"error: {one} has 1 speaker folder" in capsys.readouterr().err
    assert audio_dir.main(["--audio_dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o5")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(CorpusError, match="inside --audio_dir"):
        build_audio_dir(one, one / "corpus", AudioDirConfig(**SMALL), progress=False)


def test_held_out_and_split_errors(tree, tmp_path):
    with pytest.raises(CorpusError, match="held_out speaker.*'zoe'.*alice, bob"):
        build_audio_dir(tree, tmp_path / "o", AudioDirConfig(**SMALL, held_out=("zoe",)), progress=False)
    with pytest.raises(CorpusError, match="held_out has 1 speaker"):
        build_audio_dir(tree, tmp_path / "o", AudioDirConfig(**SMALL, held_out=("dave",)), progress=False)
    with pytest.raises(CorpusError, match="2 speaker folder.*left for training.*need at least 3"):
        build_audio_dir(tree, tmp_path / "o", AudioDirConfig(**SMALL, n_src=3, held_out=("dave", "erin", "carol")),
                        progress=False)
    few = make_audio_dir(tmp_path / "few", {k: SPEAKERS[k] for k in ("alice", "bob")}, counts=(2, 1, 0))
    with pytest.raises(CorpusError, match=r"few: split (cv|tt) holds utterances of [01] speaker.*several recordings"):
        build_audio_dir(few, tmp_path / "o", AudioDirConfig(**SMALL), progress=False)
    assert not (tmp_path / "o").exists()


def test_cli_builds(tree, tmp_path):
    out = tmp_path / "cli"
    assert audio_dir.main(["--audio_dir", str(tree), "--out", str(out), "--n_tr", "3", "--n_cv", "2",
                           "--n_tt", "2", "--held_out", "dave,erin", "--license", "CC0-1.0",
                           "--no_progress"]) == 0
    c = json.loads((out / "corpus.json").read_text())
    assert c["splits"]["tt_unseen"]["n_mixtures"] == 2 and c["config"]["held_out"] == ["dave", "erin"]
    assert c["speakers"]["alice"]["license"] == "CC0-1.0"
