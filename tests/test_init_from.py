"""Fine-tuning from a trained model (``step2.init_from``, run.sh ``--init_from``): a tiny model trained on
the corpus of tests/test_train.py, packaged, then fine-tuned on another tiny corpus (other audio, other
mixtures). Checks that training starts from the parent's weights, that the parent is recorded, and that
a model that does not fit the configuration fails before anything trains, naming the key."""
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from twostep_asteroid import TwoStepFrontEnd, TwoStepTDCN
from twostep_asteroid import train as train_module
from twostep_asteroid.config import ConfigError, load_config
from twostep_asteroid.data.prompts import CorpusConfig, build_corpus
from twostep_asteroid.hub import package_for_hub
from twostep_asteroid.models import load_separator
from twostep_asteroid.serialization import BEST_MODEL_NAME, CONFIG_NAME
from twostep_asteroid.sources import load_model_conf
from twostep_asteroid.train import budget_report, check_init_main, train_step1, train_step2
from tests.test_data_prompts import make_fake_tree
from tests.test_train import TINY, corpus, step1_dir  # noqa: F401  (module fixtures)

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wsj0-2mix" / "twostep"


@pytest.fixture(scope="module")
def parent(step1_dir, corpus, tmp_path_factory):
    """A tiny step-2 model, packaged for the Hub (config.json + model.safetensors)."""
    exp = tmp_path_factory.mktemp("parent") / "step2"
    train_step2(load_config(None, TINY), corpus, exp, step1_dir / BEST_MODEL_NAME)
    return package_for_hub(load_separator(exp / BEST_MODEL_NAME), exp.parent / "hub")


@pytest.fixture(scope="module")
def other_corpus(tmp_path_factory):
    """Another tiny corpus: other synthetic audio (tree seed) and other mixtures (corpus seed)."""
    tree = make_fake_tree(tmp_path_factory.mktemp("other_src"), seed=7)
    out = tmp_path_factory.mktemp("other_corpus") / "prompts"
    build_corpus([tree], out, CorpusConfig(n_tr=12, n_cv=4, n_tt=4, seed=11), progress=False)
    return out / "json"


def _conf(parent, *more):
    return load_config(None, TINY + [f"step2.init_from={parent}", *more])


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_run_sh_flow_skips_step1_starts_step2_from_the_parent_and_records_it(parent, other_corpus, tmp_path,
                                                                             monkeypatch):
    parent_conf = load_model_conf(parent)
    conf = _conf(parent)
    # Step 1 (step1.init_from_model: skip, the default): the parent's front end, not trained.
    fe_path = train_step1(conf, other_corpus, tmp_path / "step1")
    summary = json.loads((tmp_path / "step1" / "summary.json").read_text())
    assert summary["skipped"] and summary["global_step"] == 0 and summary["init_from"] == str(parent)
    assert isinstance(summary["val_oracle_sisdri"], float)
    assert not (tmp_path / "step1" / "checkpoints").exists()
    front_end = TwoStepFrontEnd.from_pretrained(fe_path)
    for k, v in front_end.state_dict().items():
        assert torch.equal(v, parent_conf["state_dict"][k]), k
    assert "skipped, the front end of" in budget_report(tmp_path)[0][0]

    # Step 2 on step 1's front end: the model it starts training from is the parent, weight for weight.
    started = {}
    build = train_module.build_separator

    def recording_build(*args, **kwargs):
        model = build(*args, **kwargs)
        started.update(_state(model))
        return model

    monkeypatch.setattr(train_module, "build_separator", recording_build)
    train_step2(conf, other_corpus, tmp_path / "step2", fe_path)
    assert started.keys() == parent_conf["state_dict"].keys()
    for k, v in started.items():
        assert torch.equal(v, parent_conf["state_dict"][k]), k
    # It trained: the masker and the decoder (step2.train_decoder) moved, the encoder stayed the parent's.
    child = TwoStepTDCN.from_pretrained(str(tmp_path / "step2" / BEST_MODEL_NAME))
    summary = json.loads((tmp_path / "step2" / "summary.json").read_text())
    assert summary["global_step"] == 4 and summary["init_from"] == str(parent)
    sd = child.state_dict()
    assert any(not torch.equal(sd[k], parent_conf["state_dict"][k]) for k in sd if k.startswith("masker."))
    assert any(not torch.equal(sd[k], parent_conf["state_dict"][k]) for k in sd if k.startswith("decoder."))
    assert all(torch.equal(sd[k], parent_conf["state_dict"][k]) for k in sd if k.startswith("encoder."))
    # The parent is recorded in conf.yml, in the model's infos, and survives Hub packaging.
    assert yaml.safe_load((tmp_path / "step2" / "conf.yml").read_text())["step2"]["init_from"] == str(parent)
    assert torch.load(tmp_path / "step2" / BEST_MODEL_NAME, weights_only=True)["infos"]["init_from"] == str(parent)
    assert child.init_from == str(parent) and child.serialize()["infos"]["init_from"] == str(parent)
    hub = package_for_hub(child, tmp_path / "hub")
    assert json.loads((hub / CONFIG_NAME).read_text())["infos"]["init_from"] == str(parent)


def test_step2_without_a_front_end_runs_on_the_parents(parent, other_corpus, tmp_path):
    """train step2 with init_from and no --front_end: the parent's front end (and, at lr 0, the parent)."""
    train_step2(_conf(parent, "step2.lr=0.0"), other_corpus, tmp_path / "s2")
    child = torch.load(tmp_path / "s2" / BEST_MODEL_NAME, weights_only=True)
    parent_sd = load_model_conf(parent)["state_dict"]
    assert child["state_dict"].keys() == parent_sd.keys()
    assert all(torch.equal(v, parent_sd[k]) for k, v in child["state_dict"].items())


def test_step1_finetune_starts_from_the_parents_front_end(parent, other_corpus, tmp_path):
    # At lr 0 the 4 steps leave the weights where they started: at the parent's front end.
    conf = _conf(parent, "step1.init_from_model=finetune", "step1.lr=0.0")
    train_step1(conf, other_corpus, tmp_path / "step1")
    summary = json.loads((tmp_path / "step1" / "summary.json").read_text())
    assert summary["global_step"] == 4 and summary["init_from"] == str(parent) and "skipped" not in summary
    parent_sd = load_model_conf(parent)["state_dict"]
    front_end = TwoStepFrontEnd.from_pretrained(str(tmp_path / "step1" / BEST_MODEL_NAME))
    assert all(torch.equal(v, parent_sd[k]) for k, v in front_end.state_dict().items())
    assert front_end.init_from == str(parent)


@pytest.mark.parametrize("override, named", [
    ("data.n_src=3", "has data.n_src=2 but the configuration says data.n_src=3; set data.n_src: 2"),
    ("data.sample_rate=16000", "has data.sample_rate=8000 but the configuration says data.sample_rate=16000"),
    ("front_end.kernel_size=8", "has front_end.kernel_size=16 but the configuration says front_end.kernel_size=8"),
    ("front_end.n_filters=32", "has front_end.n_filters=16 but the configuration says front_end.n_filters=32"),
    ("masker.bn_chan=16", "has masker.bn_chan=8 but the configuration says masker.bn_chan=16"),
    ("masker.norm_type=cLN", "has masker.norm_type=gLN but the configuration says masker.norm_type=cLN"),
    ("masker.type=sudormrf", "has masker.type=tdcn but the configuration says masker.type=sudormrf"),
])
def test_a_model_that_does_not_fit_fails_before_training_naming_the_key(parent, other_corpus, tmp_path, override,
                                                                       named):
    conf = _conf(parent, override)
    for step in (train_step1, train_step2):
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            step(conf, other_corpus, tmp_path / step.__name__)
        assert not (tmp_path / step.__name__).exists()  # nothing written, nothing trained
    assert check_init_main(TINY + [f"step2.init_from={parent}", override]) == 2


def test_unloadable_or_wrong_kind_of_model_is_named(step1_dir, other_corpus, tmp_path):
    with pytest.raises(ConfigError, match="cannot be loaded"):
        train_step2(_conf(tmp_path / "missing.pth"), other_corpus, tmp_path / "s2")
    with pytest.raises(ConfigError, match="holds a TwoStepFrontEnd, not a two-step separation model"):
        train_step2(_conf(step1_dir / BEST_MODEL_NAME), other_corpus, tmp_path / "s2")
    assert not (tmp_path / "s2").exists()


def test_step1_mode_is_checked():
    with pytest.raises(ConfigError, match=r"step1\.init_from_model .*must be one of \[.finetune., .skip.\]"):
        load_config(None, ["step1.init_from_model=reuse"])
    assert load_config(None)["step2"]["init_from"] is None


def _run_sh(tmp_path, *options):
    return subprocess.run(["./run.sh", "--stage", "9", "--exp_root", str(tmp_path / "exp"), "--data_root",
                           str(tmp_path / "data"), "--tag", "ft", *options],
                          cwd=RECIPE, capture_output=True, text=True, timeout=300)


def test_run_sh_init_from(parent, tmp_path):
    """--init_from is the override step2.init_from; a model that does not fit fails before exp/<tag>/ exists."""
    tiny = " ".join(TINY)
    proc = _run_sh(tmp_path, "--init_from", str(parent), "--overrides", f"{tiny} data.n_src=3")
    assert proc.returncode == 2, proc.stderr
    assert "data.n_src=2 but the configuration says data.n_src=3" in proc.stderr
    assert not (tmp_path / "exp").exists()
    proc = _run_sh(tmp_path, "--init_from", str(parent), "--overrides", tiny)
    assert proc.returncode == 0, proc.stderr
    assert "fits the configuration" in proc.stdout
    assert load_config(tmp_path / "exp" / "ft" / "conf.yml")["step2"]["init_from"] == str(parent)
