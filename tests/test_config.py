"""The recipe's conf files are valid and list every key (no hidden defaults)."""
from pathlib import Path

import pytest
import yaml

from twostep_asteroid.config import DEFAULTS, MACHINE_KEYS, load_config

CONF_DIR = Path(__file__).resolve().parents[1] / "egs" / "wsj0-2mix" / "twostep" / "conf"


@pytest.mark.parametrize("name", ["default.yml", "paper.yml", "causal.yml"])
def test_recipe_confs_are_valid_and_complete(name):
    raw = yaml.safe_load((CONF_DIR / name).read_text())
    load_config(CONF_DIR / name)
    for section, keys in DEFAULTS.items():
        assert set(raw[section]) == set(keys), f"{name}: section {section} must list exactly {sorted(keys)}"


def test_schema_defaults_are_the_default_conf():
    """One source of defaults: the schema holds conf/default.yml's values, but for the machine keys."""
    raw = yaml.safe_load((CONF_DIR / "default.yml").read_text())
    differ = {(s, k) for s, keys in DEFAULTS.items() for k, v in keys.items() if raw[s][k] != v}
    assert differ <= MACHINE_KEYS, f"conf/default.yml and config.DEFAULTS differ in {sorted(differ - MACHINE_KEYS)}"


def test_tiny_conf_is_valid():
    conf = load_config(CONF_DIR / "tiny.yml")
    assert conf["step2"]["max_steps"] <= 100


def test_paper_conf_is_the_papers_setting():
    conf = load_config(CONF_DIR / "paper.yml")
    fe, masker = conf["front_end"], conf["masker"]
    assert (fe["n_filters"], fe["kernel_size"], fe["stride"]) == (256, 21, 10)
    assert (masker["bn_chan"], masker["hid_chan"], masker["n_blocks"], masker["n_repeats"]) == (256, 512, 8, 4)
    assert conf["data"]["segment"] == 4.0 and conf["data"]["sample_rate"] == 8000


def test_pseudo_speaker_and_voice_pool_keys(capsys):
    from twostep_asteroid.config import ConfigError, main

    for name in ("default.yml", "paper.yml"):  # off until measured; every voice not held out
        conf = load_config(CONF_DIR / name)
        assert conf["data"]["speed_perturb"] == 0.0 and conf["data"]["train_speakers"] is None
    conf = load_config(overrides=["data.speed_perturb=0.5", "data.speed_range=[0.9, 1.1]",
                                  "data.train_speakers=[allison, june]"])
    assert conf["data"]["speed_range"] == [0.9, 1.1] and conf["data"]["train_speakers"] == ["allison", "june"]
    for bad, what in (("data.speed_perturb=1.5", "probability"), ("data.speed_range=[1.1, 0.9]", "low <= high"),
                      ("data.speed_range=[0.9]", "low <= high"), ("data.train_speakers=allison", "list"),
                      ("data.train_speakers=[1, 2]", "speaker ids")):
        with pytest.raises(ConfigError, match=what):
            load_config(overrides=[bad])
    assert main(["get", "data.train_speakers", "data.train_speakers=[allison, june]"]) == 0
    assert main(["get", "data.train_speakers"]) == 0
    assert capsys.readouterr().out == "allison,june\n\n"  # comma-separated for run.sh; null: empty


def test_causal_conf_is_causal_and_inconsistent_causal_settings_fail():
    from twostep_asteroid.config import ConfigError

    conf = load_config(CONF_DIR / "causal.yml")
    masker = conf["masker"]
    assert masker["causal"] and masker["norm_type"] == "cLN" and not masker["feature_norm"]
    with pytest.raises(ConfigError, match="norm_type"):
        load_config(CONF_DIR / "causal.yml", ["masker.norm_type=gLN"])
    with pytest.raises(ConfigError, match="feature_norm"):
        load_config(CONF_DIR / "causal.yml", ["masker.feature_norm=true"])


def test_model_defaults_are_the_paper_conf():
    """Two sets of defaults, one home each: the recipe's are the schema (conf/default.yml); the model
    classes', like Asteroid's ConvTasNet, are the paper's setting, which is conf/paper.yml."""
    from twostep_asteroid.models import TwoStepFrontEnd, TwoStepTDCN

    paper = load_config(CONF_DIR / "paper.yml")
    args = TwoStepTDCN(n_src=paper["data"]["n_src"]).get_model_args()
    expected = {**paper["front_end"], **{k: v for k, v in paper["masker"].items() if k != "type"},
                "sample_rate": paper["data"]["sample_rate"]}
    assert {k: args[k] for k in expected} == expected
    front = TwoStepFrontEnd().get_model_args()
    assert {k: front[k] for k in paper["front_end"]} == paper["front_end"]
