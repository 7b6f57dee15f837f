"""Atomic file writes: the package's one home for writing a file so that it is never half there.

Every output is written to a temporary file in the same folder and moved into place with
``os.replace``. A crash leaves the previous file (or none), never a truncated one under the final
name. A write that fails because the disk is full raises :class:`DiskFullError`, which names the
file and the free space; the temporary file is removed.

Nothing here imports torch or the model modules at import time.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

TMP_SUFFIX = ".tmp"

#: Below this many free bytes, a write error from a library that hides ``errno`` (torch's zip
#: writer, libsndfile) is taken for a full disk.
NEARLY_FULL_BYTES = 1 << 20


class DiskFullError(OSError):
    """A write that failed because the file system is full (``ENOSPC``, or a quota: ``EDQUOT``).

    Its message names the file, says that the disk is full and how much is free; ``errno`` is
    ``ENOSPC`` and ``filename`` the file.
    """

    def __init__(self, message, path):
        super().__init__(errno.ENOSPC, message, str(path))
        self.message = message

    def __str__(self):
        return self.message


def tmp_path(path) -> Path:
    """The temporary sibling of ``path`` that an atomic write fills (hidden, per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def free_bytes(folder) -> Optional[int]:
    """Free bytes for unprivileged writes in the file system of ``folder`` (or of its nearest
    existing parent); ``None`` if it cannot be found out."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(err: BaseException, folder=None) -> bool:
    """Whether ``err`` comes from a full disk: ``errno`` ``ENOSPC``/``EDQUOT``, or, for errors that
    carry no ``errno`` (torch's zip writer, libsndfile), less than :data:`NEARLY_FULL_BYTES` free
    in ``folder``."""
    if isinstance(err, DiskFullError):
        return True
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    if folder is not None and isinstance(err, (OSError, RuntimeError)):
        free = free_bytes(folder)
        return free is not None and free < NEARLY_FULL_BYTES
    return False


def disk_full_error(path, err: BaseException, advice: str = "") -> DiskFullError:
    """A :class:`DiskFullError` for a failed write of ``path``: names the file, the free space and
    ``advice`` (what to rerun once space is freed)."""
    path = Path(path)
    free = free_bytes(path.parent)
    free_text = f"{free / 2**20:.1f} MiB free" if free is not None else "free space unknown"
    cause = getattr(err, "strerror", None) or str(err) or type(err).__name__
    message = (f"Cannot write {path}: the disk is full ({cause}; {free_text} in {path.parent}). "
               "Free some space (or point the output elsewhere) and rerun." + (f" {advice}" if advice else ""))
    return DiskFullError(message, path)


def _unlink_quietly(path: Path):
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def atomic_target(path, advice: str = "") -> Iterator[Path]:
    """Context manager for an atomic write: yields a temporary path to fill; on a clean exit it
    replaces ``path``. On any failure the temporary file is removed and ``path``, if it existed,
    is left as it was; a full disk raises :class:`DiskFullError` (with ``advice`` in its message).

    Args:
        path (str or Path): The final file (its folder is created).
        advice (str): What to do once space is freed (e.g. which command resumes).

    Yields:
        Path: The temporary file, in ``path``'s folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        if is_disk_full(err, path.parent) and not isinstance(err, DiskFullError):
            _unlink_quietly(tmp)  # frees what the partial write took
            raise disk_full_error(path, err, advice) from err
        raise
    finally:
        _unlink_quietly(tmp)


def atomic_write(path, write: Callable[[Path], object], advice: str = "") -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills the temporary file (see :func:`atomic_target`).

    Args:
        path (str or Path): The final file.
        write (callable): Writes the whole content to the temporary path it is given.
        advice (str): What to do once space is freed.

    Returns:
        Path: ``path``.
    """
    with atomic_target(path, advice) as tmp:
        write(tmp)
    return Path(path)


def _write_bytes_to(tmp: Path, data: bytes):
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()


def atomic_write_bytes(path, data: bytes, advice: str = "") -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: _write_bytes_to(tmp, data), advice)


def atomic_torch_save(obj, path, advice: str = "") -> Path:
    """``torch.save`` to ``path`` atomically. The object is serialized in memory first, because
    torch's own file writer reports a full disk as a bare ``RuntimeError``."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), advice)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent: Optional[int] = 2, sort_keys: bool = False) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def atomic_write_csv(path, rows: Sequence[dict], fieldnames: Optional[Sequence[str]] = None,
                     lineterminator: str = "\r\n") -> Path:
    """Write ``rows`` (dicts) as CSV to ``path`` atomically; the columns are ``fieldnames``, or the
    keys of the first row; lines end with ``lineterminator`` (csv's ``"\r\n"`` by default)."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(fieldnames or rows[0]), lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, out.getvalue())


def atomic_savefig(fig, path, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically, in the format of ``path``'s suffix (png by default)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())
