"""The recipe, stages 0-3, on your own data: a fake Libri2Mix folder and a fake WHAM! folder (the
real layouts, short synthetic signals), with conf/tiny.yml (about a minute each on 2 cores)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fake_corpora import make_librimix, make_wham

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"
N_TT = 4  # test mixtures of the fake corpora (conf/tiny.yml shows 3 listening examples)
LENGTH, STEP = 12000, 400  # 1.5 s and more at 8 kHz: longer than tiny.yml's 1 s training segment


def _run(tmp_path, *extra):
    cmd = ["./run.sh", "--conf", "conf/tiny.yml", "--tag", "own", "--data_root", str(tmp_path / "data"),
           "--exp_root", str(tmp_path / "exp"), *extra]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(cmd, cwd=RECIPE, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, f"run.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stderr + out.stdout


def _librimix(base):
    root = make_librimix(base, sizes=(("train-360", 8), ("dev", 3), ("test", N_TT)),
                         n_samples=LENGTH, step=STEP)
    return ["--librimix_dir", str(root)], "librimix"


def _wham(base):
    root = make_wham(base, sizes=(("tr", 8), ("cv", 3), ("tt", N_TT)), n_samples=LENGTH, step=STEP)
    return ["--wham_dir", str(root), "--task", "sep_noisy"], "wham_sep_noisy"  # its own data folder


@pytest.mark.slow
@pytest.mark.parametrize("corpus", [_librimix, _wham], ids=["librimix_sep_clean", "wham_sep_noisy"])
def test_recipe_on_own_data_stages_0_to_3(tmp_path, corpus):
    options, name = corpus(tmp_path / "src")
    log = _run(tmp_path, *options, "--stage", "0", "--stop_stage", "3")
    data = tmp_path / "data" / name
    assert (data / ".done").is_file()
    for split in ("tr", "cv", "tt"):
        assert json.loads((data / "json" / split / "mix.json").read_text())
    exp = tmp_path / "exp" / "own"
    noisy = "sep_noisy" in options
    assert (data / "json" / "tt" / "noise.json").is_file() == noisy
    conf = (exp / "conf.yml").read_text()
    assert f"dynamic_mixing: {'false' if noisy else 'true'}" in conf  # noisy: the static mixtures
    results = json.loads((exp / "eval" / "results.json").read_text())
    for key in ("si_sdr_imp", "sdr_imp", "stoi", "pesq"):
        assert key in results
    with open(exp / "eval" / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == results["n_utterances"] == N_TT
    assert (exp / "eval" / "report.html").is_file()
    assert "| TwoStepTDCN |" in log
    # stage 0 again: the manifests are up to date, nothing is rechecked
    log = _run(tmp_path, *options, "--stage", "0", "--stop_stage", "0")
    assert "is up to date: nothing to do" in log
