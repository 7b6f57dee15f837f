"""Every bad input of issue 6, one section each: what the user sees (file name + fix), and no partial
output. Cases tested elsewhere are re-checked here through the same public entry points, so that this
module alone shows that each one is covered; the longer versions are named in each section.

| bad input                                   | section                  |
|---------------------------------------------|--------------------------|
| corrupt or truncated wav                    | ``test_bad_file_*``      |
| wrong sample rate inside a corpus           | ``test_bad_file_*``      |
| stereo (corpus rejects, CLI downmixes)      | ``test_bad_file_*``, ``test_cli_downmixes_stereo_*`` |
| all-zero source                             | ``test_silent_*``        |
| NaN or Inf samples                          | ``test_bad_file_*``      |
| utterance shorter than the segment          | ``test_short_*``         |
| manifest listing a missing file             | ``test_missing_file_*``, ``test_bad_file_*`` |
| exp dir that cannot be written              | ``test_unwritable_exp_dir`` |
| conf with an unknown key / a wrong type     | ``test_bad_conf_*``      |
| empty CLI input folder                      | ``test_cli_empty_folder`` |
"""
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from twostep_asteroid.data.audio_io import AudioError, MultichannelError
from twostep_asteroid.fileio import atomic_write_json
from twostep_asteroid.data.datasets import (
    MAX_REDRAWS,
    DynamicMixingDataset,
    make_dataset,
    validate_manifests,
)

SR = 8000
N = 4800  # 0.6 s per file
N_MIX = 3
LOGGER = "twostep_asteroid.data.datasets"


def _tone(k, n=N):
    t = np.arange(n) / SR
    return (0.2 * np.sin(2 * np.pi * (150 + 90 * k) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def make_corpus(root, lengths=(N,) * N_MIX, done=True, extra_b=True):
    """A stage-0 style corpus: ``<root>/wav8k/min/tr/{mix,s1,s2}/m<i>.wav`` (16-bit),
    ``<root>/json/tr/{mix,s1,s2,utterances}.json`` and, with ``done``, the ``<root>/.done`` marker.
    The utterance pool is ``s1/m0`` (speaker a) and ``s2/m0`` (speaker b), plus ``s2/m1`` (b) with
    ``extra_b``, so that every dynamic mixture uses ``s1/m0``."""
    root = Path(root)
    jd = root / "json" / "tr"
    jd.mkdir(parents=True)
    lists = {"mix": [], "s1": [], "s2": []}
    for i, n in enumerate(lengths):
        s1, s2 = _tone(2 * i, n), 0.5 * _tone(2 * i + 1, n)
        for name, x in (("s1", s1), ("s2", s2), ("mix", s1 + s2)):
            p = root / "wav8k/min/tr" / name / f"m{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, x, SR, subtype="PCM_16")
            lists[name].append([str(p), n])
    for name, lst in lists.items():
        (jd / f"{name}.json").write_text(json.dumps(lst))
    utts = [{"path": lists["s1"][0][0], "speaker": "a", "n_samples": lengths[0]},
            {"path": lists["s2"][0][0], "speaker": "b", "n_samples": lengths[0]}]
    if extra_b:
        utts.append({"path": lists["s2"][1][0], "speaker": "b", "n_samples": lengths[1]})
    (jd / "utterances.json").write_text(json.dumps(utts))
    if done:
        (root / ".done").write_text('{"config_hash": "test"}\n')
    return jd


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus")


def _dataset(kind, jd, segment=1.0, **kw):
    if kind == "static":
        return make_dataset(jd, n_src=2, sample_rate=SR, segment=segment, **kw)
    return make_dataset(jd, n_src=2, sample_rate=SR, segment=segment, dynamic_mixing=True, n_items=4, **kw)


def _victim(jd):
    """``s1/m0.wav``: in static item 0 and in every dynamic item."""
    return Path(json.loads((jd / "s1.json").read_text())[0][0])


# Damage done to the victim file, and what the message must say (besides the path and the fix).
def _corrupt(p):
    p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage, not audio")


def _truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _wrong_rate(p):
    sf.write(p, _tone(0), 16000, subtype="PCM_16")  # same length, another rate


def _stereo(p):
    x = _tone(0)
    sf.write(p, np.stack([x, x], 1), SR, subtype="PCM_16")


def _with(value):
    def damage(p):
        x = _tone(0)
        x[[100, 2000, 4000]] = value
        sf.write(p, x, SR, subtype="FLOAT")  # float WAV: the only kind that can hold NaN/Inf
    return damage


def _delete(p):
    p.unlink()


BAD_FILES = {
    "corrupt": (_corrupt, AudioError, ["unreadable or corrupt audio"]),
    "truncated": (_truncate, AudioError, [" samples, ", f"lists {N} (truncated"]),
    "wrong_rate": (_wrong_rate, AudioError, ["sample rate 16000 Hz, the corpus is read at 8000 Hz",
                                             "resample this file", "data.sample_rate: 16000"]),
    "stereo": (_stereo, MultichannelError, ["2 channels, corpus files must be mono", "sox in.wav -c 1 out.wav"]),
    "nan": (_with(np.nan), AudioError, ["3 NaN/Inf sample(s) (first at sample 100)"]),
    "inf": (_with(np.inf), AudioError, ["3 NaN/Inf sample(s) (first at sample 100)"]),
    "missing_file": (_delete, AudioError, ["file not found (listed in "]),
}


# ------------------------------------------------------------ corrupt, truncated, rate, stereo, NaN/Inf
@pytest.mark.parametrize("kind", ["static", "dynamic"])
@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_file_names_the_file_and_the_fix(corpus, kind, bad):
    damage, error, fragments = BAD_FILES[bad]
    victim = _victim(corpus)
    damage(victim)
    ds = _dataset(kind, corpus)  # construction reads no audio: cheap, and it does not fail
    with pytest.raises(error) as info:
        ds[0]
    msg = str(info.value)
    assert msg.startswith(f"{victim}: "), msg
    for fragment in fragments:
        assert fragment in msg, msg
    manifest = "s1.json" if kind == "static" else "utterances.json"
    if bad in ("truncated", "missing_file"):
        assert str(corpus / manifest) in msg, msg
    if bad not in ("wrong_rate", "stereo"):  # those two have their own fix first
        assert "Replace it with a good copy." in msg, msg
    # and the alternative: this corpus has a stage-0 completion marker, so it can be rebuilt
    assert f"Or rebuild the corpus: delete {corpus.parent.parent / '.done'} and rerun data preparation" in msg, msg


def test_fix_without_a_build_marker_names_the_manifests(tmp_path):
    jd = make_corpus(tmp_path / "c", done=False)
    _corrupt(_victim(jd))
    with pytest.raises(AudioError, match=f"Replace it with a good copy. Or remove its entry from the manifests in {jd}."):
        _dataset("static", jd)[0]


def test_bad_file_message_survives_a_dataloader_worker(corpus):
    victim = _victim(corpus)
    _truncate(victim)
    loader = torch.utils.data.DataLoader(_dataset("static", corpus), batch_size=1, num_workers=1)
    with pytest.raises(AudioError) as info:
        next(iter(loader))
    assert f"{victim}: " in str(info.value) and "truncated" in str(info.value)


# ------------------------------------------------------------------------------ all-zero source
def test_silent_target_gives_a_finite_asteroid_sisdr():
    """Why a silent source is skipped rather than left to the loss: Asteroid's SI-SDR stays finite
    (EPS: -80 dB, i.e. a loss of +80, with a zero gradient), so the item teaches nothing and
    shifts the logged loss and metrics by a constant."""
    from asteroid.losses import PairwiseNegSDR

    est = torch.randn(1, 2, 800, requires_grad=True)
    target = torch.stack([torch.randn(800), torch.zeros(800)]).unsqueeze(0)
    loss = PairwiseNegSDR("sisdr")(est, target)
    assert torch.isfinite(loss).all()
    assert torch.allclose(loss[0, :, 1], torch.tensor(80.0))
    loss[0, :, 1].sum().backward()
    assert torch.equal(est.grad, torch.zeros_like(est.grad))


def _silence(p):
    sf.write(p, np.zeros(sf.info(str(p)).frames, np.float32), SR, subtype="PCM_16")


def test_silent_source_training_item_is_skipped_and_counted(corpus, caplog):
    silent = Path(json.loads((corpus / "s2.json").read_text())[0][0])
    _silence(silent)
    ds = _dataset("static", corpus, segment=0.5)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        mix, sources = ds[0]
    assert sources.abs().amax(-1).min() > 0  # a replacement item, not the silent one
    assert torch.allclose(mix, sources.sum(0), atol=1e-4)
    counts = ds.counts()
    assert counts["silent_skipped"] >= 1 and counts["silent_kept"] == 0
    assert f"{silent}: all-zero source (item 0 of {corpus}): item skipped" in caplog.text
    assert "Remove this mixture from the manifests or replace the file" in caplog.text
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds.set_epoch(1)  # the per-epoch summary
    assert f"{corpus}: so far {counts['silent_skipped']} item(s) skipped" in caplog.text


def test_silent_source_whole_utterance_is_kept_counted_and_finite(corpus, caplog):
    """Validation/evaluation items (segment=None) keep their index (results are named by it)."""
    from twostep_asteroid.metrics import mixture_sisdr, sisdr_per_example

    silent = Path(json.loads((corpus / "s2.json").read_text())[0][0])
    _silence(silent)
    ds = _dataset("static", corpus, segment=None)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        mix, sources = ds[0]
    assert torch.all(sources[1] == 0) and ds.counts()["silent_kept"] == 1
    assert f"{silent}: all-zero source (item 0 of {corpus}): kept" in caplog.text
    est = sources + 0.01 * torch.randn_like(sources)
    assert torch.isfinite(sisdr_per_example(est[None], sources[None])).all()
    assert torch.isfinite(mixture_sisdr(mix[None], sources[None])).all()


def test_silent_utterance_is_redrawn_and_counted_across_workers(tmp_path):
    jd = make_corpus(tmp_path / "c")
    silent = Path(json.loads((jd / "s2.json").read_text())[0][0])  # one of speaker b's two utterances
    _silence(silent)
    ds = DynamicMixingDataset(jd, segment=0.5, n_items=12, seed=1)
    items = [ds[i] for i in range(12)]
    assert all(src.abs().amax(-1).min() > 0 for _, src in items)  # no silent source returned
    n_skipped = ds.counts()["silent_skipped"]
    assert n_skipped > 0
    fresh = DynamicMixingDataset(jd, segment=0.5, n_items=12, seed=1)
    loader = torch.utils.data.DataLoader(fresh, batch_size=3, num_workers=2)
    batches = list(loader)
    assert torch.equal(torch.cat([m for m, _ in batches]), torch.stack([m for m, _ in items]))
    assert fresh.counts()["silent_skipped"] == n_skipped  # the workers' counts reach the main process


def test_silent_pool_is_a_clear_error(tmp_path):
    jd = make_corpus(tmp_path / "c", extra_b=False)
    silent = Path(json.loads((jd / "s2.json").read_text())[0][0])  # speaker b's only utterance
    _silence(silent)
    with pytest.raises(AudioError, match=f"so were the {MAX_REDRAWS} redraws of item 0"):
        DynamicMixingDataset(jd, segment=0.5, n_items=2)[0]


# ------------------------------------------------------------------- shorter than the segment
def test_short_mixtures_are_padded_counted_and_reported(tmp_path, caplog):
    """Never silently drop everything (Asteroid's loader drops every mixture shorter than the
    segment: here all of them). See also test_data_datasets::test_static_pads_instead_of_dropping."""
    from asteroid.data import Wsj0mixDataset

    jd = make_corpus(tmp_path / "c", lengths=(2400, 3200, 4000))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ds = _dataset("static", jd, segment=1.0)
        dyn = _dataset("dynamic", jd, segment=1.0)
    assert len(ds) == 3 and ds.counts()["padded"] == 3
    assert f"{jd}: 3 of 3 mixtures are shorter than the 1.00 s segment; they are zero-padded" in caplog.text
    assert dyn.counts()["short_utterances"] == 3
    assert f"{jd / 'utterances.json'}: 3 of 3 utterances are shorter than the 1.00 s segment" in caplog.text
    mix, sources = ds[0]
    assert mix.shape == (SR,) and torch.all(sources[:, 2400:] == 0) and sources[:, :2400].abs().sum() > 0
    assert dyn[0][0].shape == (SR,)
    assert len(Wsj0mixDataset(str(jd), 2, SR, 1.0)) == 0


# ------------------------------------------------------------------ manifest lists a missing file
def test_missing_file_is_named_before_and_during_training(corpus):
    victim = _victim(corpus)
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=f"audio file listed in {corpus} not found: {victim}"):
        validate_manifests(corpus, check_files=True)
    with pytest.raises(FileNotFoundError, match=f"{victim}"):
        make_dataset(corpus, segment=1.0, check_files=True)
    with pytest.raises(AudioError, match=f"{victim}: file not found \\(listed in {corpus / 's1.json'}\\)"):
        make_dataset(corpus, segment=1.0)[0]  # without the up-front check: at read time
    (corpus / "s2.json").unlink()
    with pytest.raises(FileNotFoundError, match=f"source s2 manifest not found: {corpus / 's2.json'}"):
        make_dataset(corpus)


# -------------------------------------------------------------------------- unwritable exp dir
def test_unwritable_exp_dir(corpus, tmp_path):
    """Also test_train::test_unwritable_experiment_folder_is_reported. Runs as root here, so a
    regular file stands where a folder is needed (chmod would not stop root)."""
    from twostep_asteroid.config import ConfigError, load_config
    from twostep_asteroid.train import train_step1

    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError) as info:
        train_step1(load_config(None), corpus.parent, blocker / "exp")
    msg = str(info.value)
    assert msg.startswith(f"Cannot write to the experiment folder {blocker / 'exp'}: ")
    assert "Choose another --exp_dir/--tag or fix its permissions." in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written anywhere
    assert blocker.read_text() == "a file, not a folder"


# ---------------------------------------------------------------- conf: unknown key, wrong type
@pytest.mark.parametrize("text, message", [
    ("step2:\n  max_stepz: 3\n", "step2.max_stepz"),
    ("step2:\n  lr: fast\n", "step2.lr"),
    ("data:\n  segment: [1, 2]\n", "data.segment"),
])
def test_bad_conf_fails_before_anything_runs(tmp_path, capsys, text, message):
    """As run.sh calls it (``config freeze``), and as the training entry point loads it. Also
    test_config.py and test_train::test_config_errors_name_the_key."""
    from twostep_asteroid import config, train

    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    out = tmp_path / "exp" / "conf.yml"
    assert config.main(["freeze", "--conf", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Configuration error: ") and message in err and str(bad) in err
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        train.main(["step1", "--conf", str(bad), "--data_dir", str(tmp_path), "--exp_dir", str(tmp_path / "exp")])
    assert not (tmp_path / "exp").exists()  # no conf.yml, no experiment folder


# ---------------------------------------------------------------------------------- the CLI
def test_cli_empty_folder(tmp_path, capsys):
    """Exit status 2 before the model is even loaded. Also test_cli::test_nothing_to_separate_is_a_usage_error."""
    from twostep_asteroid.cli import separate_main

    (tmp_path / "empty").mkdir()
    code = separate_main([str(tmp_path / "empty"), "--model", str(tmp_path / "no-model"),
                          "--out_dir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"twostep-separate: error: no audio files in folder {tmp_path / 'empty'}" in err
    assert "use --recursive for sub-folders" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def model_dir(tmp_path):
    from twostep_asteroid import TwoStepTDCN
    from twostep_asteroid.serialization import save_pretrained

    from tests.synthetic import SMALL

    return str(save_pretrained(TwoStepTDCN(n_src=2, **SMALL).eval(), tmp_path / "model"))


def test_cli_downmixes_stereo_with_a_notice_and_skips_bad_files(tmp_path, model_dir, capsys):
    """The corpus rejects stereo (above); the CLI downmixes it, saying so. Unreadable and truncated
    files are skipped, named, and leave no output. Also test_cli::test_folder_with_an_unreadable_file."""
    from twostep_asteroid.cli import separate_main

    inp = tmp_path / "in"
    inp.mkdir()
    x = _tone(0, 4000)
    sf.write(inp / "stereo.wav", np.stack([x, 0.5 * x], 1), SR)
    _corrupt(inp / "corrupt.wav")
    sf.write(inp / "short.wav", x, SR)
    _truncate(inp / "short.wav")  # a truncated wav is still readable: separated as it is
    (inp / "header_only.wav").write_bytes((inp / "short.wav").read_bytes()[:44])
    nan = x.copy()
    nan[1000] = np.nan
    sf.write(inp / "nan.wav", nan, SR, subtype="FLOAT")
    out = tmp_path / "out"
    code = separate_main([str(inp), "--model", model_dir, "--out_dir", str(out), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{inp / 'stereo.wav'}: 2 channels, downmixed to mono (channel mean) before separation." in err
    assert f"Skipped {inp / 'corrupt.wav'}: cannot read {inp / 'corrupt.wav'} as audio" in err
    assert f"Skipped {inp / 'header_only.wav'}: {inp / 'header_only.wav'} holds no audio samples" in err
    assert (f"Skipped {inp / 'nan.wav'}: {inp / 'nan.wav'}: 1 NaN/Inf sample(s) from sample 1000 on; "
            "nothing written. Repair or re-export the file.") in err
    assert "3 file(s) failed:" in err
    assert sorted(os.listdir(out)) == ["short_s1.wav", "short_s2.wav", "stereo_s1.wav", "stereo_s2.wav"]
    assert sf.info(str(out / "stereo_s1.wav")).channels == 1


# ---------------------------------------------------------------------------- no partial output
def test_interrupted_separation_leaves_no_file(tmp_path, model_dir):
    """A failure (or Ctrl-C) in the middle of a file: no half-written output, no temporary file."""
    from twostep_asteroid.inference import load_model, separate_file

    model = load_model(model_dir, "cpu")
    calls = {"n": 0}
    forward = model.forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return forward(*args, **kwargs)

    model.forward = failing
    sf.write(tmp_path / "long.wav", _tone(0, 4 * SR), SR)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        separate_file(model, tmp_path / "long.wav", out, chunk_seconds=0.5, notify=lambda m: None)
    assert calls["n"] == 3
    assert list(out.iterdir()) == []  # the outputs went to temporary files, removed on failure


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    """Manifests, results and summaries go through atomic_write_*: a crash before the rename
    leaves the previous file intact and no temporary file (checkpoints: AtomicModelCheckpoint,
    corpus wavs: test_data_prompts::test_crash_then_rerun_repairs)."""
    target = tmp_path / "mix.json"
    atomic_write_json(target, [["a.wav", 1]])

    def crash(src, dst):
        raise KeyboardInterrupt("kill before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, [["b.wav", 2]] * 1000)
    monkeypatch.undo()
    assert json.loads(target.read_text()) == [["a.wav", 1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mix.json"]


def _run_sh(tmp_path, exp_root, *options):
    import subprocess

    recipe = Path(__file__).resolve().parents[1] / "egs" / "wsj0-2mix" / "twostep"
    return subprocess.run(["./run.sh", "--stage", "0", "--stop_stage", "0", "--exp_root", str(exp_root),
                           "--data_root", str(tmp_path / "data"), *options],
                          cwd=recipe, capture_output=True, text=True, timeout=120)


def test_run_sh_bad_override_leaves_no_experiment_folder(tmp_path):
    """run.sh validates the configuration (with its overrides) before creating exp/<tag>/."""
    proc = _run_sh(tmp_path, tmp_path / "exp", "--overrides", "step2.max_stepz=3")
    assert proc.returncode != 0
    assert "Unknown key step2.max_stepz" in proc.stderr
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def test_run_sh_unwritable_exp_root_is_named(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    proc = _run_sh(tmp_path, blocker / "exp")
    assert proc.returncode != 0
    assert f"Cannot write {blocker / 'exp' / 'default_prompts' / 'conf.yml'}: " in proc.stderr
    assert "Choose another --exp_root/--tag or fix its permissions." in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


def test_run_sh_refuses_enh_single_saying_why(tmp_path):
    """LibriMix's mix_single (one speaker + noise) is enhancement: refused before anything is made."""
    proc = _run_sh(tmp_path, tmp_path / "exp", "--librimix_dir", str(tmp_path / "Libri2Mix"),
                   "--task", "enh_single")
    assert proc.returncode != 0
    assert "--task enh_single" in proc.stderr and "mix_single" in proc.stderr
    assert "softmax mask over the" in proc.stderr and "--task sep_noisy" in proc.stderr
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("options, folder", [
    (["--librimix_dir"], "librimix"),
    (["--librimix_dir", "--task", "sep_noisy", "--train_set", "both"], "librimix_sep_noisy_both"),
    (["--wham_dir", "--task", "sep_noisy", "--mode", "max"], "wham_sep_noisy_max"),
    (["--esc50_dir", "--esc10", "true"], "esc10"),
    (["--esc50_dir", "--overrides", "data.n_src=3 data.sample_rate=16000"], "esc50_3spk_16k"),
])
def test_run_sh_one_data_folder_per_option_set(tmp_path, options, folder):
    """Each option set has its own corpus folder, named by the options that are not the defaults
    (stage 0 names it, then stops: the corpus folder given does not exist)."""
    options = [options[0], str(tmp_path / "missing"), *options[1:]]
    proc = _run_sh(tmp_path, tmp_path / "exp", *options)
    assert proc.returncode != 0 and "does not look like" in proc.stdout  # stage 0 logs through tee
    assert f"-> {tmp_path / 'data' / folder}\n" in proc.stdout, proc.stdout


def test_atomic_savefig_writes_the_figure_and_no_temporary(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twostep_asteroid.fileio import atomic_savefig

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_savefig(fig, tmp_path / "report.png")
    plt.close(fig)
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]
