"""Build identity and resume logic shared by the corpus builders.

* :func:`config_hash` / :func:`file_sha256`: stable hashes of a build's configuration and inputs.
* :class:`BuildState`: the completion marker, so that a finished build is not redone, a crashed
  one of the same configuration is resumed and any other one is wiped first.

Files are written with the atomic helpers of :mod:`twostep_asteroid.fileio`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..fileio import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


def config_hash(obj) -> str:
    """Stable hash of a JSON-serialisable config (keys sorted, so dict order does not matter).

    Returns:
        16 hex digits of its SHA-256: the identity a completion marker records.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, read ``chunk`` bytes at a time (for the provenance record)."""
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
