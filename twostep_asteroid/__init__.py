"""twostep-asteroid: two-step sound source separation (Tzinis et al., ICASSP 2020) for Asteroid.

Importing the package registers :class:`TwoStepFB` with ``asteroid_filterbanks`` and
:class:`TwoStepTDCN` and :class:`TwoStepSeparator` with ``asteroid.models``.

With ``TWOSTEP_ASTEROID_LIGHT_IMPORT=1`` (set by the recipe's ``path.sh``) the package imports
nothing up front, so that the recipe's bookkeeping commands (``config``, ``explock``, the corpus
builders) start without loading torch and asteroid; each class is then imported, and registered,
on first use (``from twostep_asteroid import TwoStepTDCN``, or importing its module).
"""
import importlib
import os

__version__ = "0.1.0"

_HOMES = {"TwoStepFB": "filterbanks", "TDCN": "masknn", "TwoStepFrontEnd": "models",
          "TwoStepSeparator": "models", "TwoStepTDCN": "models"}
__all__ = list(_HOMES)

LIGHT_IMPORT_ENV = "TWOSTEP_ASTEROID_LIGHT_IMPORT"


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if os.environ.get(LIGHT_IMPORT_ENV) != "1":
    from .filterbanks import TwoStepFB  # noqa: E402,F401  (importing registers with asteroid)
    from .masknn import TDCN  # noqa: E402,F401
    from .models import TwoStepFrontEnd, TwoStepSeparator, TwoStepTDCN  # noqa: E402,F401
