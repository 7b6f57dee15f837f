"""wsj0-2mix / wsj0-3mix: creation from WSJ0 and manifests for existing folders.

Two modes::

    # create the mixtures from WSJ0 (sphere .wv1 or converted .wav) with the standard lists
    python -m twostep_asteroid.data.wsj0mix --out DIR --wsj0_dir WSJ0_ROOT [--lists_dir L]
        [--n_src 2] [--sample_rate 8000] [--mode min]

    # an existing wsj0-2mix folder: only write (validated) manifests into DIR/json
    python -m twostep_asteroid.data.wsj0mix --out DIR --wsj0mix_dir WSJ0_2MIX_ROOT

The output layout is the one of the prompt corpus and of the original scripts:
``<out>/wav8k/min/{tr,cv,tt}/{mix,s1,s2}/<utt1>_<snr1>_<utt2>_<snr2>.wav`` and manifests
``<out>/json/{tr,cv,tt}/{mix,s1,s2}.json`` (JSON lists of ``[absolute_path, n_samples]``, the format
``asteroid.data.Wsj0mixDataset`` reads), plus ``<out>/json/<split>/utterances.json`` (the
single-speaker pool for on-the-fly mixing; WSJ0 speaker = first 3 characters of the utterance id).

Mixing follows MERL's ``create_wav_2speakers.m``: resample (16 kHz -> 8 kHz), normalise each
utterance to unit level, weight by ``10**(snr/20)``, truncate to the shorter (``min``) or pad to
the longer (``max``), and scale mixture and sources by ``0.9 / max(|mix|, |s_i|)``. The level is
the plain RMS, an approximation of the P.56 active level (``activlev``) the MATLAB code uses.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..config import DEFAULTS
from ..fileio import atomic_write_json
from .audio_io import AudioError, n_frames, read_audio, write_wav
from .buildstate import BuildState, config_hash
from .common import (SPLITS, CorpusError, add_layout_options, builder_parser, run_build, setup_logging,
                     src_names, wav_dir)
from .mixing import CLIP_PEAK, mix_sources

log = logging.getLogger(__name__)

_DATA = DEFAULTS["data"]  # the recipe's defaults: n_src, sample_rate
LISTS_URL_HINT = (
    "The standard mixture lists mix_{n}_spk_{{tr,cv,tt}}.txt come with MERL's wsj0-mix scripts, "
    "create-speaker-mixtures.zip (http://www.merl.com/demos/deep-clustering/"
    "create-speaker-mixtures.zip). Unzip it and pass the folder with --lists_dir."
)


class Wsj0MixError(CorpusError):
    """A user-facing error: the message names the missing file or what to do."""


@dataclass
class MixLine:
    paths: List[str]  # relative to the WSJ0 root, as in the list
    snrs: List[str]  # as written in the list (used verbatim in the file name)

    @property
    def utt_ids(self) -> List[str]:
        return [Path(p).stem for p in self.paths]

    @property
    def mix_id(self) -> str:
        return "_".join(f"{u}_{s}" for u, s in zip(self.utt_ids, self.snrs))


def parse_mix_list(path, n_src: int = 2) -> List[MixLine]:
    """Parse a wsj0-mix list: each line ``path1 snr1 path2 snr2 [path3 snr3]``."""
    out = []
    with open(path) as f:
        for k, line in enumerate(f, 1):
            tok = line.split()
            if not tok:
                continue
            if len(tok) != 2 * n_src:
                raise Wsj0MixError(
                    f"{path}:{k}: expected {2 * n_src} fields (path snr) x {n_src}, got {len(tok)}")
            paths, snrs = tok[0::2], tok[1::2]
            for s in snrs:
                try:
                    float(s)
                except ValueError as e:
                    raise Wsj0MixError(f"{path}:{k}: bad SNR {s!r}") from e
            out.append(MixLine(paths, snrs))
    return out


def find_lists(lists_dir, n_src: int) -> Dict[str, Path]:
    """The standard mixture lists ``mix_<n_src>_spk_<split>.txt`` in ``lists_dir`` or below it.

    Returns:
        split -> list file. Raises :class:`Wsj0MixError` saying where to get the lists.
    """
    names = {s: f"mix_{n_src}_spk_{s}.txt" for s in SPLITS}
    if lists_dir is None:
        raise Wsj0MixError("no --lists_dir given. " + LISTS_URL_HINT.format(n=n_src))
    lists_dir = Path(lists_dir)
    found = {}
    for split, name in names.items():
        hits = [lists_dir / name] + sorted(lists_dir.rglob(name))
        hit = next((h for h in hits if h.is_file()), None)
        if hit is None:
            raise Wsj0MixError(f"{lists_dir / name} not found. " + LISTS_URL_HINT.format(n=n_src))
        found[split] = hit
    return found


def resolve_wsj0_path(root: Path, rel: str) -> Path:
    """Find a list entry under the WSJ0 root: as written, with ``.wav`` instead of ``.wv1``
    (sph2pipe-converted trees), with the leading ``wsj0/`` removed when ``root`` is the wsj0
    folder itself, and in lower/upper case."""
    rel_p = Path(rel)
    variants = [rel_p]
    if rel_p.parts and rel_p.parts[0].lower() == "wsj0":
        variants.append(Path(*rel_p.parts[1:]))
    cands = []
    for v in variants:
        for w in (v, Path(str(v).lower()), Path(str(v).upper())):
            cands += [w, w.with_suffix(".wav"), w.with_suffix(".WAV"), w.with_suffix(".wv1"),
                      w.with_suffix(".WV1")]
    for c in cands:
        p = root / c
        if p.is_file():
            return p
    raise Wsj0MixError(f"WSJ0 file for {rel!r} not found under {root} "
                       f"(tried {root / variants[0]} and .wav/.wv1 variants)")


@dataclass
class Wsj0MixConfig:
    """How wsj0-mix is created; ``n_src`` and ``sample_rate`` default to the recipe's ``data``
    section (``config.DEFAULTS``)."""

    n_src: int = _DATA["n_src"]
    sample_rate: int = _DATA["sample_rate"]
    mode: str = "min"
    write_utterances: bool = True  # also the single-speaker pool (utterances.json)

    @property
    def wav_dir(self) -> str:
        return wav_dir(self.sample_rate, self.mode)


MANAGED = ("wav8k", "wav16k", "json", "utterances")


def create_wsj0mix(wsj0_dir, out, lists_dir=None, cfg: Optional[Wsj0MixConfig] = None,
                   splits: Sequence[str] = SPLITS, progress: bool = True) -> dict:
    """Create wsj0-{n_src}mix from WSJ0 following the standard lists.

    Idempotent and resumable (completion marker ``<out>/.done``; files written atomically).

    Args:
        wsj0_dir: the WSJ0 root (``.wv1`` files, or ``.wav`` converted with sph2pipe).
        out: the corpus folder.
        lists_dir: folder with MERL's ``mix_<n>_spk_<split>.txt`` (:func:`find_lists`).
        cfg: how to create it (default :class:`Wsj0MixConfig`).
        splits: the splits to create.
        progress: show progress bars.

    Returns:
        ``{"out", "status": "done"}`` when already built, else ``{"out", "status": "built",
        "splits": split -> sizes}``. Raises :class:`Wsj0MixError` naming what is missing.
    """
    cfg = cfg or Wsj0MixConfig()
    if cfg.mode not in ("min", "max"):
        raise Wsj0MixError("mode must be 'min' or 'max'")
    wsj0_dir = Path(wsj0_dir).resolve()
    out = Path(out).resolve()
    if not wsj0_dir.is_dir():
        raise Wsj0MixError(f"--wsj0_dir {wsj0_dir} is not a folder")
    lists = find_lists(lists_dir, cfg.n_src)
    lines = {s: parse_mix_list(lists[s], cfg.n_src) for s in splits}
    chash = config_hash({"kind": "wsj0mix", "config": asdict(cfg), "out": str(out),
                         "wsj0": str(wsj0_dir), "splits": list(splits),
                         "lists": {s: [ln.mix_id for ln in lines[s]] for s in splits}})
    state = BuildState(out, chash, MANAGED)
    if state.begin() == "done":
        log.info("%s is up to date: nothing to do.", out)
        return {"out": str(out), "status": "done"}
    t0 = time.time()
    keep: List[Path] = []
    stats = {}
    for split in splits:
        stats[split] = _create_split(wsj0_dir, out, split, lines[split], cfg, state.resume, keep,
                                     progress)
    state.prune(keep)
    state.finish({"kind": f"wsj0-{cfg.n_src}mix", "splits": stats})
    log.info("wsj0-%dmix written to %s in %.1f s: %s", cfg.n_src, out, time.time() - t0, stats)
    return {"out": str(out), "status": "built", "splits": stats}


def _create_split(wsj0_dir: Path, out: Path, split: str, lines: Sequence[MixLine],
                  cfg: Wsj0MixConfig, resume: bool, keep: List[Path], progress: bool) -> dict:
    """Write one split: mixtures and sources, manifests and (``cfg.write_utterances``) the
    single-speaker pool.

    Args:
        resume: keep the files already there (a resumed build of the same config).
        keep: the files written are appended to it.

    Returns:
        The split's sizes (mixtures, hours, utterances).
    """
    from tqdm import tqdm

    sr = cfg.sample_rate
    names = ["mix"] + src_names(cfg.n_src)
    utt_written: Dict[str, dict] = {}
    lists_out = {k: [] for k in names}
    total = 0
    for ln in tqdm(lines, desc=f"wsj0-{cfg.n_src}mix {split}", unit="mix",
                   disable=None if progress else True):
        sigs = [_read_source(wsj0_dir, rel, sr) for rel in ln.paths]
        mix_q, srcs_q = mix_sources(sigs, [float(s) for s in ln.snrs], mode=cfg.mode)
        n = len(mix_q)
        for name, sig in zip(names, [mix_q] + srcs_q):
            p = out / cfg.wav_dir / split / name / f"{ln.mix_id}.wav"
            write_wav(p, sig, sr, skip_existing=resume)
            keep.append(p)
            lists_out[name].append([str(p), n])
        total += n
        if cfg.write_utterances:
            for uid, x in zip(ln.utt_ids, sigs):
                if uid not in utt_written:
                    utt_written[uid] = _write_utterance(out / "utterances" / split, uid, x, sr,
                                                        resume, keep)
    for name, lst in lists_out.items():
        keep.append(atomic_write_json(out / "json" / split / f"{name}.json", lst, indent=None))
    if cfg.write_utterances:
        keep.append(atomic_write_json(out / "json" / split / "utterances.json",
                                      sorted(utt_written.values(), key=lambda r: r["utt_id"]),
                                      indent=1))
    return {"n_mixtures": len(lines), "hours": round(total / sr / 3600, 4),
            "n_utterances": len(utt_written)}


def _read_source(wsj0_dir: Path, rel: str, sample_rate: int):
    """A list entry's WSJ0 utterance, at ``sample_rate``. Raises :class:`Wsj0MixError` for
    unusable audio."""
    p = resolve_wsj0_path(wsj0_dir, rel)
    try:
        x, _ = read_audio(p, sample_rate=sample_rate)
    except AudioError as e:
        raise Wsj0MixError(str(e)) from e
    return x


def _write_utterance(folder: Path, uid: str, x, sample_rate: int, resume: bool,
                     keep: List[Path]) -> dict:
    """Write a source utterance of the pool (scaled down to :data:`~.mixing.CLIP_PEAK` if louder:
    the file is 16-bit). Returns its ``utterances.json`` record (speaker: the WSJ0 convention,
    the first 3 characters of the id)."""
    spk = uid[:3]
    p = folder / spk / f"{uid}.wav"
    peak = float(abs(x).max()) if len(x) else 0.0
    y = x * (CLIP_PEAK / peak) if peak > CLIP_PEAK else x
    write_wav(p, y, sample_rate, skip_existing=resume)
    keep.append(p)
    return {"path": str(p), "speaker": spk, "n_samples": len(x), "utt_id": uid}


def _find_mix_root(wsj0mix_dir: Path, sample_rate: int, mode: str) -> Path:
    cands = [wsj0mix_dir / wav_dir(sample_rate, mode), wsj0mix_dir / mode, wsj0mix_dir]
    for c in cands:
        if all((c / s / "mix").is_dir() for s in SPLITS):
            return c
    raise Wsj0MixError(
        f"{wsj0mix_dir} does not look like a wsj0-mix folder: expected "
        f"{wsj0mix_dir / wav_dir(sample_rate, mode)}/{{tr,cv,tt}}/mix/")


def wsj0mix_manifests(wsj0mix_dir, out, n_src: int = _DATA["n_src"],
                      sample_rate: int = _DATA["sample_rate"],
                      mode: str = "min", splits: Sequence[str] = SPLITS,
                      check_lengths: bool = True, progress: bool = True) -> dict:
    """Write the manifests of an existing wsj0-mix folder.

    Writes ``<out>/json/<split>/{mix,s1..sN,utterances}.json``, checking that every mixture has
    all its sources (and, by default, the same length). ``utterances.json`` lists each source file
    once per utterance id (speaker = first 3 characters, the WSJ0 convention) for on-the-fly
    remixing.

    Returns:
        ``{"out", "root": the folder holding the splits, "splits": split -> sizes}``. Raises
        :class:`Wsj0MixError` listing every problem found (no manifest is written then).
    """
    root = _find_mix_root(Path(wsj0mix_dir).resolve(), sample_rate, mode)
    out = Path(out).resolve()
    problems: List[str] = []
    stats = {}
    for split in splits:
        lists, utts = _split_manifests(root / split, n_src, check_lengths, problems, progress)
        stats[split] = {"n_mixtures": len(lists["mix"]), "n_utterances": len(utts)}
        if problems:
            continue
        for name, lst in lists.items():
            atomic_write_json(out / "json" / split / f"{name}.json", lst, indent=None)
        atomic_write_json(out / "json" / split / "utterances.json",
                          sorted(utts.values(), key=lambda r: r["utt_id"]), indent=1)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise Wsj0MixError(f"{len(problems)} problem(s) in {root}:\n  {shown}{more}")
    log.info("Manifests written to %s: %s", out / "json", stats)
    return {"out": str(out), "root": str(root), "splits": stats}


def _split_manifests(split_dir: Path, n_src: int, check_lengths: bool, problems: List[str],
                     progress: bool):
    """The manifest lists of one split folder (``<split>/{mix,s1..}/*.wav``); what is wrong is
    appended to ``problems``.

    Returns:
        ``(name -> [[path, n_samples], ...], utterance id -> utterances.json record)``.
    """
    from tqdm import tqdm

    sources = src_names(n_src)
    mix_dir = split_dir / "mix"
    mixes = sorted(p for p in mix_dir.iterdir() if p.suffix.lower() == ".wav")
    if not mixes:
        raise Wsj0MixError(f"no .wav files in {mix_dir}")
    lists = {k: [] for k in ["mix"] + sources}
    utts: Dict[str, dict] = {}
    for m in tqdm(mixes, desc=f"manifests {split_dir.name}", unit="mix",
                  disable=None if progress else True):
        n = n_frames(m)
        srcs = [split_dir / s / m.name for s in sources]
        missing = [str(s) for s in srcs if not s.is_file()]
        if missing:
            problems += [f"missing source {s} (for {m})" for s in missing]
            continue
        if check_lengths:
            for s in srcs:
                ns = n_frames(s)
                if ns != n:
                    problems.append(f"length mismatch: {s} has {ns} samples, {m} has {n}")
        lists["mix"].append([str(m), n])
        tok = m.stem.split("_")
        for i, (name, s) in enumerate(zip(sources, srcs)):
            lists[name].append([str(s), n])
            if len(tok) >= 2 * n_src:
                uid = tok[2 * i]
                utts.setdefault(uid, {"path": str(s), "speaker": uid[:3], "n_samples": n,
                                      "utt_id": uid})
    return lists, utts


def get_parser() -> argparse.ArgumentParser:
    d = Wsj0MixConfig()
    p = builder_parser("wsj0mix", "Create wsj0-2mix/3mix from WSJ0, or write manifests for an "
                       "existing folder.", "output folder (wav8k/..., json/...)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--wsj0_dir", help="WSJ0 root (the folder holding wsj0/si_tr_s/...)")
    g.add_argument("--wsj0mix_dir", help="existing wsj0-mix folder (holding wav8k/min/tr/...)")
    p.add_argument("--lists_dir", default=None,
                   help="folder with mix_<n>_spk_{tr,cv,tt}.txt (MERL create-speaker-mixtures)")
    add_layout_options(p, d)
    p.add_argument("--no_utterances", action="store_true",
                   help="with --wsj0_dir: do not write the single-speaker utterance pool")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()

    def build():
        if args.wsj0_dir:
            cfg = Wsj0MixConfig(n_src=args.n_src, sample_rate=args.sample_rate, mode=args.mode,
                                write_utterances=not args.no_utterances)
            create_wsj0mix(args.wsj0_dir, args.out, args.lists_dir, cfg,
                           progress=not args.no_progress)
        else:
            wsj0mix_manifests(args.wsj0mix_dir, args.out, n_src=args.n_src,
                              sample_rate=args.sample_rate, mode=args.mode,
                              progress=not args.no_progress)

    return run_build(build, (Wsj0MixError,))


if __name__ == "__main__":
    sys.exit(main())
