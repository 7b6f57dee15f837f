"""The noisy variant of a clean corpus (issue 14): coloured noise added on the fly to the mixtures of
both datasets (``data.noise``, ``data.noise_snr_db``), the targets and scores staying the speakers.

The tolerances: a least-squares fit of the log periodogram against log frequency over 2^15 samples
finds the spectrum's exponent within 0.1 (its spread there is about 0.01); SNRs are checked to
0.01 dB (float32 rounding of the returned mixture)."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from twostep_asteroid.config import CHOICES, DEFAULTS, ConfigError, load_config
from twostep_asteroid.data.datasets import DynamicMixingDataset, make_dataset, noise_options, set_epoch
from twostep_asteroid.data.mixing import NOISE_COLORS, add_noise, colored_noise, rms

from tests.test_data_datasets import LENGTHS, SEG, SR, corpus  # noqa: F401  (module-scoped corpus fixture)

SNR = (0.0, 10.0)


def snr_db(speech, noisy):
    """SNR (dB) of ``speech`` over ``noisy - speech``."""
    speech, noisy = (np.asarray(x, dtype=np.float64) for x in (speech, noisy))
    return 10 * np.log10(np.sum(speech ** 2) / np.sum((noisy - speech) ** 2))


# ---------------------------------------------------------------------------- the signal
@pytest.mark.parametrize("color", sorted(NOISE_COLORS))
def test_colored_noise_has_its_spectrum_slope_and_unit_rms(color):
    x = colored_noise(np.random.default_rng(0), 2 ** 15, color)
    assert x.shape == (2 ** 15,) and rms(x) == pytest.approx(1.0, abs=1e-9) and abs(x.mean()) < 1e-9
    power, freqs = np.abs(np.fft.rfft(x)) ** 2, np.fft.rfftfreq(len(x))
    band = (freqs > 1e-3) & (freqs < 0.5)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert slope == pytest.approx(-NOISE_COLORS[color], abs=0.1)  # power 1/f^a: slope -a


def test_colored_noise_is_deterministic_and_refuses_an_unknown_color():
    a, b = (colored_noise(np.random.default_rng(3), 1000, "pink") for _ in range(2))
    assert np.array_equal(a, b)
    assert np.array_equal(colored_noise(np.random.default_rng(0), 1, "pink"), np.zeros(1))
    with pytest.raises(ValueError, match="noise must be one of .*'pink'"):
        colored_noise(np.random.default_rng(0), 100, "purple")


def test_add_noise_draws_the_snr_in_its_range():
    rng = np.random.default_rng(1)
    speech = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    snrs = [snr_db(speech, add_noise(speech, np.random.default_rng(k), "white", SNR)) for k in range(40)]
    assert all(SNR[0] - 0.01 <= s <= SNR[1] + 0.01 for s in snrs)
    assert max(snrs) - min(snrs) > 5  # drawn over the range, not fixed
    noisy = add_noise(speech, rng, "brown", (-5.0, -5.0))
    assert noisy.dtype == np.float32 and noisy.shape == speech.shape
    assert snr_db(speech, noisy) == pytest.approx(-5.0, abs=0.01)
    with pytest.raises(ValueError, match="noise_snr_db"):
        add_noise(speech, rng, "pink", (10.0, 0.0))


# ---------------------------------------------------------------------------- the datasets
@pytest.mark.parametrize("segment", [SEG, None])  # training crops (and padding), whole utterances
def test_static_mixtures_get_noise_and_keep_their_sources(corpus, segment):  # noqa: F811
    clean = make_dataset(corpus, segment=segment, seed=4)
    noisy = make_dataset(corpus, segment=segment, seed=4, noise="pink", noise_snr_db=SNR)
    assert noisy.noise_info == {"color": "pink", "snr_db": [0.0, 10.0]} and clean.noise_info is None
    for i, dur in enumerate(LENGTHS):
        (mix, src), (noisy_mix, noisy_src) = clean[i], noisy[i]
        assert torch.equal(src, noisy_src)  # the targets are the clean speakers
        T = int(SEG * SR) if segment else int(dur * SR)
        assert noisy_mix.shape == mix.shape == (T,) and noisy_mix.dtype == torch.float32
        assert SNR[0] - 0.01 <= snr_db(mix, noisy_mix) <= SNR[1] + 0.01
        if segment and int(dur * SR) < T:
            assert noisy_mix[-10:].abs().sum() > 0  # the noise spans the padded end too
        assert torch.equal(noisy_mix, noisy[i][0])  # same item, same noise


def test_noise_off_gives_the_clean_items(corpus):  # noqa: F811
    """``noise=None``: the items of the files, bit for bit (a crop of the mixture file where the
    sources were cropped; dynamic mixtures exactly the sum of the sources). The noise draws from a
    stream of its own: turned on, it leaves the sources as they were."""
    files = {k: [sf.read(path, dtype="float32")[0] for path, _ in json.loads((corpus / f"{k}.json").read_text())]
             for k in ("mix", "s1")}
    for kw in (dict(segment=SEG), dict(segment=None), dict(segment=SEG, dynamic_mixing=True, n_items=8)):
        clean, noisy = make_dataset(corpus, seed=2, noise=None, **kw), make_dataset(corpus, seed=2, noise="white", **kw)
        for ds in (clean, noisy):
            set_epoch(ds, 3)
        for i in range(len(clean)):
            (mix, src), (noisy_mix, noisy_src) = clean[i], noisy[i]
            assert torch.equal(src, noisy_src) and not torch.equal(mix, noisy_mix)
            if kw.get("dynamic_mixing"):
                assert torch.equal(mix, src.sum(0))
                continue
            s1, whole = files["s1"][i], files["mix"][i]
            n = min(len(s1), len(mix))
            start = next(k for k in range(len(s1) - n + 1) if np.array_equal(s1[k:k + n], src[0, :n].numpy()))
            assert np.array_equal(mix[:n].numpy(), whole[start:start + n]) and not mix[n:].any()


def test_static_split_noise_is_the_same_every_epoch_and_training_noise_is_not(corpus):  # noqa: F811
    whole = make_dataset(corpus, segment=None, noise="brown")
    first = [whole[i][0].clone() for i in range(len(whole))]
    set_epoch(whole, 5)
    assert all(torch.equal(a, whole[i][0]) for i, a in enumerate(first))  # cv/tt: fixed noisy mixtures
    assert all(torch.equal(a, b[0]) for a, b in zip(first, make_dataset(corpus, segment=None, noise="brown")))
    assert not torch.equal(first[0], make_dataset(corpus, segment=None, noise="brown", seed=1)[0][0])
    short = LENGTHS.index(0.3)  # no random crop: only the noise can change with the epoch
    train = make_dataset(corpus, segment=SEG, noise="brown")
    before = train[short][0].clone()
    set_epoch(train, 1)
    assert torch.equal(train[short][1], make_dataset(corpus, segment=SEG)[short][1])
    assert not torch.equal(before, train[short][0])  # training: new noise each epoch


def test_dynamic_mixtures_get_noise_deterministically(corpus):  # noqa: F811
    kw = dict(segment=SEG, dynamic_mixing=True, n_items=8, seed=5)
    clean, noisy = make_dataset(corpus, **kw), make_dataset(corpus, noise="pink", noise_snr_db=SNR, **kw)
    assert isinstance(noisy, DynamicMixingDataset) and len(noisy) == 8
    for i in range(8):
        mix, src = noisy[i]
        assert torch.equal(src, clean[i][1]) and mix.shape == (int(SEG * SR),)
        assert SNR[0] - 0.01 <= snr_db(src.sum(0), mix) <= SNR[1] + 0.01  # speech: the sum of the sources
    loader = torch.utils.data.DataLoader(noisy, batch_size=4, num_workers=2)
    assert torch.equal(torch.cat([m for m, _ in loader]), torch.stack([noisy[i][0] for i in range(8)]))
    with pytest.raises(ValueError, match="noise must be one of"):
        make_dataset(corpus, dynamic_mixing=True, noise="purple")
    with pytest.raises(ValueError, match="noise_snr_db"):
        make_dataset(corpus, noise="pink", noise_snr_db=(10, 0))


# ---------------------------------------------------------------------------- configuration and training
def test_noise_keys_parse_validate_and_name_the_key():
    assert DEFAULTS["data"]["noise"] is None and DEFAULTS["data"]["noise_snr_db"] == [0.0, 10.0]
    assert CHOICES[("data", "noise")] == set(NOISE_COLORS)  # one list of colours, in two places
    conf = load_config(overrides=["data.noise=pink", "data.noise_snr_db=[0,10]"])  # as run.sh --overrides passes them
    assert conf["data"]["noise"] == "pink" and conf["data"]["noise_snr_db"] == [0, 10]
    assert noise_options(conf["data"]) == {"noise": "pink", "noise_snr_db": (0, 10)}
    assert load_config(overrides=["data.noise=pink", "data.noise=null"])["data"]["noise"] is None
    for bad, match in (("data.noise=purple", r"data\.noise .*must be one of \['brown', 'pink', 'white'\]"),
                       ("data.noise=1", r"data\.noise .*must be a str"),
                       ("data.noise_snr_db=[10, 0]", r"data\.noise_snr_db .*low <= high"),
                       ("data.noise_snr_db=[0]", r"data\.noise_snr_db .*low <= high"),
                       ("data.noise_snr_db=5", r"data\.noise_snr_db .*must be a list")):
        with pytest.raises(ConfigError, match=match):
            load_config(overrides=[bad])


def test_training_and_its_oracle_read_the_noise_of_the_conf(corpus, tmp_path):  # noqa: F811
    from twostep_asteroid.train import _loaders, _oracle_set

    for split in ("tr", "cv"):
        (tmp_path / split).symlink_to(corpus)
    for dynamic in ("true", "false"):
        conf = load_config(overrides=["data.noise=brown", "data.noise_snr_db=[5, 15]", "trainer.seed=3",
                                      f"data.dynamic_mixing={dynamic}", "data.num_workers=0"])
        train, val = (loader.dataset for loader in _loaders(conf, tmp_path, dict(conf["step2"], batch_size=2,
                                                                                  val_every_n_steps=4), SR))
        oracle = _oracle_set(conf, tmp_path)
        for ds in (train, val, oracle):
            assert ds.noise_info == {"color": "brown", "snr_db": [5.0, 15.0]}
        assert torch.equal(oracle[0][0], val[0][0])  # the oracle sees validation's noisy mixtures
    assert _oracle_set(load_config(), tmp_path).noise is None


# ---------------------------------------------------------------------------- evaluation
def test_evaluation_uses_the_conf_noise_or_the_option_and_records_it(tmp_path, capsys):
    from twostep_asteroid import TwoStepTDCN
    from twostep_asteroid.compare import unseen_table
    from twostep_asteroid.evaluate import main, result_sets, results_markdown
    from twostep_asteroid.hub import model_card
    from twostep_asteroid.serialization import save_pretrained

    from tests.synthetic import SMALL
    from tests.test_evaluate_unseen import _manifests

    model = save_pretrained(TwoStepTDCN(n_src=2, **SMALL).eval(), tmp_path / "model")
    tt = _manifests(tmp_path, "tt", 3, (150, 3), seed=0)
    unseen = _manifests(tmp_path, "tt_unseen", 2, (300, 5), seed=1)
    conf = tmp_path / "conf.yml"  # a run's frozen conf with the noise on
    conf.write_text(yaml.safe_dump({"data": {"noise": "pink", "noise_snr_db": [0.0, 5.0]}}))
    fast = ["eval.metrics=[si_sdr]", "eval.num_workers=1", "eval.n_examples=1"]
    runs = {"clean": ["--noise", "none"], "conf": [], "option": ["--noise", "white", "--noise_snr_db", "-5", "-5"]}
    res = {}
    for name, opts in runs.items():
        out = tmp_path / "exp" / name / "eval"
        main(["--model", str(model), "--data_dir", str(tt), "--unseen_dir", str(unseen), "--out_dir", str(out),
              "--conf", str(conf), *opts, *fast])
        res[name] = json.loads((out / "results.json").read_text())
    assert res["clean"]["noise"] is None
    assert res["conf"]["noise"] == res["conf"]["unseen"]["noise"] == {"color": "pink", "snr_db": [0.0, 5.0]}
    assert res["option"]["noise"] == {"color": "white", "snr_db": [-5.0, -5.0]}
    # The noisy mixture is the input and the baseline: a lower input SI-SDR, the same references.
    base = {k: r["si_sdr"] - r["si_sdr_imp"] for k, r in res.items()}
    assert base["option"] < base["conf"] < base["clean"]
    assert [n for n, _ in result_sets(res["conf"])] == ["seen", "unseen"]  # "noise" is no test set
    table = (tmp_path / "exp" / "conf" / "eval" / "results.md").read_text()
    assert table == results_markdown(res["conf"]) and "Noise: pink, 0 to 5 dB SNR" in table
    assert "Noise" not in results_markdown(res["clean"])
    rows = unseen_table([tmp_path / "exp" / name / "eval" for name in runs])
    assert "| clean | seen | clean | 3 |" in rows and "| option | unseen | white, -5 dB SNR | 2 |" in rows
    assert "noise" not in model_card(TwoStepTDCN(n_src=2, **SMALL), res["conf"], "x").lower()
    with pytest.raises(SystemExit):
        main(["--model", str(model), "--data_dir", str(tt), "--out_dir", str(tmp_path / "bad"),
              "--noise", "pink", "--noise_snr_db", "10", "0"])
    assert "data.noise_snr_db" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the recipe's steps, tiny
@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    from twostep_asteroid.data.prompts import CorpusConfig, build_corpus

    from tests.test_data_prompts import make_fake_tree

    out = tmp_path_factory.mktemp("corpus") / "prompts"
    build_corpus([make_fake_tree(tmp_path_factory.mktemp("prompts_src"))], out,
                 CorpusConfig(n_tr=12, n_cv=4, n_tt=4, seed=3), progress=False)
    return out / "json"


def test_noisy_steps_1_2_and_evaluation_from_the_frozen_conf(prompts, tmp_path):
    """``./run.sh --overrides "data.noise=pink"``: both steps train on noisy mixtures, and stage 3
    (``evaluate --conf exp/<tag>/conf.yml``) scores on the noisy tt."""
    from twostep_asteroid.evaluate import main
    from twostep_asteroid.train import train_step1, train_step2

    from tests.test_train import TINY

    conf = load_config(None, TINY + ["data.noise=pink"])
    front_end = train_step1(conf, prompts, tmp_path / "step1")
    assert np.isfinite(json.loads((tmp_path / "step1" / "summary.json").read_text())["val_oracle_sisdri"])
    model = train_step2(conf, prompts, tmp_path / "step2", front_end)
    frozen = tmp_path / "step2" / "conf.yml"
    assert yaml.safe_load(frozen.read_text())["data"]["noise"] == "pink"
    main(["--model", str(model), "--data_dir", str(prompts / "tt"), "--out_dir", str(tmp_path / "eval"),
          "--conf", str(frozen), "eval.metrics=[si_sdr]", "eval.num_workers=1", "eval.n_examples=0"])
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["noise"] == {"color": "pink", "snr_db": [0.0, 10.0]} and results["n_utterances"] == 4
