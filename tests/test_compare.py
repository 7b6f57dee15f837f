"""Tests of the comparison tools: oracle masks (STFT and learned), the front-end table, the runs table."""
import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from twostep_asteroid import compare
from twostep_asteroid.metrics import si_sdr_improvement
from twostep_asteroid.models import TwoStepFrontEnd
from twostep_asteroid.serialization import BEST_MODEL_NAME
from twostep_asteroid.targets import (
    MASK_TYPES,
    front_end_oracle_separation,
    oracle_masks,
    stft_oracle_separation,
)
from tests.synthetic import HarmonicMixtures

SR = 8000


def _tones(freqs, n=8000, amp=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / SR
    out = sum(torch.sin(2 * math.pi * f * t + 6.28 * torch.rand(1, generator=gen)) for f in freqs)
    return amp * out * (0.7 + 0.3 * torch.sin(2 * math.pi * 1.5 * t))


def _disjoint_pair(n=8000):
    """Two sources in disjoint frequency bands: every STFT bin belongs to one source."""
    sources = torch.stack([_tones([250.0, 375.0], n), _tones([2500.0, 3125.0], n, seed=1)]).unsqueeze(0)
    return sources.sum(1), sources


def _harmonic_batch(n_items=3):
    data = HarmonicMixtures(n_items=n_items, n_samples=4000)
    return torch.stack([data[i][0] for i in range(n_items)]), torch.stack([data[i][1] for i in range(n_items)])


# ---------------------------------------------------------------------------------- oracle masks
@pytest.mark.parametrize("mask", MASK_TYPES)
def test_oracle_masks_shapes_and_sum_to_one(mask):
    reps = torch.rand(2, 3, 5, 7) * 4
    masks = oracle_masks(reps, mask)
    assert masks.shape == reps.shape
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 5, 7))
    assert (masks >= 0).all()


def test_binary_mask_is_the_argmax_and_the_limit_of_the_softmax():
    reps = torch.rand(2, 2, 6, 9)
    binary = oracle_masks(reps, "binary")
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(binary.argmax(1), reps.argmax(1))
    # Large values saturate the softmax into the binary mask; tiny ones flatten it to 1 / n_src.
    torch.testing.assert_close(oracle_masks(reps * 1e4, "softmax"), binary)
    torch.testing.assert_close(oracle_masks(reps * 1e-6, "softmax"), torch.full_like(reps, 0.5))
    # The ratio mask ignores the scale.
    torch.testing.assert_close(oracle_masks(reps * 1e3, "irm"), oracle_masks(reps, "irm"))


def test_unknown_mask_is_refused():
    with pytest.raises(ValueError, match="binary"):
        oracle_masks(torch.rand(1, 2, 3, 4), "ibm2")
    with pytest.raises(ValueError):
        compare.oracle_scores([compare.stft_system(64)], HarmonicMixtures(n_items=1), masks=("nope",))


# -------------------------------------------------------------------------------------- STFT oracles
@pytest.mark.parametrize("mask", ["irm", "binary"])
def test_stft_oracle_of_disjoint_frequency_sources_is_very_high(mask):
    mixture, sources = _disjoint_pair()
    est = stft_oracle_separation(mixture, sources, n_fft=256, hop=128, mask=mask)
    assert est.shape == sources.shape
    assert si_sdr_improvement(est, sources, mixture).item() > 25.0


def test_stft_softmax_depends_on_the_level_irm_and_binary_do_not():
    mixture, sources = _harmonic_batch()

    def sisdri(scale, mask):
        est = stft_oracle_separation(mixture * scale, sources * scale, n_fft=128, hop=64, mask=mask)
        return si_sdr_improvement(est, sources * scale, mixture * scale).mean().item()

    for mask in ("irm", "binary"):
        assert sisdri(1e-3, mask) == pytest.approx(sisdri(1.0, mask), abs=0.05)
    assert abs(sisdri(1e-4, "softmax")) < 0.1                        # flat 0.5 masks: nothing separated
    assert sisdri(1e3, "softmax") == pytest.approx(sisdri(1.0, "binary"), abs=0.05)  # saturated: binary
    assert sisdri(1e-4, "softmax") < sisdri(1.0, "irm") - 5


# ---------------------------------------------------------------------------------- learned oracles
def test_learned_softmax_oracle_is_the_front_end_own_oracle():
    mixture, sources = _harmonic_batch(2)
    front_end = TwoStepFrontEnd(n_src=2, n_filters=32, kernel_size=16).eval()
    with torch.no_grad():
        own = front_end(mixture, sources)["estimates"][:, :2]
        ours = front_end_oracle_separation(front_end, mixture, sources, mask="softmax")
        for mask in MASK_TYPES:
            assert front_end_oracle_separation(front_end, mixture, sources, mask=mask).shape == sources.shape
    torch.testing.assert_close(ours, own)


def test_binary_mask_gives_ties_to_the_first_source():
    # Ties happen in a learned latent space: where both sources are silent, both encodings are
    # ReLU(bias). The softmax splits such bins evenly, the binary mask gives them to source 1.
    reps = torch.tensor([[[[2.0, 1.0]], [[2.0, 3.0]]]])
    torch.testing.assert_close(oracle_masks(reps, "binary")[0, :, 0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(oracle_masks(reps, "softmax")[0, :, 0, 0], torch.tensor([0.5, 0.5]))


# ---------------------------------------------------------------------------- front-end comparison
def test_oracle_scores_summary_and_table():
    dataset = HarmonicMixtures(n_items=3, n_samples=4000)
    systems = [compare.stft_system(32), compare.stft_system(256),
               compare.learned_system(TwoStepFrontEnd(n_src=2, n_filters=16, kernel_size=16), steps=7)]
    assert (systems[0].window, systems[0].hop, systems[0].n_bases) == (32, 16, 17)
    rows = compare.oracle_scores(systems, dataset, masks=("irm", "softmax"), max_items=2)
    assert len(rows) == 2 * 3 * 2
    assert all(np.isfinite(r["si_sdr_imp"]) for r in rows)
    summary = compare.summarize_oracles(rows, systems)
    assert [(r["system"], r["mask"]) for r in summary][:2] == [("STFT 32/16", "irm"), ("STFT 32/16", "softmax")]
    assert all(r["n_utts"] == 2 for r in summary)
    stft256 = [r["si_sdr_imp"] for r in rows if r["system"] == "STFT 256/128" and r["mask"] == "irm"]
    assert summary[2]["si_sdr_imp"] == pytest.approx(np.mean(stft256))
    best = compare.best_oracles(summary)
    assert best["stft"]["si_sdr_imp"] == max(r["si_sdr_imp"] for r in summary if r["kind"] == "stft")
    assert best["learned"]["mask"] == "softmax"
    assert best["margin"] == pytest.approx(best["learned"]["si_sdr_imp"] - best["stft"]["si_sdr_imp"])
    table = compare.frontends_markdown(summary)
    assert "| learned N=16 L=16 | 16 | 16 | 8 | 7 |" in table
    assert ("NOT above" in table) == (best["margin"] <= 0)


def test_best_oracle_verdict():
    summary = [dict(system="STFT 512/256", kind="stft", mask="irm", si_sdr_imp=12.0),
               dict(system="STFT 512/256", kind="stft", mask="binary", si_sdr_imp=12.5),
               dict(system="learned", kind="learned", mask="binary", si_sdr_imp=30.0),
               dict(system="learned", kind="learned", mask="softmax", si_sdr_imp=11.0)]
    best = compare.best_oracles(summary)
    # The learned front end is judged on the paper's (softmax) mask only.
    assert best["stft"]["mask"] == "binary" and best["margin"] == pytest.approx(-1.5)


# ----------------------------------------------------------------------------------------- runs table
def _fake_run(root, system, dm, seed, sisdri, steps=100, step1_steps=50):
    base = root / f"dm{dm}_seed{seed}"
    run = base / ("end_to_end" if system == compare.END_TO_END else "two_step")
    (run / "eval").mkdir(parents=True)
    conf = {"data": {"dynamic_mixing": dm}, "trainer": {"seed": seed},
            "step2": {"train_front_end": system == compare.END_TO_END, "max_steps": 100}}
    (run / "conf.yml").write_text(yaml.safe_dump(conf))
    (run / "summary.json").write_text(json.dumps({"global_step": steps, "train_seconds": 120.0}))
    (run / "eval" / "results.json").write_text(json.dumps({"si_sdr_imp": sisdri, "n_utterances": 10}))
    (base / "step1").mkdir(exist_ok=True)
    (base / "step1" / "summary.json").write_text(json.dumps({"global_step": step1_steps}))
    return run


def test_runs_table_statistics(tmp_path):
    T, E = compare.TWO_STEP, compare.END_TO_END
    runs = [_fake_run(tmp_path, T, True, 0, 3.0), _fake_run(tmp_path, T, True, 1, 5.0),
            _fake_run(tmp_path, E, True, 0, 2.0), _fake_run(tmp_path, E, True, 1, 3.0, steps=90),
            _fake_run(tmp_path, T, False, 0, 1.0)]
    rows = [compare.load_run(r) for r in runs]
    assert rows[0]["front_end_steps"] == 50 and rows[2]["front_end_steps"] is None
    assert rows[0]["train_minutes"] == 2.0
    groups = {(g["system"], g["dynamic_mixing"]): g for g in compare.aggregate_runs(rows)}
    assert groups[T, True]["si_sdr_imp"] == pytest.approx(4.0)
    assert groups[T, True]["std"] == pytest.approx(math.sqrt(2.0))  # sample std of (3, 5)
    assert groups[E, True]["si_sdr_imp"] == pytest.approx(2.5) and groups[E, True]["seeds"] == "0 1"
    assert groups[T, False]["n_seeds"] == 1 and math.isnan(groups[T, False]["std"])
    diffs = compare.paired_differences(rows, "system", T, E, "dynamic_mixing")
    assert len(diffs) == 1  # no end-to-end run without dynamic mixing: no pair there
    d = diffs[0]
    assert d["mean"] == pytest.approx(1.5) and d["std"] == pytest.approx(math.sqrt(0.5)) and d["n_pairs"] == 2
    assert d["per_seed"] == "0:+1.00 1:+2.00" and d["same_steps"] is False  # seed 1: 100 vs 90 steps
    dm = compare.paired_differences(rows, "dynamic_mixing", True, False, "system")
    assert len(dm) == 1 and dm[0]["mean"] == pytest.approx(2.0) and dm[0]["n_pairs"] == 1

    text = compare.runs_table(runs, tmp_path / "out")
    assert "| two-step - end-to-end | dynamic mixing on | +1.50 ± 0.71 | 2 |" in text
    assert "| NO |" in text
    with open(tmp_path / "out" / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    assert (tmp_path / "out" / "runs.md").read_text() == text


def test_runs_table_names_what_is_missing(tmp_path):
    run = _fake_run(tmp_path, compare.TWO_STEP, True, 0, 1.0)
    (run / "eval" / "results.json").unlink()
    with pytest.raises(FileNotFoundError, match="evaluate"):
        compare.load_run(run)
    with pytest.raises(FileNotFoundError, match="conf.yml is missing"):
        compare.load_run(tmp_path / "nothing")


# ----------------------------------------------------------------------------------------------- CLI
def _manifests(root, n_items=2, n=4000):
    lists = {"mix": [], "s1": [], "s2": []}
    data = HarmonicMixtures(n_items=n_items, n_samples=n)
    for i in range(n_items):
        mix, sources = data[i]
        scale = 0.2 / float(mix.abs().max())
        for name, x in (("mix", mix), ("s1", sources[0]), ("s2", sources[1])):
            path = root / "wav" / name / f"m{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (x * scale).numpy(), SR, subtype="FLOAT")
            lists[name].append([str(path), n])
    json_dir = root / "json" / "tt"
    json_dir.mkdir(parents=True)
    for name, lst in lists.items():
        (json_dir / f"{name}.json").write_text(json.dumps(lst))
    return json_dir


def test_cli_frontends_and_runs(tmp_path, capsys):
    json_dir = _manifests(tmp_path)
    fe_dir = tmp_path / "N16_L16"
    fe_dir.mkdir()
    torch.save(TwoStepFrontEnd(n_src=2, n_filters=16, kernel_size=16).serialize(), fe_dir / BEST_MODEL_NAME)
    (fe_dir / "summary.json").write_text(json.dumps({"global_step": 12}))
    out = tmp_path / "out"
    assert compare.main(["frontends", "--data_dir", str(json_dir), "--out_dir", str(out), "--front_ends",
                         str(fe_dir / BEST_MODEL_NAME), "--windows", "32", "64", "--masks", "irm", "softmax"]) == 0
    with open(out / "frontends.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 and {r["n_utts"] for r in rows} == {"2"}
    assert {r["system"] for r in rows} == {"STFT 32/16", "STFT 64/32", "learned N=16 L=16"}
    assert (out / "frontends.png").stat().st_size > 5000
    with open(out / "frontends_per_utterance.csv") as f:
        assert len(list(csv.DictReader(f))) == 2 * 3 * 2
    printed = capsys.readouterr().out
    assert "| learned N=16 L=16 | 16 | 16 | 8 | 12 |" in printed and "Best STFT oracle" in printed

    run = _fake_run(tmp_path / "runs", compare.TWO_STEP, True, 3, 1.25)
    assert compare.main(["runs", str(run), "--out_dir", str(tmp_path / "runs_out")]) == 0
    assert "| two-step | on | 3 | 100 (100) | 50 | 2.0 | 1.25 | 10 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        compare.main(["frontends", "--data_dir", str(json_dir), "--out_dir", str(out), "--masks", "ibm2"])
