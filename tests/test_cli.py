"""The ``twostep-separate`` command: inputs (files, folders, globs), outputs, errors, exit codes."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.cli import separate_main
from twostep_asteroid.serialization import save_pretrained

from tests.synthetic import SMALL

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return str(save_pretrained(TwoStepTDCN(n_src=2, **SMALL).eval(), tmp_path / "model"))


def write(path, seconds=1.0, rate=8000, channels=1, seed=0):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    sf.write(path, data if channels > 1 else data[:, 0], rate)
    return path


def run(argv):
    return separate_main([*argv, "--quiet", "--device", "cpu"])


def test_folder_with_an_unreadable_file(tmp_path, model_dir, capsys):
    write(tmp_path / "in" / "a.wav", 1.5)
    write(tmp_path / "in" / "b.flac", 1.0, rate=16000, channels=2)
    (tmp_path / "in" / "broken.wav").write_bytes(b"this is not audio")
    (tmp_path / "in" / "notes.txt").write_text("ignored: not an audio extension")
    out = tmp_path / "out"
    code = run([str(tmp_path / "in"), "--model", model_dir, "--out_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(os.listdir(out)) == ["a_s1.wav", "a_s2.wav", "b_s1.wav", "b_s2.wav"]
    assert "Skipped" in err and "broken.wav" in err and "1 file(s) failed" in err
    assert "Separated 2/3" in err
    assert "downmixed to mono" in err and "16000 Hz -> 8000 Hz" in err  # notices for b.flac
    b1, rate = sf.read(out / "b_s1.wav")
    assert rate == 16000 and b1.shape == (16000,)
    a1, rate = sf.read(out / "a_s1.wav")
    assert rate == 8000 and a1.shape == (12000,) and sf.info(str(out / "a_s1.wav")).subtype == "FLOAT"


def test_glob_and_files_all_good(tmp_path, model_dir, capsys):
    for name in ("x1.wav", "x2.wav", "y.wav"):
        write(tmp_path / name, 0.5)
    out = tmp_path / "sep"
    code = run([str(tmp_path / "x*.wav"), str(tmp_path / "y.wav"), str(tmp_path / "x1.wav"),
                "--model", model_dir, "--out_dir", str(out), "--chunk_seconds", "0.2", "--hop_seconds", "0.15",
                "--subtype", "PCM_16", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["x1_s1.wav", "x1_s2.wav", "x2_s1.wav", "x2_s2.wav", "y_s1.wav", "y_s2.wav"]
    assert sf.info(str(out / "y_s2.wav")).subtype == "PCM_16"


def test_no_resample_keeps_the_file_rate(tmp_path, model_dir, capsys):
    write(tmp_path / "hi.wav", 0.5, rate=16000)
    code = run([str(tmp_path / "hi.wav"), "--model", model_dir, "--out_dir", str(tmp_path / "o"), "--no_resample"])
    assert code == 0
    assert "without resampling" in capsys.readouterr().err
    assert sf.info(str(tmp_path / "o" / "hi_s1.wav")).samplerate == 16000


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp: (tmp / "empty").mkdir() or str(tmp / "empty"), "no audio files in folder"),
    (lambda tmp: str(tmp / "missing.wav"), "no such file or folder"),
    (lambda tmp: str(tmp / "*.nothing"), "no file matches"),
])
def test_nothing_to_separate_is_a_usage_error(tmp_path, model_dir, capsys, make_input, message):
    code = run([make_input(tmp_path), "--model", model_dir, "--out_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not (tmp_path / "o").exists()


def test_model_that_cannot_be_loaded(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    write(tmp_path / "a.wav", 0.2)
    code = run([str(tmp_path / "a.wav"), "--model", "someone/not-cached", "--out_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "someone/not-cached" in err and "hf download" in err


def test_same_name_from_two_folders_is_not_overwritten(tmp_path, model_dir, capsys):
    write(tmp_path / "d1" / "mix.wav", 0.3, seed=1)
    write(tmp_path / "d2" / "mix.wav", 0.3, seed=2)
    code = run([str(tmp_path / "d1" / "mix.wav"), str(tmp_path / "d2" / "mix.wav"), "--model", model_dir,
                "--out_dir", str(tmp_path / "o")])
    assert code == 1 and "would overwrite" in capsys.readouterr().err


def test_module_entry_point_in_a_subprocess(tmp_path, model_dir):
    write(tmp_path / "a.wav", 0.5)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "twostep_asteroid.cli", str(tmp_path / "a.wav"), "--model",
                           model_dir, "--out_dir", str(tmp_path / "o"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["a_s1.wav", "a_s2.wav"]
    assert "Separated 1/1" in proc.stderr


def test_recursive_folder_mirrors_sub_folders(tmp_path, model_dir, capsys):
    write(tmp_path / "data" / "top.wav", 0.3)
    write(tmp_path / "data" / "sub" / "deep.wav", 0.3)
    out = tmp_path / "data" / "separated"  # inside the input folder: its files are not inputs
    assert run([str(tmp_path / "data"), "--model", model_dir, "--out_dir", str(out), "-r"]) == 0
    assert run([str(tmp_path / "data"), "--model", model_dir, "--out_dir", str(out), "-r"]) == 0  # rerun
    assert "2 file(s)" in capsys.readouterr().err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == [
        "sub/deep_s1.wav", "sub/deep_s2.wav", "top_s1.wav", "top_s2.wav"]


def test_bad_arguments_exit_2(tmp_path, model_dir):
    write(tmp_path / "a.wav", 0.2)
    for extra in (["--subtype", "NOPE"], ["--hop_seconds", "20"], ["--chunk_seconds", "-1"]):
        with pytest.raises(SystemExit) as info:
            run([str(tmp_path / "a.wav"), "--model", model_dir, *extra])
        assert info.value.code == 2


# --- --stream ---------------------------------------------------------------------------------
@pytest.fixture
def causal_dir(tmp_path):
    torch.manual_seed(0)
    model = TwoStepTDCN(n_src=2, **SMALL, norm_type="cLN", causal=True).eval()
    return model, str(save_pretrained(model, tmp_path / "causal"))


def _stream_cli(args, stdin, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "twostep_asteroid.cli", "--stream", *args], input=stdin,
                          capture_output=True, timeout=120, env=env, cwd=tmp_path)


def test_stream_stdin_to_interleaved_stdout_equals_the_offline_model(tmp_path, causal_dir):
    model, folder = causal_dir
    pcm = (3000 * np.random.default_rng(0).standard_normal(8000 + 77)).clip(-32768, 32767).astype("<i2")
    proc = _stream_cli(["--model", folder, "--block_ms", "13", "--report_seconds", "0.5"], pcm.tobytes(), tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = np.frombuffer(proc.stdout, dtype="<i2").reshape(-1, 2).T  # interleaved s1, s2
    with torch.no_grad():
        ref = model(torch.from_numpy(pcm.astype(np.float32) / 32768)[None])[0].numpy()
    ref = np.clip(np.round(ref * 32768), -32768, 32767)
    assert out.shape == ref.shape == (2, len(pcm))
    assert np.abs(out - ref).max() <= 1  # one LSB: float32 rounding at the quantisation step
    err = proc.stderr.decode()
    assert "latency 16 samples (2 ms)" in err and "compute per block" in err and "RTF" in err


def test_stream_to_per_source_float_files(tmp_path, causal_dir):
    model, folder = causal_dir
    wav = (0.2 * np.random.default_rng(1).standard_normal(3001)).astype("<f4")
    proc = _stream_cli(["--model", folder, "--in_format", "f32le", "--out_format", "f32le",
                        "--stream_out", str(tmp_path / "sep_s{src}.raw"), "-q"], wav.tobytes(), tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    with torch.no_grad():
        ref = model(torch.from_numpy(wav.copy())[None])[0].numpy()
    for i in range(2):
        out = np.fromfile(tmp_path / f"sep_s{i + 1}.raw", dtype="<f4")
        np.testing.assert_allclose(out, ref[i], rtol=0, atol=1e-5)


def test_stream_refuses_non_causal_models_files_and_other_rates(model_dir, causal_dir, capsys):
    assert separate_main(["--stream", "--model", model_dir]) == 2
    assert "not a causal" in capsys.readouterr().err
    assert separate_main(["--stream", "--model", causal_dir[1], "--rate", "16000"]) == 2
    assert "resample" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        separate_main(["--stream", "a.wav", "--model", causal_dir[1]])
    assert info.value.code == 2
