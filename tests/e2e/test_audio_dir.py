"""The recipe, stages 0-3, on your own recordings: ``--audio_dir`` on a fake folder with one subfolder
per speaker (wav 16 kHz stereo, flac/ogg 8 and 22.05 kHz, synthetic speech), two speakers held out for
the unseen-speaker test, with conf/tiny.yml (a minute or two on 2 cores)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_data_audio_dir import make_audio_dir

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"


@pytest.mark.slow
def test_recipe_on_an_audio_dir_stages_0_to_3(tmp_path):
    src = make_audio_dir(tmp_path / "src" / "my_voices", counts=(12, 4, 4))
    cmd = ["./run.sh", "--audio_dir", str(src), "--held_out", "dave,erin", "--stage", "0", "--stop_stage", "3",
           "--conf", "conf/tiny.yml", "--tag", "own_audio", "--data_root", str(tmp_path / "data"),
           "--exp_root", str(tmp_path / "exp")]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(cmd, cwd=RECIPE, capture_output=True, text=True, timeout=1200, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, f"run.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert "stage 0: data preparation (audio_dir)" in log and "resampled to 8000 Hz" in log
    data = tmp_path / "data" / "audio_dir"
    assert (data / ".done").is_file() and (data / "mixtures.csv").is_file()
    corpus = json.loads((data / "corpus.json").read_text())
    assert corpus["splits"]["tt"]["n_mixtures"] == 10 and corpus["splits"]["tr"]["n_mixtures"] == 200  # tiny.yml
    assert corpus["speakers_per_split"]["tt_unseen"] == ["dave", "erin"]
    assert corpus["train_speakers"] == ["alice", "bob", "carol"]
    exp = tmp_path / "exp" / "own_audio"
    results = json.loads((exp / "eval" / "results.json").read_text())
    for key in ("si_sdr_imp", "sdr_imp", "stoi", "pesq"):
        assert key in results
    with open(exp / "eval" / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == results["n_utterances"] == 10
    assert results["unseen"]["n_utterances"] > 0  # the held-out speakers, beside the seen test
    assert (exp / "eval" / "report.html").is_file()
    # a rerun of stage 0 finds the corpus up to date
    rerun = subprocess.run(cmd[:5] + ["--stage", "0", "--stop_stage", "0"] + cmd[9:], cwd=RECIPE,
                           capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 0 and "up to date" in rerun.stdout + rerun.stderr
