"""evaluate_model's numbers on signals whose scores are known in closed form.

Two orthogonal, equal-power sources make a mixture at exactly 0 dB SI-SDR against each source. An
estimate that is a scaled source plus noise orthogonal to it at power ratio P has SI-SDR exactly
10 log10(P) dB. The model below returns such estimates in swapped order, so the permutation must be
found for the numbers to come out.
"""
import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from twostep_asteroid.evaluate import evaluate_model

SR = 8000
T = 8000


def _orthogonal(n, T, seed):
    """``n`` zero-mean, orthonormal-direction signals of equal power (rows)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, n, generator=g, dtype=torch.float64)
    x = x - x.mean(0, keepdim=True)
    q, _ = torch.linalg.qr(x)
    return (q.T * math.sqrt(T) * 0.1).float()  # rms 0.1


class Items:
    """A test set: (mixture [T], sources [2, T]) of orthogonal sources, plus per-item noise."""

    def __init__(self, n):
        self.items = []
        for k in range(n):
            s1, s2, n1, n2 = _orthogonal(4, T, seed=k)
            self.items.append((s1 + s2, torch.stack([s1, s2]), torch.stack([n1, n2])))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        mix, sources, _ = self.items[idx]
        return mix, sources


class KnownModel(torch.nn.Module):
    """Returns ``[gain*s2 + a*n2, gain*s1 + a*n1]``: the sources swapped, each with noise orthogonal
    to both sources at ``snr_db`` (noise and sources have equal power, so a = 10^(-snr/20))."""

    sample_rate = SR
    n_src = 2

    def __init__(self, items, snr_db, gain=0.5):
        super().__init__()
        self.items, self.snr_db, self.gain = items, snr_db, gain
        self.encoder = SimpleNamespace(filterbank=SimpleNamespace(filters=lambda: torch.randn(8, 1, 16)))

    def _entry(self, mix):
        for m, sources, noise in self.items.items:
            if torch.equal(m, mix[0]):
                return sources, noise
        raise KeyError("unknown mixture")

    def forward(self, mix):
        sources, noise = self._entry(mix)
        a = 10 ** (-self.snr_db / 20)
        est = self.gain * (sources + a * noise)
        return est.flip(0).unsqueeze(0)

    def front_end(self, mix, sources):
        return {"estimates": sources.clone()}


@pytest.fixture
def items():
    return Items(3)


def test_known_si_sdr_sdr_and_permutation(items, tmp_path):
    means = evaluate_model(KnownModel(items, snr_db=10.0), items, tmp_path, metrics_list=("si_sdr", "sdr"),
                           n_examples=1, num_workers=1)
    # Mixture: 0 dB against each source; estimates: 10 dB (scale-invariant, swapped order found).
    assert means["si_sdr"] == pytest.approx(10.0, abs=0.01)
    assert means["si_sdr_imp"] == pytest.approx(10.0, abs=0.01)
    # bss_eval's SDR allows a 512-tap distortion filter, which can explain a little of white noise.
    assert 9.5 < means["sdr"] < 10.7 and 9.5 < means["sdr_imp"] < 10.7
    assert means["n_utterances"] == 3
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert all(abs(float(r["si_sdr_imp"]) - 10.0) < 0.01 for r in rows)
    assert json.loads((tmp_path / "results.json").read_text())["si_sdr_imp"] == pytest.approx(means["si_sdr_imp"])
    # The examples are the PIT-aligned estimates: s1.wav is the estimate of source 1.
    import soundfile as sf

    est1, _ = sf.read(next((tmp_path / "examples").glob("*_s1.wav")))
    src1, src2 = items.items[0][1].numpy()
    # 10 dB of orthogonal noise: correlation 1/sqrt(1.1) = 0.95 with its source, 0 with the other.
    assert np.corrcoef(est1, src1)[0, 1] > 0.9 and abs(np.corrcoef(est1, src2)[0, 1]) < 0.1


@pytest.mark.parametrize("snr_db", [0.0, 20.0])
def test_si_sdri_follows_the_noise_level(items, tmp_path, snr_db):
    means = evaluate_model(KnownModel(items, snr_db=snr_db), items, tmp_path, metrics_list=("si_sdr",),
                           n_examples=0, num_workers=1)
    assert means["si_sdr_imp"] == pytest.approx(snr_db, abs=0.01)


def test_max_utterances_limits_the_test_set(items, tmp_path):
    means = evaluate_model(KnownModel(items, snr_db=10.0), items, tmp_path, metrics_list=("si_sdr",),
                           n_examples=0, max_items=2, num_workers=1)
    assert means["n_utterances"] == 2
    with open(tmp_path / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_a_failed_metric_is_nan_in_its_row_and_left_out_of_the_mean(items, tmp_path, monkeypatch):
    """A metric that fails on one utterance (e.g. PESQ on a too-short file) is NaN in that row, and
    the mean is taken over the others, not poisoned by the NaN."""
    import asteroid.metrics

    real = asteroid.metrics.get_metrics
    calls = {"n": 0}

    def flaky(mix, clean, estimate, **kwargs):
        scores = real(mix, clean, estimate, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            scores["si_sdr"] = None  # what ignore_metrics_errors leaves for a metric that raised
        return scores

    monkeypatch.setattr(asteroid.metrics, "get_metrics", flaky)
    model = KnownModel(items, snr_db=10.0)
    means = evaluate_model(model, items, tmp_path, metrics_list=("si_sdr",), n_examples=0, num_workers=1)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert math.isnan(float(rows[1]["si_sdr_imp"]))
    assert means["si_sdr_imp"] == pytest.approx(10.0, abs=0.01) and means["n_utterances"] == 3


def test_empty_test_set_is_an_error(tmp_path):
    empty = Items(0)
    with pytest.raises(ValueError, match="test set is empty"):
        evaluate_model(KnownModel(empty, snr_db=10.0), empty, tmp_path, metrics_list=("si_sdr",), num_workers=1)
