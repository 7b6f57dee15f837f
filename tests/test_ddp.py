"""Two CPU processes (Lightning DDP over gloo) train a tiny step 1 and step 2; only rank 0 writes."""
import json
import os
import subprocess
import sys

import pytest

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.serialization import BEST_MODEL_NAME
from tests.test_train import TINY, corpus  # noqa: F401  (module-scoped corpus fixture)

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]


def _train(step, corpus, exp, *extra):
    cmd = [sys.executable, "-m", "twostep_asteroid.train", step, "--data_dir", str(corpus), "--exp_dir", str(exp),
           *extra, *TINY, *DDP]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.slow
def test_ddp_two_processes_train_both_steps(corpus, tmp_path):  # noqa: F811
    log = _train("step1", corpus, tmp_path / "step1")
    assert "distributed_backend=gloo" in log or "gloo" in log
    assert log.count("Step 1: oracle SI-SDRi") == 1, "only rank 0 reports"
    _train("step2", corpus, tmp_path / "step2", "--front_end", str(tmp_path / "step1" / BEST_MODEL_NAME))
    model = TwoStepTDCN.from_pretrained(str(tmp_path / "step2" / BEST_MODEL_NAME))
    assert model.n_src == 2
    summary = json.loads((tmp_path / "step2" / "summary.json").read_text())
    assert summary["global_step"] == 4
    # One validation per val_every_n_steps (2) optimizer steps, whatever the number of processes:
    # the dynamic-mixing epoch is sized for both ranks together.
    import csv

    rows = list(csv.DictReader((tmp_path / "step2" / "logs" / "version_0" / "metrics.csv").open()))
    assert len([r for r in rows if r.get("val_loss")]) == 2, rows
    # Rank 0 alone writes: one logger version, no temporary or per-rank leftovers.
    names = sorted(p.relative_to(tmp_path / "step2").as_posix() for p in (tmp_path / "step2").rglob("*"))
    assert not [n for n in names if n.endswith(".tmp")], names
    assert [n for n in names if n.startswith("logs/version_")] == ["logs/version_0", "logs/version_0/hparams.yaml",
                                                                   "logs/version_0/metrics.csv"]
