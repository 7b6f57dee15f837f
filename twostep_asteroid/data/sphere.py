"""NIST SPHERE, the header format of WSJ0's ``.wv1`` files.

libsndfile reads plain PCM SPHERE itself; this module parses the header, tells compressed files
(shorten, which need ``sph2pipe``) apart, and reads 16-bit PCM when libsndfile cannot.
:func:`~.audio_io.read_audio` uses it and turns :class:`SphereError` into ``AudioError``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

MAGIC = b"NIST_1A"
COMPRESSED = ("shorten", "wavpack", "shortpack")  # sample_coding values that sph2pipe decodes


class SphereError(ValueError):
    """A SPHERE file that cannot be read here (malformed header, unsupported coding)."""


def parse_sphere_header(path) -> Optional[dict]:
    """Parse a NIST SPHERE header.

    Args:
        path: any file.

    Returns:
        The header fields (``-i`` fields as int, ``-r`` as float, others as str) plus
        ``header_size``, or ``None`` if the file is not SPHERE. Raises :class:`SphereError` for a
        malformed header and ``OSError`` if the file cannot be opened.
    """
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(MAGIC):
            return None
        lines = head.split(b"\n")
        try:
            hdr_size = int(lines[1].strip())
        except (IndexError, ValueError) as e:
            raise SphereError(f"{path}: malformed NIST SPHERE header") from e
        if hdr_size > len(head):
            f.seek(0)
            head = f.read(hdr_size)
            lines = head.split(b"\n")
    fields = {"header_size": hdr_size}
    for line in lines[2:]:
        line = line.strip()
        if line == b"end_head":
            break
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        key, typ, val = parts[0].decode(), parts[1].decode(), parts[2].decode(errors="replace")
        fields[key] = _field_value(typ, val)
    return fields


def _field_value(typ: str, val: str):
    if typ == "-i":
        try:
            return int(val)
        except ValueError:
            return val
    if typ == "-r":
        return float(val)
    return val


def check_not_compressed(path, hdr: dict):
    """Raise :class:`SphereError`, saying how to convert the file, if its samples are compressed."""
    coding = str(hdr.get("sample_coding", "pcm")).lower()
    if any(c in coding for c in COMPRESSED):
        raise SphereError(
            f"{path}: NIST SPHERE with compressed coding '{coding}' cannot be read here. "
            "Convert WSJ0 to WAV first with sph2pipe (e.g. `sph2pipe -f wav in.wv1 out.wav`, "
            "keeping the folder layout; .wav files next to or instead of the .wv1 files are "
            "found automatically)."
        )


def read_sphere_pcm(path, hdr: dict) -> Tuple[np.ndarray, int]:
    """Read the samples of a 16-bit PCM SPHERE file.

    Args:
        path: the file.
        hdr: its header, from :func:`parse_sphere_header`.

    Returns:
        ``(q, sample_rate)``: ``q`` int16, ``[n]`` for one channel, ``[n, channels]`` otherwise.
        Raises :class:`SphereError` for another coding or sample size.
    """
    if "pcm" not in str(hdr.get("sample_coding", "pcm")).lower():
        raise SphereError(f"{path}: unsupported SPHERE coding {hdr.get('sample_coding')}")
    nbytes = int(hdr.get("sample_n_bytes", 2))
    if nbytes != 2:
        raise SphereError(f"{path}: only 16-bit SPHERE PCM is supported (sample_n_bytes={nbytes})")
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
    return q, int(hdr["sample_rate"])
