"""Step 3 (joint fine-tuning from step 2), another separator through train_step2, and the Asteroid
baseline entry point, on the tiny corpus of tests/test_train.py."""
import csv
import json

import pytest
import torch

from twostep_asteroid import TwoStepSeparator, TwoStepTDCN
from twostep_asteroid.config import ConfigError, load_config
from twostep_asteroid.inference import load_model
from twostep_asteroid.losses import TwoStepLoss
from twostep_asteroid.models import load_separator
from twostep_asteroid.serialization import BEST_MODEL_NAME
from twostep_asteroid.train import DONE, train_asteroid_model, train_step2, train_step3
from tests.synthetic import SMALL, HarmonicMixtures
from tests.test_train import TINY, corpus, step1_dir  # noqa: F401  (module fixtures)

SUDORMRF = ["masker.type=sudormrf", "masker_sudormrf.bn_chan=8", "masker_sudormrf.num_blocks=1",
            "masker_sudormrf.upsampling_depth=2"]
STEP3 = ["step3.batch_size=2", "step3.max_steps=4", "step3.val_every_n_steps=2", "step3.limit_val_batches=1",
         "step3.ckpt_every_n_steps=2", "step3.lr=0.001"]


def _rows(metrics_csv):
    with open(metrics_csv) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def step2_sudormrf(step1_dir, corpus, tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp3") / "step2"
    train_step2(load_config(None, TINY + SUDORMRF), corpus, exp, step1_dir / BEST_MODEL_NAME)
    return exp


def test_step2_trains_another_separator_and_logs_time_and_audio(step2_sudormrf):
    model = load_separator(str(step2_sudormrf / BEST_MODEL_NAME))
    assert type(model) is TwoStepSeparator and model.masker_type == "sudormrf"
    summary = json.loads((step2_sudormrf / "summary.json").read_text())
    assert summary["masker_type"] == "sudormrf" and summary["global_step"] == 4
    rows = _rows(step2_sudormrf / "logs" / "version_0" / "metrics.csv")
    clock = [r for r in rows if r.get("wall_s")]
    assert [int(r["step"]) for r in clock] == [2, 4]
    # 2 steps x batch 2 x 0.5 s segments, one process
    assert [float(r["train_audio_s"]) for r in clock] == [2.0, 4.0]
    assert 0 < float(clock[0]["wall_s"]) <= float(clock[1]["wall_s"])
    assert any(r.get("val_sisdri") for r in rows)


def test_step3_is_off_at_zero_steps(step2_sudormrf, corpus, tmp_path):
    assert load_config(None)["step3"]["max_steps"] == 0
    assert train_step3(load_config(None, TINY), corpus, tmp_path / "s3", step2_sudormrf / BEST_MODEL_NAME) is None
    assert not (tmp_path / "s3").exists()


def test_step3_without_step2_says_what_to_run(corpus, tmp_path):
    with pytest.raises(ConfigError, match="run step 2 first"):
        train_step3(load_config(None, TINY + STEP3), corpus, tmp_path / "s3", tmp_path / "missing.pth")


def test_step3_fine_tunes_the_front_end_resumes_and_skips(step2_sudormrf, corpus, tmp_path):
    exp = tmp_path / "step3"
    init = step2_sudormrf / BEST_MODEL_NAME
    conf = load_config(None, TINY + SUDORMRF + STEP3)
    assert train_step3(conf, corpus, exp, init) == exp / BEST_MODEL_NAME
    before, after = load_separator(str(init)), load_separator(str(exp / BEST_MODEL_NAME))
    assert type(after) is TwoStepSeparator and after.get_model_args() == before.get_model_args()
    # the front end was trained (step 2 had it frozen), and the separator too
    assert not torch.equal(after.encoder.filterbank.filters(), before.encoder.filterbank.filters())
    assert not torch.equal(after.decoder.filterbank.filters(), before.decoder.filterbank.filters())
    assert any(not torch.equal(a, b) for a, b in zip(after.masker.state_dict().values(),
                                                     before.masker.state_dict().values()))
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["step"] == "step3" and summary["global_step"] == 4 and summary["init"] == str(init)
    # done: skipped
    stamp = (exp / BEST_MODEL_NAME).stat().st_mtime_ns
    train_step3(conf, corpus, exp, init)
    assert (exp / BEST_MODEL_NAME).stat().st_mtime_ns == stamp
    # interrupted (no done marker) with more steps asked: it continues from step 4
    (exp / DONE).unlink()
    train_step3(load_config(None, TINY + SUDORMRF + STEP3 + ["step3.max_steps=6"]), corpus, exp, init)
    assert json.loads((exp / "summary.json").read_text())["global_step"] == 6
    assert min(int(r["step"]) for r in _rows(exp / "logs" / "version_1" / "metrics.csv")) >= 4
    clock = [r for r in _rows(exp / "logs" / "version_1" / "metrics.csv") if r.get("wall_s")]
    first_clock = [r for r in _rows(exp / "logs" / "version_0" / "metrics.csv") if r.get("wall_s")]
    assert float(clock[0]["wall_s"]) > float(first_clock[-1]["wall_s"])  # wall time carried over


@pytest.mark.parametrize("cls_args", [("tdcn", {}), ("sudormrf", {"bn_chan": 8, "num_blocks": 2})])
def test_joint_fine_tuning_lowers_the_waveform_loss_and_moves_the_front_end(cls_args):
    """What step 3 does, on one fixed batch: front end trainable, waveform PIT SI-SDR only."""
    masker_type, args = cls_args
    if masker_type == "tdcn":
        model = TwoStepTDCN(n_src=2, **SMALL)
    else:
        model = TwoStepSeparator(2, n_filters=32, kernel_size=16, masker_type=masker_type, masker_args=args)
    model.set_front_end_trainable(True)
    data = HarmonicMixtures(n_items=4, n_samples=2000, seed=2)
    mixture, sources = (torch.stack(x) for x in zip(*[data[i] for i in range(4)]))
    loss_func = TwoStepLoss(latent_weight=0.0, waveform_weight=1.0)
    encoder_before = model.encoder.filterbank.filters().detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        est_latents, _ = model.estimate_latents(mixture)
        return loss_func(est_latents, est_latents.detach(), model.decode_latents(est_latents, mixture), sources)["loss"]

    first = loss().item()
    for _ in range(30):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < first - 0.5
    assert not torch.equal(model.encoder.filterbank.filters(), encoder_before)


def test_asteroid_baseline_trains_end_to_end(corpus, tmp_path):
    exp = tmp_path / "convtasnet"
    args = dict(n_filters=16, kernel_size=16, stride=8, bn_chan=8, hid_chan=8, skip_chan=8, n_blocks=2, n_repeats=1)
    train_asteroid_model(load_config(None, TINY), corpus, exp, "ConvTasNet", args)
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["step"] == "asteroid" and summary["model_name"] == "ConvTasNet" and summary["global_step"] == 4
    model = load_model(str(exp / BEST_MODEL_NAME), device="cpu")
    assert type(model).__name__ == "ConvTasNet"
    assert model(torch.randn(1, 4000)).shape == (1, 2, 4000)
    rows = _rows(exp / "logs" / "version_0" / "metrics.csv")
    assert any(r.get("val_sisdri") for r in rows) and any(r.get("wall_s") for r in rows)
    with pytest.raises(ConfigError, match="Unknown Asteroid model"):
        train_asteroid_model(load_config(None, TINY), corpus, tmp_path / "x", "NoSuchNet")
