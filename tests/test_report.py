"""The HTML reports: example choice, tables, and the pages themselves opened in headless Chromium.

The browser tests load pages built from a real (tiny) recipe run made here: a corpus built from a
fake prompt tree, steps 1 and 2 for a few steps, then ``python -m twostep_asteroid.evaluate``.
"""
import csv
import json
import re
import shutil
from types import SimpleNamespace
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.cli import separate_main
from twostep_asteroid.config import load_config
from twostep_asteroid.data.prompts import CorpusConfig, build_corpus
from twostep_asteroid.serialization import BEST_MODEL_NAME, save_pretrained
from twostep_asteroid.report import (comparison_report, markdown_to_html, pick_examples, read_csv_logs,
                                     write_examples)
from twostep_asteroid.train import train_step1, train_step2
from tests.browser import artefact_dir, local_path, open_report, problems
from tests.synthetic import SMALL, HarmonicMixtures
from tests.test_data_prompts import make_fake_tree
from tests.test_train import TINY


# ---------------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------------
def test_examples_span_the_ranking():
    values = [3.0, 1.0, 2.0, 5.0, 4.0, 0.0, 9.0]  # best index 6, median (4th) index 0, worst index 5
    picks = pick_examples(values, 3)
    assert [(p["index"], p["label"], p["rank"]) for p in picks] == [(6, "best", 1), (0, "median", 4), (5, "worst", 7)]
    five = pick_examples(values, 5)
    assert [p["index"] for p in five] == [6, 4, 0, 2, 5]
    assert [p["label"] for p in five] == ["best", "75th percentile", "median", "25th percentile", "worst"]
    assert [p["index"] for p in pick_examples([np.nan, 1.0, 2.0], 3)] == [2, 1]  # NaN never picked
    assert pick_examples(values, 0) == [] and pick_examples([], 3) == []


def test_write_examples_writes_the_chosen_mixtures_and_their_references(tmp_path):
    data = HarmonicMixtures(n_items=5, n_samples=800)
    items = []
    for k in range(5):
        mix, sources = data[k]
        est = sources + (k + 1) * 0.2 * torch.randn_like(sources)  # item 0 best ... item 4 worst
        items.append({"utt_id": f"u{k}", "mixture": mix.numpy(), "sources": sources.numpy(),
                      "estimates": est.numpy(), "scores": {"si_sdr_imp": 10.0 - k}})
    (tmp_path / "examples").mkdir()
    sf.write(tmp_path / "examples" / "stale_mix.wav", np.zeros(10), 8000)
    examples = write_examples(tmp_path / "examples", items, 8000, 3)
    assert [(e["utt_id"], e["label"]) for e in examples] == [("u0", "best"), ("u2", "median"), ("u4", "worst")]
    assert json.loads((tmp_path / "examples.json").read_text()) == examples
    names = sorted(p.name for p in (tmp_path / "examples").iterdir())
    assert names == sorted(f"u{k}_{s}.wav" for k in (0, 2, 4) for s in ("mix", "s1", "s2", "ref1", "ref2"))
    ref, _ = sf.read(tmp_path / "examples" / "u2_ref2.wav")
    peak = float(np.abs(items[2]["sources"][1]).max())
    gain = 0.99 / peak if peak > 0.99 else 1.0
    np.testing.assert_allclose(ref, items[2]["sources"][1] * gain, atol=1 / 32768)
    assert (examples[1]["gains_db"].get("u2_ref2.wav") is not None) == (peak > 0.99)
    assert examples[0]["per_source"][0]["si_sdr"] > examples[2]["per_source"][0]["si_sdr"]


def test_markdown_tables_become_html_tables():
    text = "| System | SI-SDRi (dB) |\n|---|---|\n| A <b> | 3.07 |\n\nTwo lines\nof text.\n"
    out = markdown_to_html(text)
    assert out == ('<table><thead><tr><th>System</th><th>SI-SDRi (dB)</th></tr></thead><tbody><tr><td>A &lt;b&gt;</td>'
                   '<td class="num">3.07</td></tr></tbody></table>\n<p>Two lines<br>of text.</p>')


def test_csv_logs_of_a_resumed_run_are_merged(tmp_path):
    for version, rows in ((0, [(9, 10, "1.0"), (19, 20, "2.0")]), (1, [(19, 20, "2.5"), (29, 30, "3.0")])):
        folder = tmp_path / "logs" / f"version_{version}"
        folder.mkdir(parents=True)
        with open(folder / "metrics.csv", "w") as f:
            f.write("epoch,step,loss,val_sisdri\n")
            for epoch, step, value in rows:
                f.write(f"0,{step},0.5,\n{epoch},{step},,{value}\n")
    steps, values = read_csv_logs(tmp_path)["val_sisdri"]
    assert steps.tolist() == [10, 20, 30] and values.tolist() == [1.0, 2.5, 3.0]


# ---------------------------------------------------------------------------------------------
# A tiny recipe run: corpus, step 1, step 2, evaluation (python -m twostep_asteroid.evaluate)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    from twostep_asteroid import evaluate

    tree = make_fake_tree(tmp_path_factory.mktemp("prompts_src"))
    corpus = tmp_path_factory.mktemp("data") / "prompts"
    build_corpus([tree], corpus, CorpusConfig(n_tr=12, n_cv=4, n_tt=6, seed=3), progress=False)
    exp = tmp_path_factory.mktemp("exp") / "tiny"
    train_step1(load_config(None, TINY), corpus / "json", exp / "step1")
    train_step2(load_config(None, TINY), corpus / "json", exp / "step2", exp / "step1" / BEST_MODEL_NAME)
    evaluate.main(["--model", str(exp / "step2" / BEST_MODEL_NAME), "--data_dir", str(corpus / "json" / "tt"),
                   "--out_dir", str(exp / "eval"),  # no --conf: the page shows the run's own conf.yml
                   "eval.metrics=[si_sdr,sdr,stoi]", "eval.num_workers=1", "eval.n_examples=3"])
    return SimpleNamespace(exp=exp, corpus=corpus)


def _results_rows(tables):
    """{first cell: row} of the page's results table (the one headed System | SI-SDRi ...)."""
    table = next(t for t in tables if t and t[0][:2] == ["System", "SI-SDRi (dB)"])
    return {row[0]: row for row in table[1:]}


def test_evaluation_report_in_a_browser(recipe_run, tmp_path):
    exp = recipe_run.exp
    eval_dir = exp / "eval"
    results = json.loads((eval_dir / "results.json").read_text())
    shot = artefact_dir(tmp_path) / "evaluation_report.png"
    info = open_report(eval_dir / "report.html", screenshot=shot)
    assert problems(info) == []
    assert shot.stat().st_size > 10_000

    # The results table shows results.json's numbers.
    rows = _results_rows(info["tables"])
    fmt = lambda key: f"{results[key]:.2f}"
    assert rows["TwoStepTDCN"][1:4] == [fmt("si_sdr_imp"), fmt("sdr_imp"), fmt("stoi")]
    assert rows["Oracle: learned front end (ideal latent masks)"][1] == fmt("oracle_latent_si_sdr_imp")
    assert rows["Oracle: STFT ideal ratio mask"][1] == fmt("oracle_stft_irm_si_sdr_imp")

    # Best, median and worst SI-SDRi of metrics.csv, each with mixture, 2 estimates, 2 references.
    with open(eval_dir / "metrics.csv") as f:
        ranked = sorted(csv.DictReader(f), key=lambda r: -float(r["si_sdr_imp"]))
    chosen = [ranked[0]["utt_id"], ranked[round((len(ranked) - 1) / 2)]["utt_id"], ranked[-1]["utt_id"]]
    for label, utt in zip(("Best", "Median", "Worst"), chosen):
        assert f"{label} SI-SDRi: {utt} " in info["text"]
    sources = sorted(local_path(a["src"]).name for a in info["audios"])
    assert sources == sorted(f"{u}_{s}.wav" for u in chosen for s in ("mix", "s1", "s2", "ref1", "ref2"))
    assert len(info["images"]) == len(info["audios"]) + 2  # a spectrogram per player, report.png, curves
    assert {local_path(i["src"]).name for i in info["images"]} >= {"report.png", "training_curves.png"}

    # The run: steps, training time, corpus and licence, configuration.
    summary = json.loads((exp / "step2" / "summary.json").read_text())
    assert f"Step 2 (separator): steps\t{summary['global_step']} (max 4)" in info["text"]
    assert "Step 1: training time" in info["text"] and "cc-by-sa-3.0" in info["text"]
    assert any(link.endswith("/LICENSES.md") and local_path(link).is_file() for link in info["links"])
    assert "masker:" in info["text"] and "n_blocks: 2" in info["text"]


def test_the_browser_check_fails_when_an_example_wav_is_missing(recipe_run, tmp_path):
    copy = tmp_path / "eval"
    shutil.copytree(recipe_run.exp / "eval", copy)
    victim = sorted((copy / "examples").glob("*_s1.wav"))[0]
    victim.unlink()
    found = problems(open_report(copy / "report.html"))
    assert found and all(victim.name in p for p in found), found


def test_separation_report_in_a_browser(tmp_path, capsys):
    model = TwoStepTDCN(n_src=2, sample_rate=8000, **SMALL)
    save_pretrained(model, tmp_path / "model")
    inputs = tmp_path / "in"
    inputs.mkdir()
    data = HarmonicMixtures(n_items=2, n_samples=8000)
    sf.write(inputs / "a.wav", data[0][0].numpy(), 8000)
    sf.write(inputs / "b.flac", data[1][0].numpy(), 16000)  # another rate and container
    out = tmp_path / "separated"
    assert separate_main([str(inputs), "--model", str(tmp_path / "model"), "--out_dir", str(out), "-q",
                          "--report"]) == 0
    assert f"Report (open in a browser): {out / 'report.html'}" in capsys.readouterr().err
    info = open_report(out / "report.html", screenshot=artefact_dir(tmp_path) / "separation_report.png")
    assert problems(info) == []
    played = sorted(str(local_path(a["src"])) for a in info["audios"])
    assert played == sorted([str(inputs / "a.wav"), str(inputs / "b.flac")]
                            + [str(out / f"{n}_s{c}.wav") for n in "ab" for c in (1, 2)])
    assert len(info["images"]) == 6 and "scores" in info["text"] and not info["tables"]
    with pytest.raises(SystemExit) as exit_info:  # --report a.wav a.wav ...: DIR is a file, a typo
        separate_main([str(inputs / "a.wav"), "--report", str(inputs / "a.wav"), "--model", str(tmp_path / "model")])
    assert exit_info.value.code == 2 and "--report takes a folder" in capsys.readouterr().err
    # --report DIR: the page elsewhere, with links back to the separated files.
    assert separate_main([str(inputs / "a.wav"), "--model", str(tmp_path / "model"), "--out_dir", str(out), "-q",
                          f"--report={tmp_path / 'page'}"]) == 0
    page = tmp_path / "page" / "report.html"
    sources = re.findall(r'src="([^"]+)"', page.read_text())
    assert len(sources) == 2 * 3 and all((page.parent / unquote(src)).resolve().is_file() for src in sources)
    assert (page.parent / unquote(sources[0])).resolve() == (inputs / "a.wav").resolve()


def test_comparison_report_in_a_browser(recipe_run, tmp_path):
    from twostep_asteroid import compare
    from twostep_asteroid.data.datasets import make_dataset

    data = make_dataset(recipe_run.corpus / "json" / "tt", n_src=2, sample_rate=8000, segment=None)
    exp = recipe_run.exp
    systems = [compare.stft_system(w) for w in (16, 64)] + [compare.learned_system(str(exp / "step1" / BEST_MODEL_NAME))]
    out = tmp_path / "cmp"
    compare.compare_frontends(data, systems, out, masks=("irm", "softmax"), max_items=3)
    compare.runs_table([exp / "step2"], out)
    info = open_report(out / "report.html", screenshot=artefact_dir(tmp_path) / "comparison_report.png")
    assert problems(info) == []
    assert {local_path(i["src"]).name for i in info["images"]} == {"frontends.png", "runs.png"}
    summary = {(r["system"], r["mask"]): float(r["si_sdr_imp"]) for r in csv.DictReader(open(out / "frontends.csv"))}
    table = next(t for t in info["tables"] if t[0][0] == "Front end")
    for row in table[1:]:
        assert row[-2:] == [f"{summary[row[0], 'irm']:.2f}", f"{summary[row[0], 'softmax']:.2f}"]
    results = json.loads((exp / "eval" / "results.json").read_text())
    runs = next(t for t in info["tables"] if t[0][0] == "System" and "Seed" in t[0])
    assert runs[1][6] == f"{results['si_sdr_imp']:.2f}"
    assert [local_path(link) for link in info["links"]] == [exp / "eval" / "report.html"]


def test_comparison_report_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="frontends.md or runs.md"):
        comparison_report(tmp_path)


@pytest.mark.parametrize("step2, says", [({"train_front_end": True}, "end to end"),
                                         ({"train_decoder": True}, "decoder trained beside the masker"),
                                         ({}, None)])
def test_the_run_section_says_how_the_front_end_was_trained(tmp_path, step2, says):
    from twostep_asteroid.report import _run_section

    html = _run_section(tmp_path, {"step2": step2}, {}, tmp_path, None)
    training = re.search(r"<td>Training</td><td>([^<]*)</td>", html)
    if says is None:
        assert training is None
    else:
        assert says in training.group(1)
