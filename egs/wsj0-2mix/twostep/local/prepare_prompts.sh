#!/usr/bin/env bash
# Build the embedded real-speech corpus (voice recordings packaged by Debian, 2-speaker, 8 kHz, min).
# Thin wrapper: all logic lives in twostep_asteroid/data/prompts.py.
# Usage: local/prepare_prompts.sh --out DIR [--deb_cache DIR] [--seed 0] [--n_tr N --n_cv N --n_tt N] [--n_src 2]
#        [--train_speakers a,b,...] (tr/cv/tt speakers; default: all not held out for tt_unseen/tt_codec2)
# Idempotent: a finished corpus with the same options is left as is (marker DIR/.done).
set -euo pipefail
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m twostep_asteroid.data.prompts "$@"
