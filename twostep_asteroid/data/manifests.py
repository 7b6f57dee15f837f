"""Manifests for an existing corpus folder: what :mod:`.librimix` and :mod:`.wham` share.

Both index mixtures that are already on disk into the recipe's manifests
``<out>/json/<split>/{mix,s1..sN}.json`` (JSON lists of ``[absolute_path, n_samples]``, the format
``asteroid.data.Wsj0mixDataset`` and :func:`.datasets.validate_manifests` read) and
``<out>/json/<split>/utterances.json`` (each source file once per utterance id, with its speaker,
for on-the-fly remixing). With the noisy task they also write ``noise.json``, in the same format
and order as ``mix.json``: the readers of the recipe only open ``mix.json`` and ``s<i>.json``, so
the noise is recorded without being taken for a source.

The build is all or nothing:

* every file is checked (exists, readable, the corpus's sample rate, the stated length) before
  anything is written, and every problem is reported at once, naming the file and the fix;
* the manifests are written into ``<out>/.json.staging`` and moved to ``<out>/json`` in one
  rename (:func:`write_staged`, which the corpus builders of :mod:`.builder` use too), so a crash
  or a full disk never leaves half a ``json/`` folder;
* the completion marker ``<out>/.done`` (:class:`.buildstate.BuildState`) holds the hash of the
  build's inputs: a rerun with the same inputs does nothing, a changed one rebuilds.

Nothing here imports torch or the model modules of the package.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

import soundfile as sf

from ..fileio import atomic_write_json
from .buildstate import BuildState, config_hash
from .common import CorpusError, src_names

log = logging.getLogger(__name__)

STAGING = ".json.staging"  # where the manifests are written before they are moved to json/
MANAGED = ("json", STAGING)  # the only children of <out> a build deletes
MAX_SHOWN = 20  # problems listed in an error message (the count says how many more)


@dataclass
class Listed:
    """One mixture as the corpus lists it, before its files are checked.

    Attributes:
        mix_id: its id (the file stem); :func:`manifest_lists` gets the utterance ids from it.
        files: manifest name (``"mix"``, ``"s1"``..., ``"noise"``) -> file, the mixture first.
        n_samples: the length the corpus's metadata states (LibriMix's ``length`` column), or
            ``None`` when there is none: every file must then be as long as the mixture file.
        where: where the mixture is listed (``"<csv>, line <k>"``, a folder), for the messages.
    """

    mix_id: str
    files: Dict[str, Path]
    n_samples: Optional[int]
    where: str


def probe(path: Path, sample_rate: int) -> Tuple[Optional[int], Optional[str]]:
    """The length of an audio file from its header, or what makes it unusable.

    Args:
        path: the file.
        sample_rate: the corpus's rate in Hz; a file at another rate is refused (it would be read
            at the wrong speed).

    Returns:
        ``(n_samples, None)``, or ``(None, problem)`` with a problem that starts with the path.
    """
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile: LibsndfileError/RuntimeError; a missing file: OSError
        if not path.is_file():
            return None, f"{path}: file not found"
        return None, f"{path}: unreadable audio ({e})"
    if info.samplerate != sample_rate:
        return None, f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz"
    if info.channels != 1:
        return None, f"{path}: {info.channels} channels, expected mono"
    return int(info.frames), None


def check_listed(items: Sequence[Listed], sample_rate: int, problems: List[str],
                 progress: bool = True, desc: str = "checking") -> List[Tuple[Listed, int]]:
    """Check every file of every mixture; what is wrong is appended to ``problems``.

    Args:
        items: the mixtures, as listed.
        sample_rate: the corpus's rate (Hz).
        problems: receives one line per problem, each naming the file and where it is listed.
        progress: show a progress bar (a LibriMix training set has ~150k files to probe).
        desc: the progress bar's label.

    Returns:
        ``(mixture, n_samples)`` for the mixtures whose files are all usable and of one length.
    """
    from tqdm import tqdm

    good = []
    for it in tqdm(items, desc=desc, unit="mix", disable=None if progress else True):
        n_ref = it.n_samples
        ref = f"{it.where} says" if n_ref is not None else f"its mixture {it.files['mix']} has"
        ok = True
        for name, path in it.files.items():
            n, problem = probe(path, sample_rate)
            if problem:
                problems.append(f"{problem} ({it.where})")
                ok = False
            elif n_ref is None:
                n_ref = n  # the mixture, listed first, gives the length of the others
            elif n != n_ref:
                problems.append(f"wrong length: {path} has {n} samples, {ref} {n_ref}")
                ok = False
        if ok:
            good.append((it, n_ref))
    return good


def manifest_lists(checked: Sequence[Tuple[Listed, int]], n_src: int,
                   utterances_of: Callable[[str], Optional[List[Tuple[str, str]]]]):
    """The manifests of one split, from its checked mixtures.

    Args:
        checked: ``(mixture, n_samples)`` pairs from :func:`check_listed`.
        n_src: number of speakers (``s1..s<n_src>``).
        utterances_of: mixture id -> ``[(utterance_id, speaker)]``, one per source, or ``None``
            when the id does not name its utterances (the source is then not in the pool).

    Returns:
        ``(name -> [[path, n_samples], ...], utterances.json records sorted by utterance id)``;
        the names are ``mix``, ``s1..s<n_src>`` and, when the mixtures list one, ``noise``.
    """
    names = ["mix"] + src_names(n_src)
    if checked and "noise" in checked[0][0].files:
        names.append("noise")
    lists: Dict[str, list] = {k: [] for k in names}
    utts: Dict[str, dict] = {}
    for it, n in checked:
        for name in names:
            lists[name].append([str(it.files[name]), n])
        for src, (uid, spk) in zip(src_names(n_src), utterances_of(it.mix_id) or []):
            utts.setdefault(uid, {"path": str(it.files[src]), "speaker": spk, "n_samples": n,
                                  "utt_id": uid})
    return lists, sorted(utts.values(), key=lambda r: r["utt_id"])


def raise_problems(problems: Sequence[str], where, fix: str, error: Type[CorpusError]):
    """Raise ``error`` listing the problems found (the first :data:`MAX_SHOWN`), if any.

    Args:
        problems: one line each, naming the file.
        where: the corpus folder checked, named in the first line.
        fix: what the user should do, the message's last line.
        error: the corpus's :class:`~.common.CorpusError` subclass.
    """
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_SHOWN])
    more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    raise error(f"{len(problems)} problem(s) in {where}:\n  {shown}{more}\n{fix}")


def write_staged(out: Path, manifests: Dict[Tuple[str, str], object]) -> List[Path]:
    """Write the manifests ``(split, name) -> content`` as ``<out>/json/<split>/<name>.json``,
    all or nothing: into :data:`STAGING`, then moved to ``json/`` in one rename (replacing the
    ``json/`` of an interrupted build). ``utterances.json`` is indented, the others are not.

    Returns:
        The files written, under ``json/``.
    """
    staging, final = Path(out) / STAGING, Path(out) / "json"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for (split, name), obj in manifests.items():
            atomic_write_json(staging / split / f"{name}.json", obj,
                              indent=1 if name == "utterances" else None)
    except BaseException:  # a full disk, an interruption: leave no half-written manifests
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return [final / split / f"{name}.json" for split, name in manifests]


def build_manifests(out, identity: dict, collect: Callable[[], Tuple[dict, dict]],
                    sample_rate: int, marker: Optional[dict] = None) -> dict:
    """Write the manifests of an existing corpus, all or nothing, unless they are up to date.

    Args:
        out: the folder that receives ``json/`` and the marker ``.done``.
        identity: everything the manifests depend on (corpus folder, options, metadata hashes):
            its hash is the build's identity, so a rerun with the same one is skipped.
        collect: checks the corpus and returns ``(split -> name -> manifest list,
            split -> utterances.json records)``; it raises the corpus's error, before anything is
            written, when a file is missing or wrong.
        sample_rate: the corpus's rate (Hz), for the hours in the sizes.
        marker: more to record in ``.done`` (kind, sizes), beside the hash.

    Returns:
        ``{"out", "status": "done"}`` when already built, else ``{"out", "status": "built",
        "splits": split -> sizes}``.
    """
    out = Path(out).resolve()
    state = BuildState(out, config_hash(identity), MANAGED)
    if state.is_done():
        log.info("%s is up to date: nothing to do.", out / "json")
        return {"out": str(out), "status": "done"}
    lists, utts = collect()
    state.begin()
    state.wipe()  # also after an interrupted build: rewriting manifests takes seconds
    write_staged(out, {**{(split, name): lst for split, by_name in lists.items()
                          for name, lst in by_name.items()},
                       **{(split, "utterances"): utts[split] for split in lists}})
    stats = {}
    for split, by_name in lists.items():
        hours = sum(n for _, n in by_name["mix"]) / sample_rate / 3600
        stats[split] = {"n_mixtures": len(by_name["mix"]), "hours": round(hours, 4),
                        "n_utterances": len(utts[split])}
    state.finish({**(marker or {}), "splits": stats})
    log.info("Manifests written to %s: %s", out / "json", stats)
    return {"out": str(out), "status": "built", "splits": stats}

