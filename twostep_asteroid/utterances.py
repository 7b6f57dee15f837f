"""Walking a test set one utterance at a time: what evaluation and the front-end comparison share.

A test set is any map-style dataset of ``(mixture [time], sources [n_src, time])`` pairs (the
recipe's :func:`~twostep_asteroid.data.datasets.make_dataset` with ``segment=None``, or the
synthetic sets of the tests). Each utterance is scored whole, as a batch of one, so that no
padding enters the metrics.
"""
from pathlib import Path


def count_utterances(dataset, max_items=None):
    """How many utterances :func:`iter_utterances` yields: ``len(dataset)``, at most ``max_items``."""
    return len(dataset) if max_items is None else min(len(dataset), max_items)


def iter_utterances(dataset, max_items=None):
    """The first ``max_items`` (default: all) utterances of ``dataset``, as batches of one.

    Args:
        dataset: Map-style dataset of ``(mixture [time], sources [n_src, time])``.
        max_items (int, optional): Stop after this many.

    Yields:
        tuple: ``(index, mixture [1, time], sources [1, n_src, time])``.
    """
    for idx in range(count_utterances(dataset, max_items)):
        mix, sources = dataset[idx]
        yield idx, mix.unsqueeze(0), sources.unsqueeze(0)


def utterance_id(dataset, idx):
    """Name of utterance ``idx``: its mixture file's stem when the dataset lists files (``mix``
    manifest entries ``[path, length]``), else ``utt00012``."""
    mix = getattr(dataset, "mix", None)
    return Path(mix[idx][0]).stem if mix is not None else f"utt{idx:05d}"
