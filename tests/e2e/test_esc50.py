"""The recipe, stages 0-3, on non-speech sounds: ``--esc50_dir`` on a fake ESC-50 download (the real
layout and CSV, 4-5 s synthetic 44.1 kHz clips), with conf/tiny.yml (a minute or two on 2 cores)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fake_esc50 import make_esc50

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"


@pytest.mark.slow
def test_recipe_on_esc50_stages_0_to_3(tmp_path):
    # 4-5 s clips: longer than the 4 s mixtures and than tiny.yml's 1 s training / 2 s validation crops
    src = make_esc50(tmp_path / "src", per_fold=(1, 1, 1, 1, 2), dur=(4.0, 5.0))
    cmd = ["./run.sh", "--esc50_dir", str(src), "--stage", "0", "--stop_stage", "3", "--conf", "conf/tiny.yml",
           "--tag", "esc50", "--data_root", str(tmp_path / "data"), "--exp_root", str(tmp_path / "exp")]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(cmd, cwd=RECIPE, capture_output=True, text=True, timeout=1200, env=env)
    assert out.returncode == 0, f"run.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    data = tmp_path / "data" / "esc50"
    assert (data / ".done").is_file()
    corpus = json.loads((data / "corpus.json").read_text())
    assert corpus["splits"]["tt"]["n_mixtures"] == 10 and corpus["splits"]["cv"]["n_mixtures"] == 20  # tiny.yml
    assert corpus["licenses"][0]["license"] == "CC BY-NC 3.0"
    exp = tmp_path / "exp" / "esc50"
    assert "dynamic_mixing: true" in (exp / "conf.yml").read_text()
    results = json.loads((exp / "eval" / "results.json").read_text())
    for key in ("si_sdr_imp", "sdr_imp", "oracle_latent_si_sdr_imp"):
        assert key in results
    with open(exp / "eval" / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == results["n_utterances"] == 10
    assert (exp / "eval" / "report.html").is_file()
    assert "stage 0: data preparation (esc50)" in out.stdout + out.stderr


@pytest.mark.slow
def test_stage0_esc10_subset_and_manifest_check(tmp_path):
    """``--esc10 true`` reaches the builder (only ESC-10 classes, their CC BY 3.0 licence), and
    ``local/check_manifests.sh`` accepts the on-the-fly training pool (no tr/mix.json). The subset
    gets its own folder, ``data/esc10``."""
    src = make_esc50(tmp_path / "src", per_fold=(1, 1, 1, 1, 2), dur=(4.0, 5.0))
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    base = ["./run.sh", "--esc50_dir", str(src), "--stop_stage", "0", "--conf", "conf/tiny.yml", "--tag", "esc10",
            "--data_root", str(tmp_path / "data"), "--exp_root", str(tmp_path / "exp")]
    bad = subprocess.run(base + ["--esc10", "yes"], cwd=RECIPE, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode != 0 and "--esc10 takes true or false, not 'yes'" in bad.stderr
    assert not (tmp_path / "exp" / "esc10").exists()  # refused before anything is created
    out = subprocess.run(base + ["--esc10", "true"], cwd=RECIPE, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, f"run.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    data = tmp_path / "data" / "esc10"  # its own folder, beside data/esc50
    assert not (tmp_path / "data" / "esc50").exists()
    corpus = json.loads((data / "corpus.json").read_text())
    assert corpus["name"] == "esc10-2mix" and corpus["licenses"][0]["license"] == "CC BY 3.0"
    assert not (data / "json" / "tr" / "mix.json").exists()
    check = [str(RECIPE / "local" / "check_manifests.sh")]
    assert subprocess.run(check + [str(data / "json")], capture_output=True).returncode == 0
    missing = subprocess.run(check + [str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 1 and "build the corpus first" in missing.stderr
