"""Synthetic two-source mixtures (harmonic tones at different pitches) for small learning tests."""
import math

import torch

# A tiny TwoStepTDCN configuration shared by the tests.
SMALL = dict(n_filters=32, kernel_size=16, bn_chan=16, hid_chan=24, n_blocks=3, n_repeats=2)


def harmonic_tone(n_samples, sample_rate, f0, n_harmonics=4, generator=None):
    t = torch.arange(n_samples) / sample_rate
    out = torch.zeros(n_samples)
    for h in range(1, n_harmonics + 1):
        if h * f0 >= sample_rate / 2:
            break
        phase = 2 * math.pi * torch.rand(1, generator=generator)
        out += torch.sin(2 * math.pi * h * f0 * t + phase) / h
    # Slow amplitude modulation so that the sources overlap unevenly in time.
    rate = 1 + 3 * torch.rand(1, generator=generator)
    return out * (0.6 + 0.4 * torch.sin(2 * math.pi * rate * t))


class HarmonicMixtures(torch.utils.data.Dataset):
    """Items ``(mixture [T], sources [n_src, T])``: source i has f0 in its own band."""

    BANDS = ((90.0, 160.0), (300.0, 500.0), (700.0, 1000.0))

    def __init__(self, n_items=64, n_src=2, n_samples=4000, sample_rate=8000, seed=0):
        self.n_items, self.n_src, self.n_samples, self.sample_rate, self.seed = n_items, n_src, n_samples, sample_rate, seed

    def __len__(self):
        return self.n_items

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(self.seed * 100003 + idx)
        sources = []
        for band in self.BANDS[: self.n_src]:
            f0 = band[0] + (band[1] - band[0]) * torch.rand(1, generator=gen).item()
            sources.append(harmonic_tone(self.n_samples, self.sample_rate, f0, generator=gen))
        sources = torch.stack(sources)
        gains = 10 ** ((torch.rand(self.n_src, 1, generator=gen) * 5 - 2.5) / 20)
        sources = sources * gains / sources.std(dim=-1, keepdim=True)
        return sources.sum(0), sources
