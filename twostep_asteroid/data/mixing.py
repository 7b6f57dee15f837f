"""Signal-level helpers shared by the corpus builders and the dynamic-mixing dataset:
silence trimming, pause shortening, level normalisation, wsj0-mix style mixing, speed
perturbation and coloured noise."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .audio_io import resample, to_int16

EPS = 1e-12
CLIP_PEAK = 0.9  # wsj0-mix scripts: scale so that the largest |sample| of mix and sources is 0.9


def rms(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def frame_energy_db(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Per-frame energy in dB (frames start at ``k * hop``; the last one may be short)."""
    x = np.asarray(x, dtype=np.float64)
    n = max(1, 1 + max(0, len(x) - frame + hop - 1) // hop)
    pad = (n - 1) * hop + frame - len(x)
    xp = np.pad(x, (0, max(0, pad)))
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    e = np.mean(xp[idx] ** 2, axis=1)
    return 10.0 * np.log10(e + EPS)


def active_mask(
    x: np.ndarray, sample_rate: int, top_db: float = 40.0, floor_db: float = -60.0,
    frame_s: float = 0.025, hop_s: float = 0.010,
):
    """Frame activity: energy within ``top_db`` of the loudest frame and above ``floor_db`` dBFS."""
    frame = max(1, int(round(frame_s * sample_rate)))
    hop = max(1, int(round(hop_s * sample_rate)))
    e = frame_energy_db(x, frame, hop)
    thr = max(float(e.max()) - top_db, floor_db)
    return e > thr, frame, hop


def trim_silence(
    x: np.ndarray, sample_rate: int, top_db: float = 40.0, floor_db: float = -60.0,
    margin_s: float = 0.02,
) -> np.ndarray:
    """Remove leading/trailing silence (frames quieter than ``top_db`` below the loudest frame or
    below ``floor_db`` dBFS). Keeps ``margin_s`` on each side. Returns an empty array for audio
    with no active frame."""
    if len(x) == 0:
        return x
    act, frame, hop = active_mask(x, sample_rate, top_db, floor_db)
    if not act.any():
        return x[:0]
    first, last = int(np.argmax(act)), len(act) - 1 - int(np.argmax(act[::-1]))
    margin = int(round(margin_s * sample_rate))
    start = max(0, first * hop - margin)
    stop = min(len(x), last * hop + frame + margin)
    return x[start:stop]


def shorten_pauses(
    x: np.ndarray, sample_rate: int, max_pause_s: float = 0.4, top_db: float = 40.0,
    floor_db: float = -60.0,
) -> np.ndarray:
    """Shorten internal pauses longer than ``max_pause_s`` to ``max_pause_s`` (the middle of the
    pause is cut out, so both word edges keep their natural decay)."""
    if max_pause_s is None or len(x) == 0:
        return x
    act, frame, hop = active_mask(x, sample_rate, top_db, floor_db)
    keep = np.ones(len(x), dtype=bool)
    max_pause = int(round(max_pause_s * sample_rate))
    i, n = 0, len(act)
    while i < n:
        if act[i]:
            i += 1
            continue
        j = i
        while j < n and not act[j]:
            j += 1
        if i > 0 and j < n:  # internal pause: samples from end of frame i-1 to start of frame j
            s0, s1 = (i - 1) * hop + frame, j * hop
            if s1 - s0 > max_pause:
                half = max_pause // 2
                keep[s0 + half: s1 - (max_pause - half)] = False
        i = j
    return x[keep]


def quietest_cut(x: np.ndarray, sample_rate: int, lo: int, hi: int, hop_s: float = 0.01) -> int:
    """Sample index in ``[lo, hi]`` at the quietest 20 ms window (a pause if there is one)."""
    lo, hi = int(lo), int(hi)
    if hi <= lo:
        return lo
    hop = max(1, int(hop_s * sample_rate))
    win = max(1, int(0.02 * sample_rate))
    best, best_e = lo, np.inf
    x64 = np.asarray(x, dtype=np.float64)
    for c in range(lo, hi + 1, hop):
        seg = x64[max(0, c - win // 2): c + win // 2]
        e = float(np.mean(seg * seg)) if seg.size else 0.0
        if e < best_e - 1e-15:
            best, best_e = c, e
    return best


def mix_sources(
    sources: Sequence[np.ndarray], gains_db: Sequence[float], mode: str = "min",
    peak: float = CLIP_PEAK, always_scale: bool = True,
):
    """wsj0-mix style mixing.

    Each full source is normalised to unit level, weighted by ``10**(gain_db/20)``, then all are
    truncated to the shortest (``min``) or zero-padded to the longest (``max``); finally mixture
    and sources are scaled together by ``peak / max(|mix|, |s_i|)`` (as the MATLAB scripts do:
    ``always_scale=True``; with ``False`` only when that maximum exceeds ``peak``).

    Level: the MATLAB scripts use ITU-T P.56 active speech level (``activlev``). Here the plain
    RMS over the whole utterance is used as an approximation: inputs are trimmed speech with
    short pauses, for which the two differ by a roughly constant offset, so the relative level
    between sources is close to the requested one.

    Returns ``(mix_int16, [source_int16...])``: sources quantised to 16 bit and the mixture the
    exact integer sum of the quantised sources.
    """
    if len(sources) != len(gains_db):
        raise ValueError("one gain per source")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    scaled = []
    for s, g in zip(sources, gains_db):
        s = np.asarray(s, dtype=np.float64)
        level = rms(s)
        if level <= EPS:
            raise ValueError("silent source")
        scaled.append(s / level * 10.0 ** (float(g) / 20.0))
    lengths = [len(s) for s in scaled]
    n = min(lengths) if mode == "min" else max(lengths)
    scaled = [s[:n] if len(s) >= n else np.pad(s, (0, n - len(s))) for s in scaled]
    mix = np.sum(scaled, axis=0)
    amp = max(float(np.max(np.abs(mix))), *(float(np.max(np.abs(s))) for s in scaled))
    if always_scale or amp > peak:
        factor = peak / max(amp, EPS)
        scaled = [s * factor for s in scaled]
    q = [to_int16(s) for s in scaled]
    mix_q = np.sum([s.astype(np.int32) for s in q], axis=0)
    if np.max(np.abs(mix_q)) > 32767:  # cannot happen with peak <= 0.9; guard anyway
        raise RuntimeError("mixture clipped")
    return mix_q.astype(np.int16), q


def relative_gains(rng: np.random.Generator, n_src: int, max_db: float = 5.0):
    """wsj0-2mix levels: relative level r ~ U(0, max_db); s1 at +r/2 dB, s2 at -r/2 dB.
    Further sources (3-speaker mixtures) get an independent U(-max_db/2, max_db/2) dB."""
    r = float(rng.uniform(0.0, max_db))
    gains = [r / 2.0, -r / 2.0]
    for _ in range(n_src - 2):
        gains.append(float(rng.uniform(-max_db / 2.0, max_db / 2.0)))
    return gains[:n_src] if n_src >= 2 else [0.0]


SPEED_STEPS = 100  # speed factors are rounded to 1/SPEED_STEPS


def speed_steps(speed: float) -> int:
    """``speed`` as an integer number of 1/:data:`SPEED_STEPS` (the resampling ratio's numerator)."""
    return int(round(float(speed) * SPEED_STEPS))


def change_speed(x: np.ndarray, speed: float) -> np.ndarray:
    """Play ``x`` ``speed`` times faster by resampling it (the speed perturbation of Kaldi and of
    SpeechBrain's SepFormer recipes: tempo, pitch and formants all scale by ``speed``, a new
    "pseudo-speaker"). ``speed`` is rounded to 1/100; the output has about ``len(x) / speed``
    samples (polyphase resampling, :func:`~.audio_io.resample`).

    References:
        Ko et al., "Audio augmentation for speech recognition", Interspeech 2015.
    """
    k = speed_steps(speed)
    if k <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if k == SPEED_STEPS:
        return np.asarray(x, dtype=np.float32)
    return resample(x, k, SPEED_STEPS)


def samples_for_speed(length: int, speed: float) -> int:
    """Input samples that :func:`change_speed` needs to give at least ``length`` samples."""
    k = speed_steps(speed)
    return int(length) if k == SPEED_STEPS else int(np.ceil(length * k / SPEED_STEPS)) + 1


# Noise colours: the exponent ``a`` of the power spectrum ``1/f^a``.
NOISE_COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def _exponent(color):
    if color not in NOISE_COLORS:
        raise ValueError(f"noise must be one of {sorted(NOISE_COLORS)}, got {color!r}")
    return NOISE_COLORS[color]


def check_noise(color: str, snr_range: Sequence[float]):
    """Check a noise setting.

    Args:
        color (str): A key of :data:`NOISE_COLORS`.
        snr_range (sequence): ``[low, high]`` SNR in dB, ``low <= high``.

    Returns:
        tuple: ``(color, (low, high))`` with float bounds.

    Raises:
        ValueError: naming the bad value.
    """
    _exponent(color)
    if len(snr_range) != 2 or not float(snr_range[0]) <= float(snr_range[1]):
        raise ValueError(f"noise_snr_db must be [low, high] in dB with low <= high, got {snr_range}")
    return color, (float(snr_range[0]), float(snr_range[1]))


def noise_record(color, snr_db) -> Optional[dict]:
    """The record of a noise setting that ``results.json``, the model card and the datasets share:
    ``{"color": "pink", "snr_db": [0.0, 10.0]}``, or None when ``color`` is None (clean)."""
    return None if not color else {"color": str(color), "snr_db": [float(x) for x in snr_db]}


def noise_label(noise) -> str:
    """A noise setting in words, as the tables and the model card name it: ``{"color": "pink",
    "snr_db": [0.0, 10.0]}`` (``results.json``'s ``"noise"``) is ``"pink, 0 to 10 dB SNR"``; None is
    ``"clean"``."""
    if not noise:
        return "clean"
    low, high = (f"{float(x):g}" for x in noise["snr_db"])
    return f"{noise['color']}, {low if low == high else f'{low} to {high}'} dB SNR"


def colored_noise(rng: np.random.Generator, n: int, color: str = "white") -> np.ndarray:
    """Gaussian noise of power spectrum ``1/f^a`` (``a``: 0 white, 1 pink, 2 brown).

    White Gaussian noise is shaped in the rFFT domain by ``f^(-a/2)`` (the DC bin set to zero, so
    the noise has zero mean), then normalised to unit RMS.

    Args:
        rng (numpy.random.Generator): Source of the white noise.
        n (int): Number of samples.
        color (str): A key of :data:`NOISE_COLORS`.

    Returns:
        numpy.ndarray: ``[n]`` float64 noise of unit RMS (all zeros for ``n < 2``).
    """
    exponent, n = _exponent(color), int(n)
    if n < 2:
        return np.zeros(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    gain = np.zeros_like(freqs)
    gain[1:] = freqs[1:] ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum * gain, n=n)
    level = rms(noise)
    return noise / level if level > EPS else noise


def add_noise(mix: np.ndarray, rng: np.random.Generator, color: str, snr_range: Sequence[float]) -> np.ndarray:
    """``mix`` plus :func:`colored_noise` at an SNR drawn uniformly from ``snr_range``.

    The SNR is that of ``mix`` (the speech mixture, over its whole length) over the noise. The sum
    is not rescaled: it may exceed :data:`CLIP_PEAK` (the datasets return float32).

    Args:
        mix (numpy.ndarray): ``[time]`` speech mixture.
        rng (numpy.random.Generator): Draws the SNR, then the noise.
        color (str): A key of :data:`NOISE_COLORS`.
        snr_range (sequence): ``[low, high]`` SNR in dB.

    Returns:
        numpy.ndarray: The noisy mixture, of ``mix``'s length and dtype.
    """
    color, (low, high) = check_noise(color, snr_range)
    snr_db = float(rng.uniform(low, high))
    noise = colored_noise(rng, len(mix), color) * rms(mix) * 10.0 ** (-snr_db / 20.0)
    return (np.asarray(mix, dtype=np.float64) + noise).astype(np.asarray(mix).dtype)


__all__ = [
    "change_speed", "samples_for_speed", "NOISE_COLORS", "colored_noise", "add_noise", "noise_label",
    "rms", "trim_silence", "shorten_pauses", "quietest_cut", "mix_sources", "relative_gains",
    "CLIP_PEAK",
]
