"""The whole recipe, stages 0-4, on the embedded corpus with conf/tiny.yml (minutes on 2 cores).

Needs the Debian prompt packages in the deb cache (``make debs`` fetches them; CI does it first):
tests never download data themselves.
"""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.browser import artefact_dir, open_report, problems
from twostep_asteroid.serialization import BEST_MODEL_NAME

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"
DEB_CACHE = Path(os.environ.get("TWOSTEP_DEB_CACHE", Path.home() / ".cache" / "twostep-asteroid" / "debs"))


def _run(tmp_path, *extra):
    cmd = ["./run.sh", "--conf", "conf/tiny.yml", "--tag", "e2e", "--data_root", str(tmp_path / "data"),
           "--exp_root", str(tmp_path / "exp"), "--deb_cache", str(DEB_CACHE), *extra]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    out = subprocess.run(cmd, cwd=RECIPE, capture_output=True, text=True, timeout=1500, env=env)
    assert out.returncode == 0, f"run.sh failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stderr + out.stdout  # stdout last: what run.sh ends by printing


@pytest.mark.slow
def test_recipe_stages_0_to_4_then_rerun_skips(tmp_path):
    from twostep_asteroid.data.prompts import PACKAGES

    missing = [p for p in PACKAGES if not list(DEB_CACHE.glob(f"{p}_*.deb"))]
    assert not missing, f"run `make debs` first: {', '.join(missing)} not in {DEB_CACHE}"
    log = _run(tmp_path)
    exp = tmp_path / "exp" / "e2e"
    corpus = tmp_path / "data" / "prompts"
    assert (corpus / "LICENSES.md").is_file() and (corpus / "mixtures.csv").is_file()
    for split in ("tr", "cv", "tt", "tt_unseen", "tt_codec2"):
        assert json.loads((corpus / "json" / split / "mix.json").read_text())
    assert json.loads((exp / "step1" / "summary.json").read_text())["global_step"] == 40
    results = json.loads((exp / "eval" / "results.json").read_text())
    for key in ("si_sdr_imp", "sdr_imp", "stoi", "pesq", "oracle_latent_si_sdr_imp", "oracle_stft_irm_si_sdr_imp"):
        assert key in results
    with open(exp / "eval" / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == results["n_utterances"] == 10
    for name in ("unseen", "codec2"):  # the unseen-speaker tests, beside the seen one
        assert results[name]["n_utterances"] > 0 and "oracle_latent_si_sdr_imp" in results[name]
    assert (exp / "eval" / "report.png").stat().st_size > 10_000
    assert list((exp / "eval" / "examples").glob("*_s2.wav"))
    assert "| TwoStepTDCN | seen (10) |" in log and "| TwoStepTDCN | unseen (" in log
    page = exp / "eval" / "report.html"
    assert log.rstrip().endswith(f"Evaluation report (open it in a browser): {page.resolve()}")
    info = open_report(page, screenshot=artefact_dir(tmp_path) / "recipe_report.png")
    assert problems(info) == []
    assert len(info["audios"]) == 3 * 5  # best, median, worst: mixture, 2 estimates, 2 references
    # The page's table holds results.json's numbers, for the seen test and each unseen one.
    rows = info["tables"][0][1:]
    for name, block in (("seen", results), ("unseen", results["unseen"]), ("codec2", results["codec2"])):
        shown = [row[2] for row in rows if row[1].startswith(f"{name} (")]
        assert shown == [f"{block[k]:.2f}" for k in ("si_sdr_imp", "oracle_latent_si_sdr_imp",
                                                      "oracle_stft_irm_si_sdr_imp")], (name, rows)
    assert all(s in info["text"] for s in ("Best SI-SDRi", "Median SI-SDRi", "Worst SI-SDRi", "Training curves"))
    hub = exp / "hub"
    assert (hub / "model.safetensors").is_file() and (hub / "config.json").is_file()
    # The training voices include GPL-2.0-only (Fish Fillets) and CC-BY-SA-3.0 recordings: no single
    # licence id covers both, so the card says `other` and points at the per-speaker licences.
    card = (hub / "README.md").read_text()
    front_matter = card.split("---")[1]
    assert "license: other" in front_matter.splitlines()
    assert "GPL-2.0-only" in card and "CC-BY-SA-3.0" in card
    assert json.loads((hub / "config.json").read_text())

    stamps = {p: p.stat().st_mtime_ns for p in [exp / "step1" / BEST_MODEL_NAME, exp / "step2" / BEST_MODEL_NAME,
                                                 exp / "eval" / "results.json"]}
    log = _run(tmp_path, "--stop_stage", "3")
    assert "already done" in log
    assert log.rstrip().endswith(f"Evaluation report (open it in a browser): {page.resolve()}")
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "a finished stage was redone"


@pytest.mark.slow
def test_three_speaker_recipe(tmp_path):
    """``data.n_src=3`` through every stage: the corpus goes to its own folder, tt_unseen (2 held-out
    voices) is left out and recorded, and evaluation, examples and the Hub config have 3 sources."""
    log = _run(tmp_path, "--overrides", "data.n_src=3 eval.metrics=[si_sdr] eval.n_examples=1")
    corpus = tmp_path / "data" / "prompts_3spk"
    info = json.loads((corpus / "corpus.json").read_text())
    assert info["n_src"] == 3 and set(info["skipped_splits"]) == {"tt_unseen"}
    assert not (tmp_path / "data" / "prompts").exists()  # the 2-speaker corpus folder is not touched
    exp = tmp_path / "exp" / "e2e"
    results = json.loads((exp / "eval" / "results.json").read_text())
    assert "codec2" in results and "unseen" not in results and "si_sdr_imp" in results
    assert list((exp / "eval" / "examples").glob("*_s3.wav")) and list((exp / "eval" / "examples").glob("*_ref3.wav"))
    assert json.loads((exp / "hub" / "config.json").read_text())["model_args"]["n_src"] == 3
    assert "| TwoStepTDCN | seen (10) |" in log
