"""Small, dependency-light audio helpers shared by the corpus builders and the datasets.

* Validated reading (:func:`read_audio`): mono check, sample-rate conversion, headerless formats
  and NIST SPHERE (WSJ0 ``.wv1``, through :mod:`.sphere`).
* 16-bit quantisation done here (not by libsndfile) so that a written source round-trips exactly
  and a mixture can be written as the exact integer sum of its written sources.

Files are written with the atomic helpers of :mod:`twostep_asteroid.fileio`. Nothing here imports
the model modules of the package.
"""
from __future__ import annotations

import io
from math import gcd
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

from ..fileio import atomic_write_bytes
from .sphere import SphereError, check_not_compressed, parse_sphere_header, read_sphere_pcm

INT16_SCALE = 32768.0

# Headerless audio, by file suffix: how libsndfile must be told to read it.
#  * ``.gsm``: raw GSM 6.10 frames at 8 kHz (Asterisk's prompt format, e.g. asterisk-prompt-fr-armelle);
#  * ``.raw``: 16-bit little-endian PCM at 8 kHz, mono (codec2's speech samples, codec2-examples).
RAW_FORMATS = {
    ".gsm": dict(format="RAW", subtype="GSM610", samplerate=8000, channels=1),
    ".raw": dict(format="RAW", subtype="PCM_16", samplerate=8000, channels=1, endian="LITTLE"),
}


class AudioError(RuntimeError):
    """An audio file that cannot be used (corrupt, empty, multichannel, unsupported coding)."""


class MultichannelError(AudioError):
    """A multichannel file where mono was required."""


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float waveform in [-1, 1) to int16 (round to nearest, clipped)."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16)


def from_int16(q: np.ndarray) -> np.ndarray:
    """int16 to float32 exactly as ``soundfile.read(..., dtype='float32')`` returns it."""
    return (np.asarray(q, dtype=np.float32) / np.float32(INT16_SCALE)).astype(np.float32)


def wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV file content. Floats are quantised with :func:`to_int16`."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a mono 1-D signal, got shape {x.shape}")
    q = x if x.dtype == np.int16 else to_int16(x)
    buf = io.BytesIO()
    sf.write(buf, q, int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path, x: np.ndarray, sample_rate: int, skip_existing: bool = False) -> Path:
    """Atomically write a 16-bit PCM mono WAV. With ``skip_existing`` an existing file is kept
    (safe because files only ever appear complete under their final name)."""
    path = Path(path)
    if skip_existing and path.exists():
        return path
    return atomic_write_bytes(path, wav_bytes(x, sample_rate))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling with a Kaiser window (beta=5, 10 zero crossings per side), the
    design MATLAB's ``resample`` uses, which the wsj0-mix scripts call."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    y = resample_poly(np.asarray(x, dtype=np.float64), up, down, window=("kaiser", 5.0))
    return y.astype(np.float32)


def read_audio(path, sample_rate: Optional[int] = None, allow_multichannel: bool = False):
    """Read an audio file as float32 mono.

    Args:
        path: a file libsndfile reads, headerless audio (read as :data:`RAW_FORMATS` says for its
            suffix, ``.gsm`` or ``.raw``) or NIST SPHERE.
        sample_rate: resample to this rate (Hz) if given.
        allow_multichannel: average the channels instead of refusing the file.

    Returns:
        ``(x, sr)``: ``x`` float32 ``[n]``, ``sr`` its rate. Raises :class:`AudioError` for
        unreadable/corrupt/empty files, non-finite samples, multichannel files
        (:class:`MultichannelError`) and compressed SPHERE (with how to convert it).
    """
    path = Path(path)
    x, sr = _read_2d(path)
    if x.shape[0] == 0:
        raise AudioError(f"{path}: empty audio")
    if x.shape[1] > 1:
        if not allow_multichannel:
            raise MultichannelError(f"{path}: {x.shape[1]} channels, expected mono")
        x = x.mean(axis=1, keepdims=True)
    x = x[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{path}: non-finite samples")
    if sample_rate is not None and sr != sample_rate:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def _read_2d(path: Path):
    """``(x [n, channels] float32, sr)`` from libsndfile, or from :mod:`.sphere` for the SPHERE
    files libsndfile cannot read."""
    raw = RAW_FORMATS.get(path.suffix.lower())
    try:
        hdr = None if raw else parse_sphere_header(path)
        if hdr is not None:
            check_not_compressed(path, hdr)
    except OSError as e:
        raise AudioError(f"{path}: cannot open ({e})") from e
    except SphereError as e:
        raise AudioError(str(e)) from e
    try:
        return sf.read(str(path), dtype="float32", always_2d=True, **(raw or {}))
    except Exception as e:  # libsndfile errors are RuntimeError/LibsndfileError/TypeError
        if hdr is None:
            raise AudioError(f"{path}: unreadable audio ({e})") from e
        try:
            q, sr = read_sphere_pcm(path, hdr)
        except SphereError as err:
            raise AudioError(str(err)) from e
    x = from_int16(q)
    return (x[:, None] if x.ndim == 1 else x), sr


def n_frames(path) -> int:
    """Number of samples (per channel) of an audio file, from its header."""
    return int(sf.info(str(path)).frames)
