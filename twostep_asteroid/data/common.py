"""What the two corpus builders (:mod:`.prompts`, :mod:`.wsj0mix`) share: the split names, the
wsj0-mix folder layout, the user-facing error and the command-line error handling.

Nothing here imports torch or the model modules of the package.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, List, Tuple, Type

from ..fileio import DiskFullError

SPLITS = ("tr", "cv", "tt")  # the wsj0-mix splits: training, validation, test

RESUME_HINT = ("The files already written are kept: the rerun resumes the build "
               "(./run.sh --stage 0 --stop_stage 0).")


ENH_TASK = "enh_single"  # the LibriMix/WHAM! task of their mix_single folders: refused


class CorpusError(RuntimeError):
    """A user-facing error of a corpus builder: the message says what to do."""


def enh_task_refused(corpus: str) -> str:
    """Why ``--task enh_single`` (``corpus``'s ``mix_single``: one speaker plus noise) is refused."""
    return (f"task {ENH_TASK} ({corpus}'s mix_single: one speaker plus noise) is speech enhancement, "
            "not separation: the two-step method separates n_src >= 2 sources, and with a single "
            "source its softmax mask over the sources is all ones (the output would be the "
            "mixture). Use task sep_noisy (mix_both: the speakers plus noise) or sep_clean "
            "(mix_clean); the mix_single folders are ignored.")


def wav_dir(sample_rate: int, mode: str) -> str:
    """The wsj0-mix audio folder of a corpus, relative to its root.

    Args:
        sample_rate: in Hz (8000 gives ``wav8k``).
        mode: ``"min"`` or ``"max"``, how the sources were cut to one length.

    Returns:
        ``"wav<k>k/<mode>"``, the layout of MERL's scripts and of ``asteroid.data.Wsj0mixDataset``.
    """
    return f"wav{sample_rate // 1000}k/{mode}"


def src_names(n_src: int) -> List[str]:
    """Names of the source folders and manifests of a corpus: ``["s1", ..., "s<n_src>"]``."""
    return [f"s{i + 1}" for i in range(n_src)]


def builder_parser(module: str, description: str, out_help: str) -> argparse.ArgumentParser:
    """The command-line parser of a corpus builder, with its one required option, ``--out``.

    Args:
        module: the builder's module in this package (``"prompts"``, ``"wsj0mix"``).
        description, out_help: the parser's description and the help of ``--out``.
    """
    p = argparse.ArgumentParser(prog=f"python -m twostep_asteroid.data.{module}",
                                description=description)
    p.add_argument("--out", required=True, help=out_help)
    return p


def add_layout_options(p: argparse.ArgumentParser, defaults, mode: bool = True):
    """``--n_src`` (2 or 3), ``--sample_rate`` (8 or 16 kHz), ``--mode`` (min/max, if ``mode``) and
    ``--no_progress``, with the defaults of the builder's config dataclass ``defaults``."""
    p.add_argument("--n_src", type=int, default=defaults.n_src, choices=[2, 3])
    p.add_argument("--sample_rate", type=int, default=defaults.sample_rate, choices=[8000, 16000])
    if mode:
        p.add_argument("--mode", default=defaults.mode, choices=["min", "max"])
    p.add_argument("--no_progress", action="store_true")


def comma_list(text: str) -> Tuple[str, ...]:
    """``"a, b,"`` -> ``("a", "b")``: a comma-separated command-line list."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def setup_logging(verbose: bool = False):
    """The builders' log format on stderr (INFO, or DEBUG with ``verbose``)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_build(build: Callable[[], object],
              user_errors: Tuple[Type[BaseException], ...] = (CorpusError,)) -> int:
    """Run a builder's command-line action and turn its expected failures into an exit code.

    Args:
        build: the action (builds or writes manifests); its return value is ignored.
        user_errors: exceptions whose message tells the user what to fix.

    Returns:
        0 on success; 2 for a ``user_errors`` (printed as ``error: <message>``); 1 for a full disk,
        printed with how to resume, since the files already written are kept.
    """
    try:
        build()
    except user_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DiskFullError as e:
        print(f"error: {e} {RESUME_HINT}", file=sys.stderr)
        return 1
    return 0
