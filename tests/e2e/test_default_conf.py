"""conf/default.yml as a whole, changed only in its step counts: two DDP processes, the compiled
masker, whole-utterance validation and the wall-clock cap, on the embedded corpus as stage 0 builds
it. Nothing else runs this combination before a user does."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"
DEB_CACHE = Path(os.environ.get("TWOSTEP_DEB_CACHE", Path.home() / ".cache" / "twostep-asteroid" / "debs"))
STEPS = ("step1.max_steps=12 step1.val_every_n_steps=6 "
         "step2.max_steps=12 step2.val_every_n_steps=6 step2.ckpt_every_n_steps=6")


@pytest.mark.slow
def test_default_conf_with_fewer_steps(tmp_path):
    cmd = ["./run.sh", "--stop_stage", "2", "--tag", "default_steps", "--data_root", str(tmp_path / "data"),
           "--exp_root", str(tmp_path / "exp"), "--deb_cache", str(DEB_CACHE), "--overrides", STEPS]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    out = subprocess.run(cmd, cwd=RECIPE, capture_output=True, text=True, timeout=2400, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    exp = tmp_path / "exp" / "default_steps"
    conf = (exp / "conf.yml").read_text()
    for line in ("devices: 2", "strategy: ddp", "compile: true", "val_segment: null", "max_minutes: 45.0"):
        assert line in conf, line
    step2 = json.loads((exp / "step2" / "summary.json").read_text())
    assert step2["global_step"] == 12 and step2["full_budget"] is True
    assert step2["masker_compiled_graphs"] > 0, "the default conf's masker ran eager"
    # Two validations (steps 6 and 12) on whole utterances, logged once (rank 0).
    (metrics,) = (exp / "step2" / "logs").glob("version_*/metrics.csv")
    with open(metrics) as f:
        val_steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("val_loss")]
    assert len(val_steps) == 2
    assert "step2: 12 of 12 steps" in log and "full budget" in log
