"""Smoke test of the benchmark code path (bench/run_bench.py) at tiny sizes."""
import json
import math

import pytest
import torch

from bench import run_bench
from bench.port_baseline import PortSeparator, PortTwoStepTDCN
from tests.test_train import corpus  # noqa: F401  (module fixture)
from twostep_asteroid.layers import ToeplitzMaskHead


def test_port_baseline_matches_the_described_architecture():
    model = PortTwoStepTDCN()  # paper size: built, not run
    # The count the anchor benchmark reports for the recipe's separator (front end frozen).
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 8_611_652
    assert model.separator.dilations == [1, 2, 4, 8] * 8  # the port's loop order
    small = PortTwoStepTDCN(n_filters=16, bn_chan=8, hid_chan=12, n_blocks=2, n_repeats=2)
    wav = torch.randn(2, 800)
    assert small(wav).shape == (2, 2, 800)
    masks = small.separator(torch.rand(2, 16, 30))
    assert masks.shape == (2, 2, 16, 30)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 16, 30))


def test_conv2d_head_of_the_ablation_equals_toeplitz_head():
    head = ToeplitzMaskHead(16, 2)
    ref = run_bench.Conv2dMaskHead(head)
    x = torch.randn(2, 16, 9)
    torch.testing.assert_close(ref(x), head(x), rtol=1e-5, atol=1e-5)
    # ...and the port's own head (padding N - N // 2 with kernel N + 1) has the same output size.
    port = PortSeparator(n_filters=16, bn_chan=8, hid_chan=8, n_blocks=1, n_repeats=1)
    assert port.mask_layer(x.unsqueeze(1)).shape == (2, 2, 16, 9)


def test_variants_keep_the_output_of_ours():
    torch.manual_seed(0)
    ours = run_bench.build_model("ours", "tiny").eval()
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        ref = ours(wav)
    for name in run_bench.ABLATIONS:
        variant = run_bench.build_model(name, "tiny").eval()
        variant.load_state_dict(ours.state_dict(), strict=False)
        if name == "ours_conv2d_head":
            head = ours.masker.head[1]
            variant.masker.head[1] = run_bench.Conv2dMaskHead(head)
        with torch.no_grad():
            torch.testing.assert_close(variant(wav), ref, rtol=1e-4, atol=1e-5, msg=name)
    # The ablation really undoes its speed-up: no module of ours is left.
    from twostep_asteroid.layers import FastPReLU as PReLU, FusedGlobLN as GlobalLayerNorm

    for name, kind in (("ours_torch_prelu", PReLU), ("ours_asteroid_gln", GlobalLayerNorm)):
        modules = list(run_bench.build_model(name, "tiny").modules())
        assert not [m for m in modules if type(m) is kind], name


def test_tiny_run_writes_records_and_tables(tmp_path, capsys):
    out = tmp_path / "tiny.jsonl"
    assert run_bench.main(["--device", "cpu", "--tiny", "--threads", "1", "--mem", "none",
                           "--ablations", "--out", str(out)]) == 0
    records = run_bench.load_records(out)
    assert "meta" in records[0]
    cases = [r for r in records if "model" in r]
    assert not [r for r in cases if "error" in r]
    got = {(r["task"], r["model"]) for r in cases}
    for model in run_bench.MODELS:
        assert ("step2", model) in got and ("infer", model) in got
    assert ("step1", "ours") in got and ("step1", "port") in got and ("step1", "convtasnet") not in got
    assert {("step2", name) for name in run_bench.ABLATIONS} <= got
    assert all(r["step_s"] > 0 for r in cases)
    assert all(r["rtf"] > 0 for r in cases if r["task"] == "infer")
    micro = {r["task"] for r in records if "task" in r and "model" not in r}
    assert micro == {"micro_depthwise", "micro_head", "micro_norm"}
    printed = capsys.readouterr().out
    for title in ("Training step", "Inference", "Variants of ours", "Latent targets", "Depthwise conv",
                  "Mask head"):
        assert title in printed
    assert run_bench.main(["--table", str(out)]) == 0
    assert "ours/port" in capsys.readouterr().out


def test_cpu_memory_child(tmp_path):
    spec = {"task": "step2", "model": "ours", "config": "tiny", "prec": "fp32", "batch": 2,
            "seconds": 0.1, "sr": 8000, "steps": 1, "threads": 1}
    res = run_bench.child_memory(spec)  # in-process
    assert res["peak_rss_mib"] >= res["rss_before_mib"] > 0
    res = run_bench.cpu_peak_delta_mib(dict(spec, task="infer", model="port", batch=1), timeout=300)
    assert "mem_error" not in res, res
    assert res["peak_delta_mib"] >= 0
    json.dumps(res)


def test_ab_step_time_runs_both_models(capsys):
    from bench import ab_step_time

    ab_step_time.main(["--variant", "torch_prelu", "--size", "tiny", "--repeats", "1", "--warmup", "0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["tiny 4x1s ours", "tiny 4x1s torch_prelu"]


def test_streaming_bench_figures_at_tiny_size(tmp_path):
    from bench import streaming_bench
    from twostep_asteroid import TwoStepTDCN

    from tests.synthetic import SMALL

    torch.manual_seed(0)
    model = TwoStepTDCN(n_src=2, **SMALL, norm_type="cLN", causal=True).eval()
    lat = streaming_bench.latency(model, [80, 160])
    assert lat["algorithmic_samples"] == 16 and lat["algorithmic_ms"] == 2.0
    assert lat["with_block"]["20 ms"] == {"samples": 16 - 1 + 160, "ms": 1e3 * 175 / 8000}
    result = streaming_bench.time_blocks(model, 10.0, 0.2)
    assert result["block_samples"] == 80 and result["blocks"] == 20
    assert result["rtf"] > 0 and result["cpu_rtf"] > 0 and result["max_ms"] >= result["median_ms"]


def test_malloc_retain_is_applied_and_recorded(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run_bench, "retain_freed_memory", lambda: calls.append(1) or True)
    out = tmp_path / "retain.jsonl"
    assert run_bench.main(["--device", "cpu", "--tiny", "--threads", "1", "--mem", "none", "--tasks", "infer",
                           "--models", "ours", "--malloc", "retain", "--out", str(out)]) == 0
    records = run_bench.load_records(out)
    assert calls == [1] and records[0]["meta"]["malloc"] == "retain"
    assert [r["model"] for r in records if "model" in r] == ["ours"]
    monkeypatch.setattr(run_bench, "retain_freed_memory", lambda: False)
    with pytest.raises(SystemExit, match="mallopt"):
        run_bench.main(["--device", "cpu", "--tiny", "--mem", "none", "--tasks", "infer", "--malloc", "retain",
                        "--out", str(out)])


def test_step1_probe_holds_the_bias_and_step2_probe_trains_the_encoder_slowly(corpus, tmp_path, capsys):
    """The lever-6 probes (bench/README.md, "A front end that is easier to predict"): the bias stays at
    zero through training, the oracle report reads the saved file, and step 2 runs on it with the
    encoder in its own, slower parameter group."""
    from bench import step1_probe, step2_probe
    from twostep_asteroid import TwoStepFrontEnd

    out = tmp_path / "zero.pth"
    step1_probe.main(["--data_dir", str(corpus), "--bias", "zero", "--steps", "3", "--n_val", "2",
                      "--out", str(out)])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    front_end = TwoStepFrontEnd.from_pretrained(str(out))
    assert torch.count_nonzero(front_end.encoder.filterbank.bias) == 0
    assert report["bias"] == "zero" and report["active_share"] > 0 and math.isfinite(report["oracle_sisdri"])
    step1_probe.main(["--data_dir", str(corpus), "--oracle_of", str(out), "--n_val", "2"])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["bias"] is None and again["oracle_sisdri"] == pytest.approx(report["oracle_sisdri"])

    step2_probe.main(["--front_end", str(out), "--data_dir", str(corpus), "--steps", "2", "--every", "2",
                      "--n_val", "1", "--bn_chan", "8", "--hid_chan", "8", "--n_blocks", "1", "--n_repeats", "1",
                      "--loss", "latent+wave", "--encoder_lr", "0.1", "--out_dir", str(tmp_path), "--name", "p"])
    curve = json.loads((tmp_path / "p.json").read_text())["curve"]
    assert [point["step"] for point in curve] == [2]
    args = step2_probe.parse_args(["--front_end", str(out), "--encoder_lr", "0.1", "--lr", "1e-3"])
    model = step2_probe.build(args)
    masker_group, encoder_group = step2_probe.make_optimizer(model, args).param_groups
    assert {id(p) for p in encoder_group["params"]} == {id(p) for p in model.encoder.parameters()}
    assert encoder_group["lr"] == pytest.approx(1e-4) and masker_group["lr"] == pytest.approx(1e-3)
    assert not any(id(p) in {id(q) for q in model.decoder.parameters()} for p in masker_group["params"])
