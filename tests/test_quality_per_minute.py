"""bench/quality_per_minute.py: how curves are read and timed, and a smoke run at a tiny size."""
import csv
import json

import pytest
import torch

from bench import quality_per_minute as qpm
from twostep_asteroid.config import load_config
from tests.test_train import corpus  # noqa: F401  (module fixture)

CONF = qpm.REPO / "egs" / "wsj0-2mix" / "twostep" / "conf" / "default.yml"
FIELDS = ["epoch", "step", "time_unix", "train_audio_s", "val_sisdri", "wall_s", "loss"]


def _write_run(exp_dir, versions, global_step):
    """metrics.csv files as Lightning + WallClock write them: the validation row at step - 1, the
    clock row right after it at the true step."""
    for v, points in enumerate(versions):
        folder = exp_dir / "logs" / f"version_{v}"
        folder.mkdir(parents=True)
        with open(folder / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            for step, sisdri, t in points:
                writer.writerow({"epoch": 0, "step": step - 1, "loss": 3.0})
                writer.writerow({"epoch": 0, "step": step - 1, "val_sisdri": sisdri})
                writer.writerow({"step": step, "time_unix": t, "train_audio_s": step * 2.0, "wall_s": 1.0})
    (exp_dir / "summary.json").write_text(json.dumps({"global_step": global_step}))


def test_points_pair_each_validation_with_the_clock_row_after_it(tmp_path):
    _write_run(tmp_path, [[(2, 1.5, 100.0), (4, 2.5, 110.0)], [(6, 3.0, 200.0)]], 6)
    points = qpm.read_points(tmp_path)
    assert [(p["step"], p["val_sisdri"], p["time_unix"]) for p in points] == [
        (2, 1.5, 100.0), (4, 2.5, 110.0), (6, 3.0, 200.0)]


def test_curve_counts_the_earlier_stages_wall_time_and_audio(tmp_path):
    step1, step2 = tmp_path / "step1", tmp_path / "step2"
    _write_run(step1, [[(10, 0.0, 1030.0)]], 10)  # step 1: 10 steps of 2 s of audio
    _write_run(step2, [[(2, 1.0, 2030.0), (4, 2.0, 2090.0)]], 4)
    stages = [{"name": "step1", "exp_dir": step1}, {"name": "step2", "exp_dir": step2}]
    timings = [{"start": 1000.0, "end": 1060.0}, {"start": 2000.0, "end": 2120.0}]
    points, wall_min, audio_s = qpm.system_curve(stages, timings)
    # a stage with val_sisdri rows (the real step 1 logs val_oracle_sisdri instead, so has no points)
    assert [p["stage"] for p in points] == ["step1", "step2", "step2"]
    assert [round(p["wall_min"], 6) for p in points] == [0.5, 1.5, 2.5]  # 60 s of step 1 + 30 s, 90 s
    assert [p["audio_s"] for p in points] == [20.0, 24.0, 28.0]
    assert wall_min == pytest.approx(3.0) and audio_s == pytest.approx(28.0)


def test_budget_split():
    stage1, stage2, stage2_of_3, stage3 = ({"name": "step1"}, {"name": "step2"},
                                           {"name": "step2", "step3": True}, {"name": "step3"})
    assert qpm.stage_minutes(stage1, 30, 0.2, 0.25, 0.0) == pytest.approx(6.0)
    assert qpm.stage_minutes(stage2, 30, 0.2, 0.25, 6.5) == pytest.approx(23.5)
    assert qpm.stage_minutes(stage2_of_3, 30, 0.2, 0.25, 6.5) == pytest.approx(16.0)
    assert qpm.stage_minutes(stage3, 30, 0.2, 0.25, 22.5) == pytest.approx(7.5)
    assert qpm.stage_minutes(stage3, 30, 0.2, 0.25, 31.0) > 0  # over budget: a token run, reported as is


def test_asteroid_baselines_take_the_recipes_size():
    import asteroid.models

    conf = load_config(CONF)
    fe, masker = conf["front_end"], conf["masker"]
    name, args = qpm.asteroid_model_args(conf, "convtasnet")
    model = asteroid.models.get(name)(n_src=2, **args)
    fb = model.encoder.filterbank
    assert (fb.n_filters, fb.kernel_size, fb.stride) == (fe["n_filters"], fe["kernel_size"], fe["stride"])
    assert (model.masker.bn_chan, model.masker.hid_chan, model.masker.n_blocks, model.masker.n_repeats) == (
        masker["bn_chan"], masker["hid_chan"], masker["n_blocks"], masker["n_repeats"])
    name, args = qpm.asteroid_model_args(conf, "sudormrf")
    model = asteroid.models.get(name)(n_src=2, **args)
    assert model.masker.num_blocks == conf["masker_sudormrf"]["num_blocks"]
    assert model.encoder.filterbank.stride == fe["stride"]  # the recipe's hop is L // 2


@pytest.mark.slow
def test_smoke_run_writes_parsable_outputs_and_resumes(corpus, tmp_path):  # noqa: F811
    """All systems at a tiny size (a few steps each); a second run skips every finished stage."""
    out = tmp_path / "qpm"
    argv = ["--data_dir", str(corpus), "--out_dir", str(out), "--tiny", "--budget_minutes", "0.5",
            "--test_utterances", "2"]
    assert qpm.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["system"] for r in results["rows"]] == list(qpm.SYSTEMS)
    assert all(r["steps"] == 4 and isinstance(r["test_sisdri"], float) for r in results["rows"])
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["system"] for r in rows} == set(qpm.SYSTEMS)
    assert {r["stage"] for r in rows if r["system"] == "twostep_step3"} == {"step2", "step3"}
    assert all(float(r["wall_min"]) > 0 for r in rows)
    # two-step's points come after its step 1 (whose time is counted)
    step1 = json.loads((out / "seed0" / "step1" / "bench_timing.json").read_text())
    assert min(float(r["wall_min"]) for r in rows if r["system"] == "twostep") * 60 > step1["end"] - step1["start"]
    table = (out / "results.md").read_text()
    assert all(f"| {s} |" in table for s in qpm.SYSTEMS)
    assert (out / "curves.png").stat().st_size > 1000
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("seed0/**/bench_timing.json")}
    assert len(stamps) == 8  # step1 (shared), twostep/step2, twostep_frozen/step2, e2e, 2 baselines,
    #                          the step3 system's step2 + step3
    step1_state = torch.load(out / "seed0" / "step1" / "best_model.pth", weights_only=False)["state_dict"]
    for system, trained in (("twostep", True), ("twostep_frozen", False)):
        state = torch.load(out / "seed0" / system / "step2" / "best_model.pth", weights_only=False)["state_dict"]
        same = all(torch.equal(state[k], v) for k, v in step1_state.items() if k.startswith("decoder."))
        assert same is not trained, system
    qpm.main(argv)
    assert {p: p.stat().st_mtime_ns for p in out.glob("seed0/**/bench_timing.json")} == stamps
