#!/usr/bin/env bash
# ESC-50 (non-speech): 2-source mixtures of environmental sounds of different classes, from the ESC-50 download.
# Thin wrapper: all logic lives in twostep_asteroid/data/esc50.py.
# Usage: local/prepare_esc50.sh --out DIR --esc50_dir ESC-50-master [--sample_rate 8000] [--segment 4.0]
#        [--n_cv N --n_tt N] [--n_src 2] [--seed 0] [--esc10]
# Folds 1-4 -> tr (mixed on the fly), fold 5 -> cv/tt (fixed mixtures). Idempotent (marker DIR/.done).
set -euo pipefail
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m twostep_asteroid.data.esc50 "$@"
