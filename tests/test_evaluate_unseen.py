"""Stage 3's unseen-speaker tests: ``evaluate --unseen_dir`` (results.json nesting, one table of all
test sets) and the model card's column per test set. A tiny untrained model on tiny manifests."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.evaluate import main, result_sets, results_markdown, unseen_name
from twostep_asteroid.hub import model_card
from twostep_asteroid.serialization import save_pretrained

from tests.synthetic import SMALL

SR = 8000
SEEN_KEYS = ("si_sdr", "si_sdr_imp", "oracle_latent_si_sdr_imp", "oracle_stft_irm_si_sdr_imp", "n_utterances")


def _manifests(root, name, n, f0s, seed):
    rng = np.random.default_rng(seed)
    lists = {"mix": [], "s1": [], "s2": []}
    t = np.arange(int(0.6 * SR)) / SR
    for i in range(n):
        s1 = 0.2 * np.sin(2 * np.pi * f0s[0] * (1 + 0.05 * i) * t) * rng.uniform(0.5, 1)
        s2 = 0.1 * rng.standard_normal(len(t)) * np.sin(2 * np.pi * f0s[1] * t) ** 2
        for key, x in (("s1", s1), ("s2", s2), ("mix", s1 + s2)):
            p = root / "wav" / name / key / f"m{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, x.astype(np.float32), SR, subtype="FLOAT")
            lists[key].append([str(p), len(t)])
    jd = root / "json" / name
    jd.mkdir(parents=True)
    for key, lst in lists.items():
        (jd / f"{key}.json").write_text(json.dumps(lst))
    return jd


def test_evaluate_reports_unseen_tests_beside_the_seen_one(tmp_path, capsys):
    torch.manual_seed(0)
    model = save_pretrained(TwoStepTDCN(n_src=2, **SMALL).eval(), tmp_path / "model")
    tt = _manifests(tmp_path, "tt", 3, (150, 3), seed=0)
    unseen = _manifests(tmp_path, "tt_unseen", 2, (300, 5), seed=1)
    codec2 = _manifests(tmp_path, "tt_codec2", 4, (90, 2), seed=2)
    out = tmp_path / "eval"
    main(["--model", str(model), "--data_dir", str(tt), "--unseen_dir", str(unseen), "--unseen_dir", str(codec2),
          "--out_dir", str(out), "eval.metrics=[si_sdr]", "eval.num_workers=1", "eval.n_examples=1"])
    res = json.loads((out / "results.json").read_text())
    assert all(k in res for k in SEEN_KEYS) and res["n_utterances"] == 3  # seen test: top-level keys kept
    assert res["unseen"]["n_utterances"] == 2 and res["codec2"]["n_utterances"] == 4
    for name in ("unseen", "codec2"):
        assert all(k in res[name] for k in SEEN_KEYS)
        assert json.loads((out / name / "results.json").read_text()) == res[name]
        assert (out / name / "metrics.csv").is_file()
        assert res[name]["si_sdr_imp"] != res["si_sdr_imp"]  # another test set, other numbers
    table = (out / "results.md").read_text()
    assert table == results_markdown(res) and table in capsys.readouterr().out
    assert "| TwoStepTDCN | seen (3) |" in table and "| TwoStepTDCN | unseen (2) |" in table
    assert f"| Oracle: STFT ideal ratio mask | codec2 (4) | {res['codec2']['oracle_stft_irm_si_sdr_imp']:.2f} |" in table
    assert f"| Oracle: learned front end (ideal latent masks) | unseen (2) | " \
           f"{res['unseen']['oracle_latent_si_sdr_imp']:.2f} |" in table
    with pytest.raises(SystemExit):  # two sets of the same name would overwrite each other
        main(["--model", str(model), "--data_dir", str(tt), "--unseen_dir", str(unseen), "--unseen_dir",
              str(unseen), "--out_dir", str(out)])


def test_results_markdown_without_unseen_tests_is_unchanged():
    means = {"si_sdr_imp": 3.07, "sdr_imp": 3.5, "stoi": 0.8, "pesq": 1.9, "oracle_latent_si_sdr_imp": 12.0,
             "oracle_stft_irm_si_sdr_imp": 13.0, "n_utterances": 200}
    assert results_markdown(means) == (
        "| System | SI-SDRi (dB) | SDRi (dB) | STOI | PESQ |\n|---|---|---|---|---|\n"
        "| TwoStepTDCN | 3.07 | 3.50 | 0.80 | 1.90 |\n"
        "| Oracle: learned front end (ideal latent masks) | 12.00 | — | — | — |\n"
        "| Oracle: STFT ideal ratio mask | 13.00 | — | — | — |\n\n200 test mixtures.\n")
    assert [n for n, _ in result_sets({**means, "unseen": {"si_sdr_imp": 1.0}})] == ["seen", "unseen"]
    assert unseen_name("data/prompts/json/tt_unseen") == "unseen" and unseen_name("x/other") == "other"


def test_model_card_has_a_column_per_test_set():
    results = {"si_sdr_imp": 3.1, "stoi": 0.81, "unseen": {"si_sdr_imp": 0.4, "stoi": 0.7},
               "codec2": {"si_sdr_imp": -0.2}}
    card = model_card(TwoStepTDCN(n_src=2, **SMALL), results, "asterisk-prompts-2mix")
    meta, body = card[4:].split("\n---\n", 1)
    meta = yaml.safe_load(meta)
    assert meta["metrics"] == ["si_sdr_imp", "stoi"]
    entries = meta["model-index"][0]["results"]
    assert [e["dataset"]["name"] for e in entries] == [
        "asterisk-prompts-2mix", "asterisk-prompts-2mix (unseen speakers)", "asterisk-prompts-2mix (codec2 speakers)"]
    assert {m["type"]: m["value"] for m in entries[1]["metrics"]} == results["unseen"]
    assert "| Metric | seen | unseen | codec2 |" in body
    assert "| SI-SDRi (dB) | 3.10 | 0.40 | -0.20 |" in body and "| STOI | 0.81 | 0.70 | — |" in body
