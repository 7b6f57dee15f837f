import pickle

import numpy as np
import pytest
import torch

import asteroid.models
from twostep_asteroid import TwoStepFrontEnd, TwoStepTDCN
from twostep_asteroid.serialization import UnsafeCheckpointError, save_pretrained

from tests.synthetic import SMALL


def test_registered_with_asteroid_models():
    assert asteroid.models.get("TwoStepTDCN") is TwoStepTDCN


def test_paper_config_size_and_receptive_field():
    model = TwoStepTDCN(n_src=2, n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512, n_blocks=8, n_repeats=4)
    n_masker = sum(p.numel() for p in model.masker.parameters())
    assert 8.5e6 < n_masker < 8.8e6  # paper: 8.6 M
    assert model.masker.receptive_field == 2041
    assert model.encoder.filterbank.stride == 10


@pytest.mark.parametrize("n_src", [1, 2, 3])
def test_shapes(n_src):
    model = TwoStepTDCN(n_src=n_src, **SMALL)
    wav = torch.randn(2, 1234)
    assert model(wav).shape == (2, n_src, 1234)
    assert model(wav[0]).shape == (n_src, 1234)
    est_latents, tf_rep = model.estimate_latents(wav.unsqueeze(1))
    assert est_latents.shape == (2, max(n_src, 2), 32, tf_rep.shape[-1])
    torch.testing.assert_close(est_latents.sum(1), tf_rep, rtol=1e-5, atol=1e-5)


def test_model_from_registry_separates_a_waveform():
    model = asteroid.models.get("TwoStepTDCN")(n_src=2, **SMALL)
    out = model.separate(np.random.randn(1, 4000).astype("float32"))
    assert out.shape == (1, 2, 4000) and np.isfinite(out).all()


def test_front_end_is_frozen_and_shared_with_the_model():
    front_end = TwoStepFrontEnd(n_src=2, n_filters=32, kernel_size=16, stride=4)
    model = TwoStepTDCN.from_front_end(front_end, bn_chan=16, hid_chan=24, n_blocks=2, n_repeats=1)
    assert model.encoder is front_end.encoder and model.decoder is front_end.decoder
    assert model.get_model_args()["stride"] == 4
    assert not model.train_front_end
    assert all(p.requires_grad for p in model.masker.parameters())
    model.set_front_end_trainable(True)
    assert model.train_front_end
    # the state dict keeps Asteroid's key layout, without a duplicate copy of the front end
    assert {k.split(".")[0] for k in model.state_dict()} == {"encoder", "masker", "decoder"}


def test_decoder_alone_trains_on_the_two_step_loss():
    from twostep_asteroid.losses import TwoStepLoss

    torch.manual_seed(0)
    front_end = TwoStepFrontEnd(n_src=2, n_filters=32, kernel_size=16, stride=8)
    model = TwoStepTDCN.from_front_end(front_end, bn_chan=16, hid_chan=24, n_blocks=2, n_repeats=1)
    model.set_decoder_trainable(True)
    assert model.train_decoder and not model.train_front_end
    assert not any(p.requires_grad for p in model.encoder.parameters())
    encoder, decoder = ({k: v.clone() for k, v in m.state_dict().items()} for m in (model.encoder, model.decoder))
    sources = torch.randn(2, 2, 2000)
    mix = sources.sum(1)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss_func, losses = TwoStepLoss(1.0, 1.0), []
    for _ in range(30):
        est_latents, _ = model.estimate_latents(mix)
        targets = model.front_end.ideal_latents(mix, sources)[2].detach()
        loss = loss_func(est_latents, targets, model.decode_latents(est_latents, mix), sources)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder.items())
    assert not all(torch.equal(v, model.decoder.state_dict()[k]) for k, v in decoder.items())
    # the trained decoder travels with the model
    reloaded = TwoStepTDCN.from_pretrained(model.serialize()).eval()
    torch.testing.assert_close(reloaded.decoder.state_dict(), model.decoder.state_dict())
    torch.testing.assert_close(reloaded(mix), model.eval()(mix))


def test_front_end_with_wrong_source_count_is_refused():
    with pytest.raises(ValueError, match="sources"):
        TwoStepTDCN(n_src=3, front_end=TwoStepFrontEnd(n_src=2, n_filters=8, kernel_size=4))


def test_round_trip_is_bit_exact_with_weights_only_load(tmp_path):
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    path = tmp_path / "model.pth"
    torch.save(model.serialize(), path)
    torch.load(path, weights_only=True)  # loadable without unpickling code
    wav = torch.randn(1, 3000)
    assert torch.equal(TwoStepTDCN.from_pretrained(str(path)).eval()(wav), model(wav))
    folder = save_pretrained(model, tmp_path / "folder")
    assert torch.equal(TwoStepTDCN.from_pretrained(str(folder)).eval()(wav), model(wav))
    assert torch.equal(TwoStepTDCN.from_pretrained(model.serialize()).eval()(wav), model(wav))


def test_checkpoint_written_by_asteroids_own_serialize_loads(tmp_path):
    from asteroid.models.base_models import BaseModel

    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    torch.save(BaseModel.serialize(model), tmp_path / "asteroid.pth")  # holds a TorchVersion object
    wav = torch.randn(1, 3000)
    assert torch.equal(TwoStepTDCN.from_pretrained(str(tmp_path / "asteroid.pth")).eval()(wav), model(wav))


class _Payload:
    def __reduce__(self):
        return (print, ("this would run at load time",))


def test_checkpoint_needing_code_execution_is_refused(tmp_path):
    conf = TwoStepTDCN(n_src=2, **SMALL).serialize()
    conf["infos"]["payload"] = _Payload()
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        torch.save(conf, f, pickle_module=pickle)
    with pytest.raises(UnsafeCheckpointError, match="code execution"):
        TwoStepTDCN.from_pretrained(str(path))


def test_front_end_round_trip(tmp_path):
    front_end = TwoStepFrontEnd(n_src=2, n_filters=16, kernel_size=8)
    torch.save(front_end.serialize(), tmp_path / "fe.pth")
    clone = TwoStepFrontEnd.from_pretrained(str(tmp_path / "fe.pth"))
    mix, src = torch.randn(1, 800), torch.randn(1, 2, 800)
    assert torch.equal(clone(mix, src)["estimates"], front_end(mix, src)["estimates"])
    with pytest.raises(ValueError, match="TwoStepFrontEnd"):
        TwoStepTDCN.from_pretrained(str(tmp_path / "fe.pth"))
