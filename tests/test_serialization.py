"""A training run's best model under Asteroid's name, and runs made before it still found."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from twostep_asteroid import TwoStepFrontEnd
from twostep_asteroid.serialization import BEST_MODEL_NAME, OLD_BEST_MODEL_NAME, best_model_path
from twostep_asteroid.train import DONE, train_step1

ROOT = Path(__file__).resolve().parents[1]


def test_best_model_name_is_asteroids_and_an_old_run_is_still_found(tmp_path):
    assert BEST_MODEL_NAME == "best_model.pth"
    assert best_model_path(tmp_path) == tmp_path / BEST_MODEL_NAME  # where training writes
    (tmp_path / OLD_BEST_MODEL_NAME).write_bytes(b"")
    assert best_model_path(tmp_path) == tmp_path / OLD_BEST_MODEL_NAME  # a run made before the rename
    (tmp_path / BEST_MODEL_NAME).write_bytes(b"")
    assert best_model_path(tmp_path) == tmp_path / BEST_MODEL_NAME  # both: the new one


def test_a_finished_old_run_returns_its_best_pth_which_loads(tmp_path):
    """train step1 on a finished run made before the rename: skipped, and the path it returns (what
    step 2 is then given as --front_end) is the run's best.pth."""
    front_end = TwoStepFrontEnd(n_src=2, n_filters=16, kernel_size=16)
    torch.save(front_end.serialize(), tmp_path / OLD_BEST_MODEL_NAME)
    (tmp_path / DONE).write_text("{}")
    path = train_step1(None, None, tmp_path)
    assert path == tmp_path / OLD_BEST_MODEL_NAME
    loaded = TwoStepFrontEnd.from_pretrained(str(path))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), front_end.state_dict().values()))


def test_the_recipe_asks_python_for_the_name(tmp_path):
    """run.sh and the local scripts call `python -m twostep_asteroid.serialization best EXP_DIR`."""
    env = dict(os.environ, TWOSTEP_ASTEROID_LIGHT_IMPORT="1")
    cmd = [sys.executable, "-m", "twostep_asteroid.serialization", "best", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tmp_path / BEST_MODEL_NAME)
    (tmp_path / OLD_BEST_MODEL_NAME).write_bytes(b"")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tmp_path / OLD_BEST_MODEL_NAME)
    assert "serialization best" in (ROOT / "egs" / "wsj0-2mix" / "twostep" / "run.sh").read_text()
