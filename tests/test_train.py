"""Training entry points on a tiny corpus built in the test: outputs, skip when done, resume."""
import json
import subprocess
import sys
import time

import pytest
import torch

from twostep_asteroid import TwoStepFrontEnd, TwoStepTDCN
from twostep_asteroid.config import ConfigError, freeze_config, load_config
from twostep_asteroid.data.prompts import CorpusConfig, build_corpus
from twostep_asteroid.serialization import BEST_MODEL_NAME
from twostep_asteroid.train import DONE, check_writable, train_step1, train_step2
from tests.test_data_prompts import make_fake_tree

TINY = [
    "data.segment=0.5", "data.val_segment=0.5", "data.num_workers=0",
    "front_end.n_filters=16", "front_end.kernel_size=16", "front_end.stride=8",
    "step1.batch_size=2", "step1.max_steps=4", "step1.val_every_n_steps=2", "step1.limit_val_batches=1",
    "masker.bn_chan=8", "masker.hid_chan=8", "masker.n_blocks=2", "masker.n_repeats=1",
    "step2.batch_size=2", "step2.max_steps=4", "step2.val_every_n_steps=2", "step2.limit_val_batches=1",
    "step2.ckpt_every_n_steps=2",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tree = make_fake_tree(tmp_path_factory.mktemp("prompts_src"))
    out = tmp_path_factory.mktemp("corpus") / "prompts"
    build_corpus([tree], out, CorpusConfig(n_tr=12, n_cv=4, n_tt=4, seed=3), progress=False)
    return out / "json"


@pytest.fixture(scope="module")
def step1_dir(corpus, tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp") / "step1"
    train_step1(load_config(None, TINY), corpus, exp)
    return exp


def test_step1_writes_a_loadable_front_end_and_its_oracle(step1_dir):
    assert (step1_dir / DONE).is_file()
    summary = json.loads((step1_dir / "summary.json").read_text())
    assert summary["global_step"] == 4
    assert isinstance(summary["val_oracle_sisdri"], float)
    front_end = TwoStepFrontEnd.from_pretrained(str(step1_dir / BEST_MODEL_NAME))
    assert front_end.get_model_args()["n_filters"] == 16
    assert (step1_dir / "logs" / "version_0" / "metrics.csv").is_file()
    assert (step1_dir / "conf.yml").is_file()


def test_finished_step_is_skipped(step1_dir, corpus):
    before = (step1_dir / BEST_MODEL_NAME).stat().st_mtime_ns
    train_step1(load_config(None, TINY), corpus, step1_dir)
    assert (step1_dir / BEST_MODEL_NAME).stat().st_mtime_ns == before


def test_step2_trains_on_the_frozen_encoder_and_resumes(step1_dir, corpus, tmp_path):
    exp = tmp_path / "step2"
    train_step2(load_config(None, TINY), corpus, exp, step1_dir / BEST_MODEL_NAME)
    model = TwoStepTDCN.from_pretrained(str(exp / BEST_MODEL_NAME))
    front_end = TwoStepFrontEnd.from_pretrained(str(step1_dir / BEST_MODEL_NAME))
    assert torch.equal(model.encoder.filterbank.filters(), front_end.encoder.filterbank.filters())
    assert not _same_weights(model.decoder, front_end.decoder)  # step2.train_decoder: true, the default
    assert json.loads((exp / "summary.json").read_text())["global_step"] == 4
    # More steps asked of an interrupted run (no done marker): it continues from step 4, not 0.
    (exp / DONE).unlink()
    train_step2(load_config(None, TINY + ["step2.max_steps=6"]), corpus, exp, step1_dir / BEST_MODEL_NAME)
    assert json.loads((exp / "summary.json").read_text())["global_step"] == 6
    assert min(_logged_steps(exp / "logs" / "version_1" / "metrics.csv")) >= 4
    assert max(_logged_steps(exp / "logs" / "version_0" / "metrics.csv")) <= 4


def _same_weights(module, other):
    theirs = other.state_dict()
    return all(torch.equal(value, theirs[key]) for key, value in module.state_dict().items())


def test_step2_train_decoder_off_freezes_the_whole_front_end(step1_dir, corpus, tmp_path):
    exp = tmp_path / "step2"
    train_step2(load_config(None, TINY + ["step2.train_decoder=false"]), corpus, exp, step1_dir / BEST_MODEL_NAME)
    model = TwoStepTDCN.from_pretrained(str(exp / BEST_MODEL_NAME))
    front_end = TwoStepFrontEnd.from_pretrained(str(step1_dir / BEST_MODEL_NAME))
    assert _same_weights(model.encoder, front_end.encoder) and _same_weights(model.decoder, front_end.decoder)


@pytest.mark.slow
def test_step2_with_a_compiled_masker_saves_plain_weights(step1_dir, corpus, tmp_path):
    """trainer.compile: the masker is compiled in place, so best_model.pth has the usual keys and loads
    into an uncompiled model."""
    exp = tmp_path / "step2_compiled"
    train_step2(load_config(None, TINY + ["trainer.compile=true"]), corpus, exp, step1_dir / BEST_MODEL_NAME)
    summary = json.loads((exp / "summary.json").read_text())
    # It really ran compiled: torch.compile built graphs in this run (0 when the masker stays eager).
    assert summary["masker_compiled_graphs"] > 0
    assert summary["global_step"] == 4 and summary["full_budget"] is True
    model = TwoStepTDCN.from_pretrained(str(exp / BEST_MODEL_NAME))
    assert torch.isfinite(model(torch.randn(1, 4000))).all()


def _logged_steps(metrics_csv):
    import csv

    with open(metrics_csv) as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("step")]


def test_step2_without_front_end_says_what_to_run(corpus, tmp_path):
    with pytest.raises(ConfigError, match="run step 1 first"):
        train_step2(load_config(None, TINY), corpus, tmp_path / "s2", tmp_path / "missing.pth")


def test_end_to_end_baseline_needs_the_waveform_loss_only(corpus, tmp_path):
    conf = load_config(None, TINY + ["step2.train_front_end=true"])
    with pytest.raises(ConfigError, match="latent_weight"):
        train_step2(conf, corpus, tmp_path / "e2e")
    conf = load_config(None, TINY + ["step2.train_front_end=true", "step2.latent_weight=0"])
    train_step2(conf, corpus, tmp_path / "e2e")
    assert (tmp_path / "e2e" / DONE).is_file()


def test_unwritable_experiment_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="Cannot write to the experiment folder"):
        check_writable(blocker / "exp")


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("step2:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError, match="step2.max_stepz"):
        load_config(bad)
    bad.write_text("step2:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="step2.lr .* must be a float"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["max_steps=3"])
    out = tmp_path / "exp" / "conf.yml"
    freeze_config(None, out, ["step2.max_steps=3"])
    freeze_config(None, out, ["step2.max_steps=3"])  # same configuration: fine
    with pytest.raises(ConfigError, match="step2.max_steps"):
        freeze_config(None, out, ["step2.max_steps=4"])


@pytest.mark.slow
def test_kill_during_step2_then_resume(step1_dir, corpus, tmp_path):
    """``kill -9`` in the middle of step 2, then the same command: it resumes and finishes."""
    exp = tmp_path / "killed"
    args = [sys.executable, "-m", "twostep_asteroid.train", "step2", "--data_dir", str(corpus),
            "--exp_dir", str(exp), "--front_end", str(step1_dir / BEST_MODEL_NAME), *TINY,
            "step2.max_steps=400", "step2.val_every_n_steps=200", "step2.ckpt_every_n_steps=20"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = exp / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert last.is_file(), "no checkpoint was written before the kill"
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < killed_at < 400 and not (exp / DONE).exists()
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["global_step"] == 400
    # A resume, not a restart at step 0: the rerun trained only the steps after the checkpoint, and
    # its log (a new version folder) starts at or after the step the kill left in last.ckpt.
    assert summary["steps_this_run"] == 400 - killed_at
    versions = sorted((exp / "logs").glob("version_*"))
    assert len(versions) == 2
    assert min(_logged_steps(versions[-1] / "metrics.csv")) >= killed_at


def test_compile_without_a_cpp_compiler_on_cpu_is_a_clear_error(monkeypatch):
    """On CPU, torch.compile needs a C++ compiler: without one, compiling fails before training with
    the fix named (not a quiet eager run); with one (or off CPU) the masker is compiled in place."""
    from twostep_asteroid import train

    model = TwoStepTDCN(n_src=2, n_filters=16, kernel_size=16, stride=8, bn_chan=8, hid_chan=8,
                        n_blocks=2, n_repeats=1)
    with monkeypatch.context() as m:
        m.setattr(train.shutil, "which", lambda name: None)
        with pytest.raises(ConfigError, match=r"apt-get install g\+\+.*trainer.compile: false"):
            train.compile_masker(model, on_cpu=True)
    assert getattr(model.masker, "_compiled_call_impl", None) is None
    train.compile_masker(model, on_cpu=False)
    assert model.masker._compiled_call_impl is not None


def test_budget_records_a_wall_clock_cap_loudly(corpus, step1_dir, tmp_path, caplog):
    """A run stopped by max_minutes before max_steps says so in its summary, in a loud warning, and in
    the budget report that run.sh prints last; a run that trained its steps says full budget."""
    from twostep_asteroid.train import budget_report, main

    exp = tmp_path / "capped"
    with caplog.at_level("WARNING"):
        train_step2(load_config(None, TINY + ["step2.max_steps=100000", "step2.max_minutes=0.001"]),
                    corpus, exp / "step2", step1_dir / BEST_MODEL_NAME)
    summary = json.loads((exp / "step2" / "summary.json").read_text())
    assert summary["full_budget"] is False and summary["stopped_by"] == "max_minutes"
    assert summary["global_step"] < 100000
    assert "WALL-CLOCK CAP" in caplog.text
    lines, full = budget_report(exp)
    assert not full and "NOT the full budget (stopped by max_minutes)" in lines[0]

    full_exp = step1_dir.parent
    lines, full = budget_report(full_exp)
    assert full and lines == [f"step1: 4 of 4 steps, {json.loads((step1_dir / 'summary.json').read_text())['steps_per_second']:.2f} steps/s: full budget"]
    assert main(["budget", str(exp)]) == 0


class _StalledDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, idx):
        time.sleep(60)  # a worker that stops delivering (a hung read, a stuck network disk)


def test_a_stalled_dataloader_worker_stops_the_run_with_the_key_named(corpus, tmp_path, monkeypatch, caplog):
    """A DataLoader worker that gives no batch makes the run fail after data.loader_timeout_s, with
    the key and the resume command, instead of hanging with every process idle."""
    import twostep_asteroid.train as train

    monkeypatch.setattr(train, "make_dataset", lambda *a, **k: _StalledDataset())
    args = ["step1", "--data_dir", str(corpus), "--exp_dir", str(tmp_path / "step1"), *TINY,
            "data.num_workers=1", "data.loader_timeout_s=2"]
    start = time.time()
    with caplog.at_level("ERROR"), pytest.raises(SystemExit) as stop:
        train.main(args)
    assert stop.value.code == 1 and time.time() - start < 50
    assert "data.loader_timeout_s = 2.0 s" in caplog.text and "./run.sh --stage 1" in caplog.text
