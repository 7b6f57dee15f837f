"""Debian packages as a data source: ``apt-get download`` into a cache, ``dpkg -x`` to unpack.

Nothing is ever installed. Used by :func:`~.prompts.build_from_debs` for the packages of
:data:`~.voices.PACKAGES`; errors are :class:`~.common.CorpusError` naming the package and the way
out (:data:`NO_APT_HINT`).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .common import CorpusError

log = logging.getLogger(__name__)

NO_APT_HINT = (
    "Fetch the packages with `make debs` (apt-get download into ~/.cache/twostep-asteroid/debs, "
    "the recipe's --deb_cache), or put the .deb files of {pkgs} into --deb_cache yourself, or pass "
    "an already extracted tree with --src_dir, or build from WSJ0 instead: "
    "python -m twostep_asteroid.data.wsj0mix --out DIR (--wsj0_dir PATH | --wsj0mix_dir PATH). "
    "Without apt-get and dpkg (Debian/Ubuntu: part of the base system; elsewhere install the 'apt' "
    "and 'dpkg' packages) only the last two work."
)


def _cached_deb(cache: Path, pkg: str) -> Optional[Path]:
    found = sorted(cache.glob(f"{pkg}_*.deb"))
    return found[-1] if found else None


def fetch_debs(packages: Sequence[str], cache) -> List[Path]:
    """The .deb of each package, downloading the missing ones with ``apt-get download``.

    Args:
        packages: Debian package names.
        cache: folder of the .debs; a package already there (``<pkg>_*.deb``) is not downloaded.

    Returns:
        The .deb paths, in the order of ``packages``. Raises :class:`CorpusError` naming each
        package that cannot be had, with :data:`NO_APT_HINT`.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if _cached_deb(cache, p) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise CorpusError(f"package(s) {', '.join(missing)} not in {cache}, and apt-get not found. "
                              + NO_APT_HINT.format(pkgs=", ".join(missing)))
        log.info("Downloading %s into %s", " ".join(missing), cache)
        failed = _download(missing, cache)
        if failed:
            raise CorpusError(
                f"apt-get download failed for package(s) {', '.join(failed)}:\n"
                + "\n".join(f"{k}: {v}" for k, v in failed.items()) + "\n"
                + NO_APT_HINT.format(pkgs=", ".join(failed)))
    debs = []
    for p in packages:
        d = _cached_deb(cache, p)
        if d is None:
            raise CorpusError(f"package {p} is not in {cache} after download. "
                              + NO_APT_HINT.format(pkgs=p))
        debs.append(d)
    return debs


def _download(packages: Sequence[str], cache: Path) -> Dict[str, str]:
    """``apt-get download`` each package, one at a time so that an error names the package that
    cannot be had; after a first failure ``apt-get update`` runs once and the download is retried.
    Downloads go to a temporary folder and are moved into ``cache`` when complete, so an
    interrupted download never leaves a partial .deb there.

    Returns:
        package -> the end of apt-get's error output, for each package that failed.
    """
    failed, updated = {}, False
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        for pkg in packages:
            def download():
                return subprocess.run(["apt-get", "download", pkg], cwd=tmp,
                                      capture_output=True, text=True)

            r = download()
            if r.returncode != 0 and not updated:
                log.info("apt-get download %s failed (%s); running apt-get update once and "
                         "retrying.", pkg, r.stderr.strip().splitlines()[-1:] or r.returncode)
                u = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
                updated = True
                if u.returncode != 0:
                    log.warning("apt-get update failed: %s", u.stderr.strip()[-500:])
                r = download()
            if r.returncode != 0:
                failed[pkg] = (r.stderr or r.stdout).strip()[-600:]
            for f in sorted(Path(tmp).glob("*.deb")):
                os.replace(f, cache / f.name)
    return failed


def extract_debs(debs: Sequence[Path], dest) -> Path:
    """``dpkg -x`` each .deb into ``dest`` (data files only; nothing is installed).

    Returns:
        ``dest``. Raises :class:`CorpusError` without dpkg, or naming a .deb that does not unpack.
    """
    if shutil.which("dpkg") is None:
        raise CorpusError("dpkg not found (needed for `dpkg -x`). "
                          + NO_APT_HINT.format(pkgs=", ".join(d.name for d in debs)))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for d in debs:
        r = subprocess.run(["dpkg", "-x", str(d), str(dest)], capture_output=True, text=True)
        if r.returncode != 0:
            raise CorpusError(f"dpkg -x {d} failed: {r.stderr.strip()[-800:]}\n"
                              f"The file may be damaged: delete it from the cache and rerun.")
    return dest
