"""Tests of the static (padded) and dynamic-mixing datasets on tiny generated manifests."""
import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from twostep_asteroid.data.datasets import (
    DynamicMixingDataset,
    make_dataset,
    set_epoch,
    validate_manifests,
)

SR = 8000
SEG = 0.5  # seconds
LENGTHS = [0.3, 0.45, 0.5, 0.8, 1.2, 0.2]  # mixture lengths (s): 3 shorter than SEG
SPEAKERS = {"ann": 150.0, "bob": 100.0, "cyd": 220.0}


def _wav(path, x):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, SR, subtype="FLOAT")  # float wavs: exact sums in the tests


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifests")
    rng = np.random.default_rng(0)
    jd = root / "json" / "tr"
    lists = {"mix": [], "s1": [], "s2": []}
    for i, dur in enumerate(LENGTHS):
        n = int(dur * SR)
        s1 = (0.1 * rng.standard_normal(n)).astype(np.float32)
        s2 = (0.1 * rng.standard_normal(n)).astype(np.float32)
        for name, x in (("s1", s1), ("s2", s2), ("mix", s1 + s2)):
            p = root / "wav8k/min/tr" / name / f"m{i}.wav"
            _wav(p, x)
            lists[name].append([str(p), n])
    utts = []
    for spk, f0 in SPEAKERS.items():
        for k in range(4):
            n = int((0.3 + 0.2 * k) * SR)
            t = np.arange(n) / SR
            x = (0.05 * (k + 1) * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
            p = root / "utterances/tr" / spk / f"{spk}{k}.wav"
            _wav(p, x)
            utts.append({"path": str(p), "speaker": spk, "n_samples": n})
    jd.mkdir(parents=True)
    for name, lst in lists.items():
        (jd / f"{name}.json").write_text(json.dumps(lst))
    (jd / "utterances.json").write_text(json.dumps(utts))
    return jd


# ---------------------------------------------------------------------------- static mixtures
def test_static_pads_instead_of_dropping(corpus, caplog):
    from asteroid.data import Wsj0mixDataset

    with caplog.at_level(logging.INFO, logger="twostep_asteroid.data.datasets"):
        ds = make_dataset(corpus, n_src=2, sample_rate=SR, segment=SEG)
    n_short = sum(d < SEG for d in LENGTHS)
    assert len(ds) == len(LENGTHS) and ds.n_padded == n_short == 3
    assert "3 of 6 mixtures are shorter" in caplog.text
    assert isinstance(ds, Wsj0mixDataset)
    assert len(Wsj0mixDataset(str(corpus), 2, SR, SEG)) == len(LENGTHS) - n_short  # Asteroid drops
    T = int(SEG * SR)
    for i, dur in enumerate(LENGTHS):
        mix, src = ds[i]
        assert mix.shape == (T,) and src.shape == (2, T)
        assert mix.dtype == torch.float32 and src.dtype == torch.float32
        assert torch.allclose(mix, src.sum(0), atol=1e-6)
        n = int(dur * SR)
        if n < T:
            assert torch.all(mix[n:] == 0) and torch.all(src[:, n:] == 0)
            assert mix[:n].abs().sum() > 0


def test_static_full_length_for_eval(corpus):
    ds = make_dataset(corpus, segment=None)
    for i, dur in enumerate(LENGTHS):
        mix, src = ds[i]
        assert mix.shape == (int(dur * SR),) and src.shape == (2, int(dur * SR))


def test_static_crops_deterministic_per_epoch(corpus):
    a = make_dataset(corpus, segment=SEG, seed=1)
    b = make_dataset(corpus, segment=SEG, seed=1)
    long_idx = LENGTHS.index(1.2)
    assert torch.equal(a[long_idx][0], b[long_idx][0])
    crops = set()
    for epoch in range(6):
        set_epoch(a, epoch)
        crops.add(a[long_idx][0][:50].numpy().tobytes())
    assert len(crops) > 1  # new random crops in new epochs


def test_validation_errors(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "mix.json")):
        make_dataset(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("mix", "s1", "s2"):
        lst = json.loads((corpus / f"{name}.json").read_text())
        if name == "s2":
            lst = lst[:-1]
        (bad / f"{name}.json").write_text(json.dumps(lst))
    with pytest.raises(ValueError, match="s2.json has 5 entries"):
        make_dataset(bad)
    with pytest.raises(FileNotFoundError, match="s3.json"):
        validate_manifests(corpus, n_src=3)


# ---------------------------------------------------------------------------- dynamic mixing
def test_dynamic_mixing_items(corpus):
    ds = make_dataset(corpus, n_src=2, sample_rate=SR, segment=SEG, dynamic_mixing=True, seed=0)
    assert isinstance(ds, DynamicMixingDataset)
    assert len(ds) == len(LENGTHS)  # default n_items: number of static mixtures
    T = int(SEG * SR)
    for i in range(len(ds)):
        mix, src = ds[i]
        assert mix.shape == (T,) and src.shape == (2, T) and mix.dtype == torch.float32
        assert torch.equal(mix, src.sum(0))  # exactly the sum of the returned sources
        spk = [s["speaker"] for s in ds.item_info(i)["sources"]]
        assert spk[0] != spk[1]
        assert mix.abs().max() <= 0.9 + 1e-6
    big = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=200, seed=0)
    pairs = {tuple(sorted(s["speaker"] for s in big.item_info(i)["sources"])) for i in range(200)}
    assert pairs == {("ann", "bob"), ("ann", "cyd"), ("bob", "cyd")}


def test_dynamic_mixing_levels_and_fill(corpus):
    ds = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=40, fill="concat")
    T = int(SEG * SR)
    for i in range(40):
        mix, src = ds[i]
        assert src.shape == (2, T)
        assert torch.all(src[:, -40:].abs().sum(1) > 0)  # segment filled, no zero tail
        rel = 10 * torch.log10(src[0].pow(2).mean() / src[1].pow(2).mean())
        assert -0.3 <= rel.item() <= 5.3  # s1 at +r/2, s2 at -r/2, r in [0, 5] dB
    with pytest.raises(ValueError, match="fill"):
        make_dataset(corpus, dynamic_mixing=True, fill="nope")


def test_dynamic_mixing_deterministic_and_worker_independent(corpus):
    a = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=8, seed=5)
    b = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=8, seed=5)
    c = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=8, seed=6)
    assert all(torch.equal(a[i][1], b[i][1]) for i in range(8))
    assert not all(torch.equal(a[i][1], c[i][1]) for i in range(8))
    assert not torch.equal(a[0][1], a[1][1])
    loader = torch.utils.data.DataLoader(a, batch_size=4, num_workers=2)
    batches = torch.cat([mix for mix, _ in loader])
    assert torch.equal(batches, torch.stack([a[i][0] for i in range(8)]))
    first = a[3][0].clone()
    a.set_epoch(1)
    assert not torch.equal(first, a[3][0])  # new epoch, new mixtures


def test_dynamic_mixing_needs_enough_speakers(corpus, tmp_path):
    utts = json.loads((corpus / "utterances.json").read_text())
    solo = [u for u in utts if u["speaker"] == "ann"]
    (tmp_path / "utterances.json").write_text(json.dumps(solo))
    with pytest.raises(ValueError, match="1 speaker"):
        DynamicMixingDataset(tmp_path, n_src=2, segment=SEG)
    with pytest.raises(FileNotFoundError, match="utterances.json"):
        DynamicMixingDataset(tmp_path / "nothing")


# ---------------------------------------------------------------------------- pseudo-speakers
def test_change_speed_moves_pitch_and_length():
    from twostep_asteroid.data.mixing import change_speed

    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 200.0 * t).astype(np.float32)
    for speed in (0.9, 1.1):
        y = change_speed(x, speed)
        assert abs(len(y) - SR / speed) <= 2
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        peak_hz = np.argmax(spec) * SR / len(y)
        assert abs(peak_hz - 200.0 * speed) < 3  # pitch (and formants) scale with the speed
    assert np.array_equal(change_speed(x, 1.0), x)


def test_speed_perturb_off_keeps_the_items(corpus):
    """Speeds have their own random stream: at speed 1 the items are those of no augmentation."""
    off = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=12, seed=2)
    unit = make_dataset(corpus, segment=SEG, dynamic_mixing=True, n_items=12, seed=2,
                        speed_perturb=1.0, speed_range=(1.0, 1.0))
    for ds in (off, unit):
        ds.set_epoch(3)
    for i in range(12):
        assert torch.equal(off[i][1], unit[i][1])


def test_speed_perturb_changes_sources_deterministically(corpus):
    kw = dict(segment=SEG, dynamic_mixing=True, n_items=12, seed=2)
    off = make_dataset(corpus, **kw)
    aug = make_dataset(corpus, speed_perturb=1.0, speed_range=(0.9, 1.1), **kw)
    again = make_dataset(corpus, speed_perturb=1.0, speed_range=(0.9, 1.1), **kw)
    T = int(SEG * SR)
    changed = 0
    for i in range(12):
        mix, src = aug[i]
        assert src.shape == (2, T) and torch.equal(mix, src.sum(0))
        assert torch.equal(src, again[i][1])  # same (seed, epoch, idx): same item
        info, base = aug.item_info(i)["sources"], off.item_info(i)["sources"]
        assert [s["path"] for s in info] == [s["path"] for s in base]  # same utterances...
        assert all(0.9 <= s["speed"] <= 1.1 for s in info)             # ... at other speeds
        changed += not torch.equal(src, off[i][1])
    assert changed >= 10
    loader = torch.utils.data.DataLoader(aug, batch_size=4, num_workers=2)
    assert torch.equal(torch.cat([m for m, _ in loader]), torch.stack([aug[i][0] for i in range(12)]))
    speeds = [s["speed"] for s in aug.item_info(0)["sources"]]
    aug.set_epoch(1)
    assert [s["speed"] for s in aug.item_info(0)["sources"]] != speeds  # new epoch, new pseudo-speakers
    half = make_dataset(corpus, speed_perturb=0.5, **{**kw, "n_items": 200})
    n_perturbed = sum(s["speed"] != 1.0 for i in range(200) for s in half.item_info(i)["sources"])
    assert 150 < n_perturbed < 250  # probability 0.5 per source, 400 sources
    with pytest.raises(ValueError, match="probability"):
        make_dataset(corpus, dynamic_mixing=True, speed_perturb=1.5)
    with pytest.raises(ValueError, match="speed_range"):
        make_dataset(corpus, dynamic_mixing=True, speed_perturb=0.5, speed_range=(1.1, 0.9))


def test_speed_perturb_needs_dynamic_mixing(corpus):
    from twostep_asteroid.config import ConfigError, load_config
    from twostep_asteroid.train import _loaders

    conf = load_config(overrides=["data.dynamic_mixing=false", "data.speed_perturb=0.5"])
    with pytest.raises(ConfigError, match="dynamic_mixing"):
        _loaders(conf, corpus.parent, dict(conf["step2"], batch_size=2, val_every_n_steps=10), SR)


@pytest.mark.parametrize("dynamic", [True, False])
def test_persistent_workers_follow_set_epoch(corpus, dynamic):
    """The recipe keeps its DataLoader workers for the whole run (no fork at each epoch): the epoch
    set in the main process must reach them, or every epoch would repeat the first one's items."""
    ds = make_dataset(corpus, segment=SEG, dynamic_mixing=dynamic, n_items=6 if dynamic else None, seed=2)
    n = len(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=n, num_workers=1, persistent_workers=True)
    seen = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        seen.append(next(iter(loader))[0])
    expected = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        expected.append(torch.stack([ds[i][0] for i in range(n)]))
    assert torch.equal(seen[0], expected[0]) and torch.equal(seen[1], expected[1])
    assert not torch.equal(seen[0], seen[1])
