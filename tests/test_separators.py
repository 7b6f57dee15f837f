"""The step-2 separator as a choice: Asteroid's maskers (and our TDCN) on the two-step front end."""
import pytest
import torch

import asteroid.models
from twostep_asteroid import TwoStepFrontEnd, TwoStepSeparator, TwoStepTDCN
from twostep_asteroid.config import CHOICES, ConfigError, load_config
from twostep_asteroid.serialization import save_pretrained
from twostep_asteroid.losses import TwoStepLoss
from twostep_asteroid.models import load_separator
from twostep_asteroid.separators import MASKERS, make_masker, masker_args
from twostep_asteroid.train import build_separator

from tests.synthetic import HarmonicMixtures

N = 16
# Tiny masker of each type, softmax over sources where the class takes it over sources.
TINY = {
    "tdcn": dict(bn_chan=8, hid_chan=8, n_blocks=2, n_repeats=1, mask_head="dense"),
    "sudormrf": dict(bn_chan=8, num_blocks=2, upsampling_depth=3, mask_act="softmax"),
    "sudormrf_improved": dict(bn_chan=8, num_blocks=2, upsampling_depth=3, mask_act="softmax"),
    "dprnn": dict(bn_chan=8, hid_size=8, chunk_size=10, n_repeats=1, mask_act="sigmoid"),
    "tdconvnet": dict(bn_chan=8, hid_chan=8, skip_chan=8, n_blocks=2, n_repeats=1, mask_act="softmax"),
}
SOFTMAX_OVER_SOURCES = {"tdcn", "sudormrf", "sudormrf_improved", "tdconvnet"}


def _model(masker_type, n_src=2, **kwargs):
    return TwoStepSeparator(n_src, n_filters=N, kernel_size=16, stride=8, masker_type=masker_type,
                            masker_args=TINY[masker_type], **kwargs)


def test_every_type_is_tested_and_listed_in_the_config_schema():
    assert set(TINY) == set(MASKERS) == CHOICES[("masker", "type")]


def test_registered_with_asteroid_models():
    assert asteroid.models.get("TwoStepSeparator") is TwoStepSeparator


@pytest.mark.parametrize("masker_type", sorted(MASKERS))
@pytest.mark.parametrize("frames", [7, 50, 63])
def test_masks_have_the_latent_shape(masker_type, frames):
    masker = make_masker(masker_type, N, 3, **TINY[masker_type])
    masks = masker(torch.rand(2, N, frames))
    assert masks.shape == (2, 3, N, frames)
    if masker_type in SOFTMAX_OVER_SOURCES:
        torch.testing.assert_close(masks.sum(1), torch.ones(2, N, frames))


@pytest.mark.parametrize("masker_type", sorted(MASKERS))
@pytest.mark.parametrize("n_src", [1, 2])
def test_model_shapes_and_latents(masker_type, n_src):
    model = _model(masker_type, n_src)
    wav = torch.randn(2, 1234)
    assert model(wav).shape == (2, n_src, 1234)
    est_latents, tf_rep = model.estimate_latents(wav)
    assert est_latents.shape == (2, max(n_src, 2), N, tf_rep.shape[-1])
    # the latent estimates are the masks times the encoded mixture
    torch.testing.assert_close(est_latents, model.forward_masker(tf_rep) * tf_rep.unsqueeze(1))
    assert model.decode_latents(est_latents, wav).shape == (2, n_src, 1234)


@pytest.mark.parametrize("masker_type", sorted(MASKERS))
def test_round_trip_keeps_type_and_args(masker_type, tmp_path):
    model = _model(masker_type).eval()
    args = model.get_model_args()
    assert args["masker_type"] == masker_type
    assert {k: args["masker_args"][k] for k in TINY[masker_type]} == TINY[masker_type]
    wav = torch.randn(1, 2000)
    ref = model(wav)
    torch.save(model.serialize(), tmp_path / "model.pth")
    torch.load(tmp_path / "model.pth", weights_only=True)  # plain types only
    folder = save_pretrained(model, tmp_path / "hub")
    for source in (str(tmp_path / "model.pth"), str(folder), model.serialize()):
        loaded = load_separator(source).eval()
        assert type(loaded) is TwoStepSeparator
        assert loaded.get_model_args() == args
        assert torch.equal(loaded(wav), ref)
    assert torch.equal(TwoStepSeparator.from_pretrained(str(folder)).eval()(wav), ref)


def test_front_end_is_frozen_and_shared():
    front_end = TwoStepFrontEnd(n_src=2, n_filters=N, kernel_size=16, stride=8)
    model = TwoStepSeparator.from_front_end(front_end, masker_type="sudormrf", masker_args=TINY["sudormrf"])
    assert model.encoder is front_end.encoder and not model.train_front_end
    assert all(p.requires_grad for p in model.masker.parameters())
    assert {k.split(".")[0] for k in model.state_dict()} == {"encoder", "masker", "decoder"}


def test_bad_choices_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="known"):
        make_masker("transformer", N, 2)
    with pytest.raises(ValueError, match="even number of bases"):
        make_masker("sudormrf", 15, 2)
    with pytest.raises(ValueError, match="softmax over the bases"):
        make_masker("dprnn", N, 2, mask_act="softmax")
    with pytest.raises(ConfigError, match="masker.type"):
        load_config(None, ["masker.type=transformer"])


def test_masker_args_rebuild_the_same_masker():
    masker = make_masker("dprnn", N, 2, **TINY["dprnn"])
    args = masker_args(masker)
    assert "in_chan" not in args and "n_src" not in args
    rebuilt = make_masker("dprnn", N, 2, **args)
    assert rebuilt.get_config() == masker.get_config()


def test_build_separator_follows_masker_type(tmp_path):
    front_end = TwoStepFrontEnd(n_src=2, n_filters=N, kernel_size=16, stride=8)
    torch.save(front_end.serialize(), tmp_path / "fe.pth")
    conf = load_config(None, ["masker.type=sudormrf", "masker_sudormrf.bn_chan=8", "masker_sudormrf.num_blocks=2"])
    model = build_separator(conf, tmp_path / "fe.pth")
    assert type(model) is TwoStepSeparator and model.masker_type == "sudormrf"
    assert model.masker.bn_chan == 8 and model.masker.num_blocks == 2 and model.masker.mask_act == "softmax"
    assert torch.equal(model.encoder.filterbank.filters(), front_end.encoder.filterbank.filters())
    conf = load_config(None, ["masker.bn_chan=8", "masker.hid_chan=8", "masker.n_blocks=2", "masker.n_repeats=1"])
    assert type(build_separator(conf, tmp_path / "fe.pth")) is TwoStepTDCN  # the default: the paper's model
    conf = load_config(None, ["masker.type=dprnn", "masker_dprnn.mask_act=softmax"])
    with pytest.raises(ConfigError, match="dprnn"):
        build_separator(conf, tmp_path / "fe.pth")


@pytest.mark.parametrize("masker_type", sorted(MASKERS))
def test_a_few_steps_on_a_fixed_batch_lower_the_step2_loss(masker_type):
    """The step-2 loss (latent + waveform, frozen front end) goes down on one fixed batch."""
    data = HarmonicMixtures(n_items=4, n_samples=2000, seed=1)
    mixture, sources = (torch.stack(x) for x in zip(*[data[i] for i in range(4)]))
    model = _model(masker_type)
    front_before = model.encoder.filterbank.filters().detach().clone()
    loss_func = TwoStepLoss(latent_weight=1.0, waveform_weight=1.0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    with torch.no_grad():
        targets = model.front_end.ideal_latents(mixture, sources)[2]

    def loss():
        est_latents, _ = model.estimate_latents(mixture)
        return loss_func(est_latents, targets, model.decode_latents(est_latents, mixture), sources)["loss"]

    first = loss().item()
    for _ in range(30):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert loss().item() < first - 0.5
    assert torch.equal(model.encoder.filterbank.filters(), front_before)  # the front end stays frozen
