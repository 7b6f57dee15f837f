"""twostep-asteroid: two-step sound source separation (Tzinis et al., ICASSP 2020) for Asteroid.

Importing the package registers :class:`TwoStepFB` with ``asteroid_filterbanks`` and
:class:`TwoStepTDCN` and :class:`TwoStepSeparator` with ``asteroid.models``.
"""
from .filterbanks import TwoStepFB
from .masknn import TDCN
from .models import TwoStepFrontEnd, TwoStepSeparator, TwoStepTDCN

__version__ = "0.1.0"

__all__ = ["TwoStepFB", "TDCN", "TwoStepFrontEnd", "TwoStepSeparator", "TwoStepTDCN"]
