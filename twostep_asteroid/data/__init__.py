"""Data layer: corpus builders (:mod:`.prompts`, :mod:`.wsj0mix`), manifests for existing LibriMix
and WHAM! folders (:mod:`.librimix`, :mod:`.wham`, their shared checks in :mod:`.manifests`) and
datasets (:mod:`.datasets`).

Modules, by job: :mod:`.common` (what both builders share), :mod:`.audio_io` (reading, writing,
16-bit quantisation), :mod:`.sphere` (NIST SPHERE), :mod:`.mixing` (signal-level helpers),
:mod:`.buildstate` (build identity and resume), :mod:`.voices` (the embedded corpus's speakers and
licences), :mod:`.debian` (fetching and unpacking its packages).

Importing this package is cheap: torch and asteroid are only imported by :mod:`.datasets`, which
the names below load on first use; the corpus builders do not import it. Nothing here imports the
model modules of ``twostep_asteroid``.
"""

__all__ = ["make_dataset", "DynamicMixingDataset", "Wsj0mixManifestDataset", "set_epoch"]


def __getattr__(name):
    if name in __all__:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
