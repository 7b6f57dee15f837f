"""Small-scale learning through the Lightning systems, on synthetic harmonic mixtures."""
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from twostep_asteroid import TwoStepFrontEnd, TwoStepTDCN
from twostep_asteroid.losses import TwoStepLoss, front_end_loss
from twostep_asteroid.metrics import mixture_sisdr, sisdr_per_example
from twostep_asteroid.systems import FrontEndSystem, SeparatorSystem
from tests.synthetic import HarmonicMixtures


def _trainer(tmp_path, max_steps):
    return pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path, num_sanity_val_steps=0, limit_val_batches=0)


def _oracle_sisdri(front_end, data):
    mixture = torch.stack([data[i][0] for i in range(len(data))])
    sources = torch.stack([data[i][1] for i in range(len(data))])
    with torch.no_grad():
        est = front_end(mixture, sources)["estimates"]
    return (sisdr_per_example(est, sources) - mixture_sisdr(mixture, sources)).mean().item()


def test_step1_training_raises_the_oracle(tmp_path):
    front_end = TwoStepFrontEnd(n_src=2, n_filters=32, kernel_size=16)
    val = HarmonicMixtures(n_items=16, n_samples=4000, seed=1)
    before = _oracle_sisdri(front_end, val)
    loader = DataLoader(HarmonicMixtures(n_items=512, n_samples=4000), batch_size=8, shuffle=True)
    optimizer = torch.optim.Adam(front_end.parameters(), lr=3e-3)
    system = FrontEndSystem(front_end, optimizer, front_end_loss, loader)
    _trainer(tmp_path, 120).fit(system)
    after = _oracle_sisdri(front_end, val)
    assert after > before + 3.0, (before, after)


def _separator_loss(model, loss_func, data):
    mixture = torch.stack([data[i][0] for i in range(len(data))])
    sources = torch.stack([data[i][1] for i in range(len(data))])
    with torch.no_grad():
        targets = model.front_end.ideal_latents(mixture, sources)[2]
        est, _ = model.estimate_latents(mixture)
        return loss_func(est, targets, model.decode_latents(est, mixture), sources)["loss"].item()


@pytest.mark.parametrize("weights", [(1.0, 0.0), (1.0, 1.0)])
def test_step2_training_lowers_its_loss(tmp_path, weights):
    model = TwoStepTDCN(n_src=2, n_filters=32, kernel_size=16, bn_chan=16, hid_chan=32, n_blocks=3, n_repeats=1)
    loss_func = TwoStepLoss(*weights)
    val = HarmonicMixtures(n_items=16, n_samples=2000, seed=1)
    before = _separator_loss(model, loss_func, val)
    loader = DataLoader(HarmonicMixtures(n_items=256, n_samples=2000), batch_size=8, shuffle=True)
    params = [p for p in model.parameters() if p.requires_grad]
    front_end_before = [p.clone() for p in model.front_end.parameters()]
    system = SeparatorSystem(model, torch.optim.Adam(params, lr=3e-3), loss_func, loader)
    _trainer(tmp_path, 60).fit(system)
    after = _separator_loss(model, loss_func, val)
    assert after < before - 1.0, (before, after)
    for p, q in zip(model.front_end.parameters(), front_end_before):
        assert torch.equal(p, q), "step 2 must not touch the front end"


def test_validation_logs_waveform_and_latent_metrics(tmp_path):
    model = TwoStepTDCN(n_src=2, n_filters=16, kernel_size=8, bn_chan=8, hid_chan=8, n_blocks=2, n_repeats=1)
    loader = DataLoader(HarmonicMixtures(n_items=8, n_samples=1000), batch_size=4)
    system = SeparatorSystem(model, torch.optim.Adam(model.masker.parameters()), TwoStepLoss(), loader, loader)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(system)
    metrics = trainer.callback_metrics
    for key in ("val_loss", "val_sisdri", "val_latent_sisdr", "val_sisdr"):
        assert key in metrics and torch.isfinite(metrics[key])
    torch.testing.assert_close(metrics["val_loss"], -metrics["val_sisdr"])


def test_nonfinite_losses_are_skipped_then_stop_training(tmp_path):
    model = TwoStepTDCN(n_src=2, n_filters=16, kernel_size=8, bn_chan=8, hid_chan=8, n_blocks=2, n_repeats=1)
    bad = DataLoader(torch.utils.data.TensorDataset(torch.full((20, 1000), float("nan")), torch.zeros(20, 2, 1000)),
                     batch_size=2)
    system = SeparatorSystem(model, torch.optim.Adam(model.masker.parameters()), TwoStepLoss(), bad,
                             max_nonfinite_steps=3)
    before = [p.clone() for p in model.masker.parameters()]
    with pytest.raises(RuntimeError, match="non-finite"):
        _trainer(tmp_path, 10).fit(system)
    assert system.nonfinite_steps == 3
    for p, q in zip(model.masker.parameters(), before):
        assert torch.equal(p, q), "no optimizer step may follow a non-finite loss"
