"""Loading through the real huggingface_hub cache (offline), model cards, packaging, upload refusal.

The Hub is never contacted: HF_HUB_OFFLINE is on, and any socket connection fails the test. The
cache is laid out as huggingface_hub writes it (models--org--name/{blobs,refs,snapshots}), and
``hf_hub_download`` itself resolves ids, revisions and URLs against it.
"""
import hashlib
import json
import os
import pickle
import socket
from pathlib import Path

import pytest
import torch
import yaml

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid import hub, serialization, sources
from twostep_asteroid.hub import MissingTokenError, model_card, package_for_hub, upload_to_hub
from twostep_asteroid.serialization import BEST_MODEL_NAME, UnsafeCheckpointError, save_pretrained
from twostep_asteroid.sources import HubModelNotCachedError, load_model_conf, parse_hub_source

from tests.synthetic import SMALL

SHA_MAIN = "a" * 40
SHA_V1 = "1234567890abcdef1234567890abcdef12345678"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty, offline Hugging Face home; returns the hub cache folder."""
    import huggingface_hub.constants as constants

    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these at import time: patch the module constants too.
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return cache


def add_to_cache(cache, repo_id, files, commit, refs=("main",)):
    """Store ``files`` ({name: bytes}) as huggingface_hub does: blobs named by content hash,
    a snapshot folder of relative symlinks for ``commit``, and ``refs/<branch>`` -> commit."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # no symlinks (as huggingface_hub on such systems): a copy
            link.write_bytes(data)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)  # no trailing newline, like the hub
    return snapshot


def folder_files(model, tmp_path, name="pkg"):
    folder = save_pretrained(model, tmp_path / name)
    return {n: (folder / n).read_bytes() for n in (serialization.CONFIG_NAME, serialization.WEIGHTS_NAME)}


def same_outputs(a, b):
    wav = torch.randn(1, 2000)
    with torch.no_grad():
        return torch.equal(a.eval()(wav), b.eval()(wav))


@pytest.fixture
def two_revisions(offline_hub, tmp_path):
    """org/twostep with main (model_main) and branch v1 (model_v1, a different model)."""
    model_main = TwoStepTDCN(n_src=2, **SMALL).eval()
    model_v1 = TwoStepTDCN(n_src=2, **SMALL).eval()
    add_to_cache(offline_hub, "org/twostep", folder_files(model_main, tmp_path, "main"), SHA_MAIN)
    add_to_cache(offline_hub, "org/twostep", folder_files(model_v1, tmp_path, "v1"), SHA_V1, refs=("v1",))
    assert not same_outputs(model_main, model_v1)
    return model_main, model_v1


def test_hub_id_forms_load_from_the_offline_cache(two_revisions):
    model_main, model_v1 = two_revisions
    assert same_outputs(TwoStepTDCN.from_pretrained("org/twostep"), model_main)
    assert same_outputs(TwoStepTDCN.from_pretrained("org/twostep@main"), model_main)
    assert same_outputs(TwoStepTDCN.from_pretrained("org/twostep@v1"), model_v1)  # branch in refs/
    assert same_outputs(TwoStepTDCN.from_pretrained(f"org/twostep@{SHA_V1}"), model_v1)  # commit sha


def test_hub_url_forms_load_from_the_offline_cache(two_revisions):
    model_main, model_v1 = two_revisions
    assert same_outputs(TwoStepTDCN.from_pretrained("https://huggingface.co/org/twostep"), model_main)
    assert same_outputs(TwoStepTDCN.from_pretrained("https://huggingface.co/org/twostep/"), model_main)
    assert same_outputs(TwoStepTDCN.from_pretrained("https://huggingface.co/org/twostep/tree/v1"), model_v1)
    url = f"https://huggingface.co/org/twostep/resolve/{SHA_V1}/model.safetensors"
    assert same_outputs(TwoStepTDCN.from_pretrained(url), model_v1)
    url = "https://huggingface.co/org/twostep/blob/main/model.safetensors?download=true"
    assert same_outputs(TwoStepTDCN.from_pretrained(url), model_main)


def test_asteroid_hub_layout_pytorch_model_bin(offline_hub):
    """Asteroid's Hub repos hold a torch-saved ``pytorch_model.bin`` and no config.json."""
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    buf_path = offline_hub.parent / "tmp.bin"
    torch.save(model.serialize(), buf_path)
    add_to_cache(offline_hub, "asteroid-like/TwoStep", {"pytorch_model.bin": buf_path.read_bytes()}, SHA_MAIN)
    assert same_outputs(TwoStepTDCN.from_pretrained("asteroid-like/TwoStep"), model)
    url = "https://huggingface.co/asteroid-like/TwoStep/resolve/main/pytorch_model.bin"
    assert same_outputs(TwoStepTDCN.from_pretrained(url), model)


@pytest.mark.parametrize("source", ["org/absent", "org/twostep@no-such-branch",
                                    "https://huggingface.co/org/absent/tree/v2"])
def test_offline_and_not_cached_says_which_model_and_how_to_fix(two_revisions, source):
    with pytest.raises(HubModelNotCachedError) as info:
        TwoStepTDCN.from_pretrained(source)
    message = str(info.value)
    repo = "org/absent" if "absent" in source else "org/twostep"
    assert repo in message
    assert f"hf download {repo}" in message
    assert "HF_HUB_OFFLINE" in message and "local folder" in message
    if "@" in source or "tree" in source:
        assert "--revision" in message
    assert isinstance(info.value, OSError)  # what the loader raised before: callers keep working


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_hub_pickle_needing_code_is_refused_and_not_run(offline_hub, tmp_path):
    marker = tmp_path / "payload_ran"
    conf = TwoStepTDCN(n_src=2, **SMALL).serialize()
    conf["infos"]["payload"] = _Payload(marker)
    evil = tmp_path / "evil.bin"
    with open(evil, "wb") as f:
        torch.save(conf, f, pickle_module=pickle)
    add_to_cache(offline_hub, "evil/model", {"pytorch_model.bin": evil.read_bytes()}, SHA_MAIN)
    with pytest.raises(UnsafeCheckpointError, match="code execution"):
        TwoStepTDCN.from_pretrained("evil/model")
    with pytest.raises(UnsafeCheckpointError):
        TwoStepTDCN.from_pretrained("https://huggingface.co/evil/model/resolve/main/pytorch_model.bin")
    assert not marker.exists()


def test_parse_hub_source():
    assert parse_hub_source("org/name") == ("org/name", None, None)
    assert parse_hub_source("org/name@v1.0") == ("org/name", "v1.0", None)
    assert parse_hub_source("org/name@refs/pr/3") == ("org/name", "refs/pr/3", None)
    assert parse_hub_source("https://huggingface.co/org/name") == ("org/name", None, None)
    assert parse_hub_source("https://huggingface.co/org/name/tree/dev") == ("org/name", "dev", None)
    assert parse_hub_source("https://huggingface.co/org/name/resolve/main/sub/model.pth") == (
        "org/name", "main", "sub/model.pth")
    assert parse_hub_source("not a model") is None
    assert parse_hub_source("https://example.com/org/name") is None
    with pytest.raises(FileNotFoundError, match="neither a local file"):
        load_model_conf("definitely not/a model id!")


def _front_matter(card):
    assert card.startswith("---\n")
    meta, body = card[4:].split("\n---\n", 1)
    return yaml.safe_load(meta), body


def test_model_card_metadata_and_results():
    model = TwoStepTDCN(n_src=2, **SMALL)
    results = {"si_sdr": 15.1, "si_sdr_imp": 15.234, "stoi": 0.93}
    card = model_card(model, results, "wsj0-2mix", license="cc-by-sa-4.0", repo_id="me/TwoStep_wsj0-2mix")
    meta, body = _front_matter(card)
    assert {"asteroid", "audio", "TwoStepTDCN", "audio-to-audio"} <= set(meta["tags"])
    assert meta["datasets"] == ["wsj0-2mix"]
    assert meta["license"] == "cc-by-sa-4.0"
    assert meta["metrics"] == ["si_sdr", "si_sdr_imp", "stoi"]
    assert meta["sample_rate"] == 8000
    index = meta["model-index"][0]["results"][0]
    assert index["dataset"]["name"] == "wsj0-2mix"
    assert {m["type"]: m["value"] for m in index["metrics"]} == results
    assert "| SI-SDRi (dB) | 15.23 |" in body and "| STOI | 0.93 |" in body
    assert 'TwoStepTDCN.from_pretrained("me/TwoStep_wsj0-2mix")' in body
    assert "twostep-separate" in body and "Tzinis" in body
    # without results: no metrics block, still valid metadata
    meta, body = _front_matter(model_card(model))
    assert "metrics" not in meta and "model-index" not in meta and "## Results" not in body


def test_package_for_hub_round_trip_and_through_the_hub_cache(offline_hub, tmp_path):
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    out = package_for_hub(model, tmp_path / "release", results={"si_sdr_imp": 12.5}, dataset_name="wham",
                          license="cc-by-4.0", extra_infos={"epochs": 3}, repo_id="me/ts")
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no staging folder left
    config = json.loads((out / "config.json").read_text())
    assert config["infos"]["results"] == {"si_sdr_imp": 12.5} and config["infos"]["license"] == "cc-by-4.0"
    meta, _ = _front_matter((out / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0" and meta["datasets"] == ["wham"]
    assert same_outputs(TwoStepTDCN.from_pretrained(str(out)), model)
    # the packaged folder, once "on the Hub", loads by id
    add_to_cache(offline_hub, "me/ts", {n: (out / n).read_bytes() for n in os.listdir(out)}, SHA_MAIN)
    assert same_outputs(TwoStepTDCN.from_pretrained("me/ts"), model)


def test_package_for_hub_is_all_or_nothing(tmp_path, monkeypatch):
    def broken_card(*args, **kwargs):
        raise RuntimeError("card failed")

    monkeypatch.setattr(hub, "model_card", broken_card)
    with pytest.raises(RuntimeError, match="card failed"):
        package_for_hub(TwoStepTDCN(n_src=2, **SMALL), tmp_path / "release")
    assert os.listdir(tmp_path / "release") == []
    assert [p for p in os.listdir(tmp_path) if p != "release"] == []


def test_upload_without_token_explains_and_sends_nothing(offline_hub, tmp_path):
    folder = package_for_hub(TwoStepTDCN(n_src=2, **SMALL), tmp_path / "release")
    with pytest.raises(MissingTokenError) as info:
        upload_to_hub(folder, "me/ts")
    message = str(info.value)
    assert "HF_TOKEN" in message and "hf auth login" in message and "me/ts" in message
    with pytest.raises(FileNotFoundError, match="package_for_hub"):
        upload_to_hub(tmp_path, "me/ts", token="hf_dummy")  # incomplete folder: checked before any call


def test_package_cli_upload_without_token_fails_and_names_its_own_flags(offline_hub, tmp_path, capsys):
    """`python -m twostep_asteroid.hub package --repo_id X` with no token: the folder is written, the
    upload that was asked for did not happen, so it exits non-zero with the fix; the hints name this
    CLI's flag (--repo_id), not run.sh's."""
    model = TwoStepTDCN(n_src=2, **SMALL)
    pth = tmp_path / BEST_MODEL_NAME
    torch.save(model.serialize(), pth)
    out = tmp_path / "hub"
    assert hub.main(["package", "--model", str(pth), "--out_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "--repo_id <org>/<name>" in printed and "--hub_repo_id" not in printed
    rc = hub.main(["package", "--model", str(pth), "--out_dir", str(out), "--repo_id", "me/ts"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "NOT uploaded to me/ts" in err and "HF_TOKEN" in err and "--repo_id me/ts" in err
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("layout", ["safetensors", "pytorch_model.bin"])
def test_truncated_cached_blob_is_refused_naming_it_and_the_fix(offline_hub, tmp_path, layout):
    """A blob cut short (as by a kill while the cache was written or copied) is detected against its
    name in the cache (sha256) and the safetensors header: nothing loads, the message names the
    file and how to clear it."""
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    if layout == "safetensors":
        files = folder_files(model, tmp_path)
        weights = serialization.WEIGHTS_NAME
    else:
        torch.save(model.serialize(), tmp_path / "model.bin")
        files = {"pytorch_model.bin": (tmp_path / "model.bin").read_bytes()}
        weights = "pytorch_model.bin"
    snapshot = add_to_cache(offline_hub, "org/cut", files, SHA_MAIN)
    assert same_outputs(TwoStepTDCN.from_pretrained("org/cut"), model)  # intact: loads
    blob = (snapshot / weights).resolve()
    blob.write_bytes(files[weights][: len(files[weights]) * 2 // 3])
    with pytest.raises(sources.HubCacheCorruptError) as info:
        TwoStepTDCN.from_pretrained("org/cut")
    message = str(info.value)
    assert str(blob) in message and weights in message and "incomplete or corrupt" in message
    assert "hf cache rm model/org/cut" in message and "hf download org/cut" in message
    assert isinstance(info.value, OSError)  # twostep-separate reports it as "cannot load model"


def test_altered_cached_blob_of_the_right_length_is_refused(offline_hub, tmp_path):
    """Same length, other bytes: the sha256 the blob is named by catches it."""
    model = TwoStepTDCN(n_src=2, **SMALL).eval()
    files = folder_files(model, tmp_path)
    snapshot = add_to_cache(offline_hub, "org/flipped", files, SHA_MAIN)
    data = bytearray(files[serialization.WEIGHTS_NAME])
    data[-1] ^= 0xFF
    (snapshot / serialization.WEIGHTS_NAME).resolve().write_bytes(bytes(data))
    with pytest.raises(sources.HubCacheCorruptError, match="sha256"):
        TwoStepTDCN.from_pretrained("org/flipped")


def test_card_licence_follows_the_training_voices(tmp_path):
    """The weights' licence comes from the training voices only: share-alike gives cc-by-sa-3.0,
    GPL-2.0-only beside CC-BY-SA gives `other` (no single id covers both), and held-out test voices
    do not count."""
    from twostep_asteroid.hub import corpus_card_infos

    def corpus(train, speakers):
        d = tmp_path / "_".join(train)
        d.mkdir()
        (d / "corpus.json").write_text(json.dumps({"name": "prompts", "train_speakers": train,
                                                   "speakers": {k: {"license": v} for k, v in speakers.items()}}))
        return d

    voices = {"allison": "CC-BY-SA-3.0", "carlo": "CC-BY-3.0", "fillets-m": "GPL-2.0-only", "july": "GPL-2.0-only"}
    assert corpus_card_infos(corpus(["allison", "carlo"], voices))["license"] == "cc-by-sa-3.0"
    assert corpus_card_infos(corpus(["carlo"], voices))["license"] == "cc-by-3.0"
    infos = corpus_card_infos(corpus(["allison", "fillets-m"], voices))
    assert infos["license"] == "other"
    assert infos["data_licenses"] == {"allison": "CC-BY-SA-3.0", "fillets-m": "GPL-2.0-only"}  # not july
    card = model_card(TwoStepTDCN(n_src=2, **SMALL), dataset_name="prompts", license=infos["license"],
                      extra_infos={"data_licenses": infos["data_licenses"]})
    assert "license: other" in card and "license_name: mixed-training-data-licences" in card
    # Each training speaker's licence is in the card's table, as the License section says.
    assert "| allison | CC-BY-SA-3.0 |" in card and "| fillets-m | GPL-2.0-only |" in card
    assert "july" not in card


def test_card_licence_of_corpora_without_speaker_licences(tmp_path):
    """ESC-50 states one corpus-wide licence (non-commercial): the card says so. A user's own
    recordings with no licence given get `other`, not a licence nobody granted."""
    from twostep_asteroid.hub import corpus_card_infos

    esc = tmp_path / "esc50"
    esc.mkdir()
    (esc / "corpus.json").write_text(json.dumps({"name": "esc50", "licenses": [
        {"title": "ESC-50", "license": "CC BY-NC 3.0", "non_commercial": True}]}))
    infos = corpus_card_infos(esc)
    assert infos["license"] == "cc-by-nc-3.0" and infos["data_licenses"] == {"esc50": "CC BY-NC 3.0"}
    own = tmp_path / "audio_dir"
    own.mkdir()
    (own / "corpus.json").write_text(json.dumps({"name": "audio_dir", "train_speakers": ["a", "b"],
                                                 "speakers": {"a": {}, "b": {}}}))
    assert corpus_card_infos(own)["license"] == "other"
    (own / "corpus.json").write_text(json.dumps({"name": "audio_dir", "train_speakers": ["a", "b"],
                                                 "speakers": {"a": {"license": "CC-BY-4.0"}, "b": {"license": "CC-BY-4.0"}}}))
    assert corpus_card_infos(own)["license"] == "cc-by-4.0"


def test_card_names_the_parent_of_a_fine_tuned_model():
    conf = TwoStepTDCN(n_src=2, **SMALL).serialize()
    assert "Fine-tuned from" not in model_card(conf)
    conf["infos"]["init_from"] = "org/parent"
    assert "Fine-tuned from `org/parent`" in model_card(conf)


def test_card_states_the_training_noise_of_a_noisy_run_and_nothing_for_a_clean_one(tmp_path, capsys):
    """data.noise on: the card's Training table and config.json's infos say which noise the training
    mixtures had (read from the conf.yml beside --model, or --conf); off: no word of noise."""
    from twostep_asteroid.config import load_config, save_config

    model = TwoStepTDCN(n_src=2, **SMALL)
    run = tmp_path / "step2"
    run.mkdir()
    pth = run / BEST_MODEL_NAME
    torch.save(model.serialize(), pth)
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"si_sdr_imp": 3.5, "noise": {"color": "pink", "snr_db": [0.0, 10.0]}}))
    save_config(load_config(None, ["data.noise=pink"]), run / "conf.yml")
    assert hub.main(["package", "--model", str(pth), "--out_dir", str(tmp_path / "noisy"),
                     "--results", str(results)]) == 0
    card = (tmp_path / "noisy" / "README.md").read_text()
    assert ("| training mixtures | with added noise: pink, 0 to 10 dB SNR (`data.noise`; new noise at every "
            "epoch, the targets are the clean speakers) |") in card
    infos = json.loads((tmp_path / "noisy" / "config.json").read_text())["infos"]
    assert infos["training_noise"] == {"color": "pink", "snr_db": [0.0, 10.0]}
    # --conf names another run's conf: it wins over the one beside the model
    other = tmp_path / "brown.yml"
    save_config(load_config(None, ["data.noise=brown", "data.noise_snr_db=[5.0, 5.0]"]), other)
    assert hub.main(["package", "--model", str(pth), "--out_dir", str(tmp_path / "brown"), "--conf", str(other)]) == 0
    assert "with added noise: brown, 5 dB SNR" in (tmp_path / "brown" / "README.md").read_text()
    # clean training and test mixtures: nothing about noise
    save_config(load_config(None, []), run / "conf.yml")
    results.write_text(json.dumps({"si_sdr_imp": 3.5, "noise": None}))
    assert hub.main(["package", "--model", str(pth), "--out_dir", str(tmp_path / "clean"),
                     "--results", str(results)]) == 0
    card = (tmp_path / "clean" / "README.md").read_text()
    assert "noise" not in card.lower(), card
    assert "training_noise" not in json.loads((tmp_path / "clean" / "config.json").read_text())["infos"]
    capsys.readouterr()
