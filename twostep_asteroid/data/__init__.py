"""Data layer: corpus builders (:mod:`.prompts`, :mod:`.wsj0mix`) and datasets (:mod:`.datasets`).

Importing this package is cheap: torch and asteroid are only imported by :mod:`.datasets`
(asteroid lazily, on first use of :class:`~.datasets.Wsj0mixManifestDataset`). Nothing here
imports the model modules of ``twostep_asteroid``.
"""

__all__ = ["make_dataset", "DynamicMixingDataset", "Wsj0mixManifestDataset", "set_epoch"]


def __getattr__(name):
    if name in __all__:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
