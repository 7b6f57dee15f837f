"""Small, dependency-light audio helpers shared by the corpus builders.

Files are written with the atomic helpers of :mod:`twostep_asteroid.fileio`.

* Validated reading: mono check, sample-rate conversion, NIST SPHERE (WSJ0 ``.wv1``) support.
* 16-bit quantisation done here (not by libsndfile) so that a written source round-trips exactly
  and a mixture can be written as the exact integer sum of its written sources.
* :class:`BuildState`: completion marker / resume logic used by both corpus builders.

Nothing here imports the model modules of the package.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
from math import gcd
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import soundfile as sf

from ..fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

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


def parse_sphere_header(path) -> Optional[dict]:
    """Parse a NIST SPHERE header. Returns ``None`` if the file is not SPHERE."""
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(b"NIST_1A"):
            return None
        lines = head.split(b"\n")
        try:
            hdr_size = int(lines[1].strip())
        except (IndexError, ValueError) as e:
            raise AudioError(f"{path}: malformed NIST SPHERE header") from e
        if hdr_size > len(head):
            f.seek(0)
            head = f.read(hdr_size)
            lines = head.split(b"\n")
    fields = {"header_size": hdr_size}
    for line in lines[2:]:
        line = line.strip()
        if not line or line == b"end_head":
            if line == b"end_head":
                break
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        key, typ, val = parts[0].decode(), parts[1].decode(), parts[2].decode(errors="replace")
        if typ == "-i":
            try:
                fields[key] = int(val)
            except ValueError:
                fields[key] = val
        elif typ == "-r":
            fields[key] = float(val)
        else:
            fields[key] = val
    return fields


def _read_sphere_pcm(path, hdr: dict) -> tuple[np.ndarray, int]:
    nbytes = int(hdr.get("sample_n_bytes", 2))
    if nbytes != 2:
        raise AudioError(f"{path}: only 16-bit SPHERE PCM is supported (sample_n_bytes={nbytes})")
    order = str(hdr.get("sample_byte_format", "01"))
    dtype = "<i2" if order == "01" else ">i2"
    ch = int(hdr.get("channel_count", 1))
    with open(path, "rb") as f:
        f.seek(hdr["header_size"])
        raw = f.read()
    q = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=dtype)
    n = hdr.get("sample_count")
    if isinstance(n, int):
        q = q[: n * ch]
    if ch > 1:
        q = q.reshape(-1, ch)
    return (q.astype(np.float32) / np.float32(INT16_SCALE)), int(hdr["sample_rate"])


def read_audio(path, sample_rate: Optional[int] = None, allow_multichannel: bool = False):
    """Read an audio file as float32 mono.

    Raises :class:`AudioError` for unreadable/corrupt/empty files, multichannel files (unless
    ``allow_multichannel``: then channels are averaged) and shorten-compressed SPHERE.
    Headerless files are read as :data:`RAW_FORMATS` says for their suffix (``.gsm``, ``.raw``).
    Resamples to ``sample_rate`` if given. Returns ``(x, sr)`` with ``sr`` the rate of ``x``.
    """
    path = Path(path)
    raw = RAW_FORMATS.get(path.suffix.lower())
    hdr = None
    try:
        hdr = None if raw else parse_sphere_header(path)
    except OSError as e:
        raise AudioError(f"{path}: cannot open ({e})") from e
    if hdr is not None:
        coding = str(hdr.get("sample_coding", "pcm")).lower()
        if "shorten" in coding or "wavpack" in coding or "shortpack" in coding:
            raise AudioError(
                f"{path}: NIST SPHERE with compressed coding '{coding}' cannot be read here. "
                "Convert WSJ0 to WAV first with sph2pipe (e.g. `sph2pipe -f wav in.wv1 out.wav`, "
                "keeping the folder layout; .wav files next to or instead of the .wv1 files are "
                "found automatically)."
            )
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True, **(raw or {}))
    except Exception as e:  # libsndfile errors are RuntimeError/LibsndfileError/TypeError
        if hdr is None:
            raise AudioError(f"{path}: unreadable audio ({e})") from e
        if "pcm" not in str(hdr.get("sample_coding", "pcm")).lower():
            raise AudioError(f"{path}: unsupported SPHERE coding {hdr.get('sample_coding')}") from e
        x, sr = _read_sphere_pcm(path, hdr)
        x = x[:, None] if x.ndim == 1 else x
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


def n_frames(path) -> int:
    return int(sf.info(str(path)).frames)


# --------------------------------------------------------------------------------------------
# Hashing / build state
# --------------------------------------------------------------------------------------------
def config_hash(obj) -> str:
    """Stable hash of a JSON-serialisable config."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class BuildState:
    """Completion-marker logic for a corpus folder.

    * ``<out>/.done`` holds the config hash; it is written last, only when every output exists.
    * ``<out>/.building`` holds the hash of the build in progress.

    :meth:`begin` returns ``"done"`` when the marker matches (nothing to do); otherwise it prepares
    the folder: a crashed build of the *same* config is resumed (existing final files are complete,
    thanks to atomic writes, and identical, thanks to determinism), anything else is wiped first.
    Only the ``managed`` children of ``out`` are ever deleted.
    """

    DONE = ".done"
    BUILDING = ".building"

    def __init__(self, out, chash: str, managed: Sequence[str]):
        self.out = Path(out)
        self.hash = chash
        self.managed = list(managed)
        self.resume = False

    def is_done(self) -> bool:
        marker = self.out / self.DONE
        return marker.exists() and _marker_hash(marker) == self.hash

    def begin(self) -> str:
        if self.is_done():
            return "done"
        self.out.mkdir(parents=True, exist_ok=True)
        done = self.out / self.DONE
        if done.exists():
            log.info("Config changed since the last build (marker %s): rebuilding.", done)
            done.unlink()
        building = self.out / self.BUILDING
        if building.exists() and _marker_hash(building) == self.hash:
            log.info("Resuming an interrupted build of the same config in %s.", self.out)
            self.resume = True
        else:
            self.wipe()
            atomic_write_text(building, self.hash + "\n")
            self.resume = False
        return "resume" if self.resume else "fresh"

    def wipe(self):
        for name in self.managed:
            p = self.out / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()

    def prune(self, keep: Iterable) -> int:
        """Remove every file under the managed paths that is not in ``keep`` (stale files of an
        earlier build, temp files of a crashed one). Returns the number removed."""
        keep = {os.path.abspath(p) for p in keep}
        removed = 0
        for name in self.managed:
            root = self.out / name
            if root.is_file():
                if os.path.abspath(root) not in keep:
                    root.unlink()
                    removed += 1
                continue
            if not root.is_dir():
                continue
            for dirpath, _, files in os.walk(root):
                for fn in files:
                    p = os.path.abspath(os.path.join(dirpath, fn))
                    if p not in keep:
                        os.unlink(p)
                        removed += 1
            # drop folders left empty
            for dirpath, dirs, files in sorted(os.walk(root), key=lambda t: -len(t[0])):
                if not os.listdir(dirpath) and os.path.abspath(dirpath) != os.path.abspath(root):
                    os.rmdir(dirpath)
        if removed:
            log.info("Removed %d stale/temporary files.", removed)
        return removed

    def finish(self, extra: Optional[dict] = None):
        body = {"config_hash": self.hash}
        if extra:
            body.update(extra)
        atomic_write_json(self.out / self.DONE, body)
        b = self.out / self.BUILDING
        if b.exists():
            b.unlink()


def _marker_hash(path: Path) -> Optional[str]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text.startswith("{"):
        try:
            return json.loads(text).get("config_hash")
        except json.JSONDecodeError:
            return None
    return text or None
