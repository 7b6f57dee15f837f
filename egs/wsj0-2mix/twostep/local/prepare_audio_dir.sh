#!/usr/bin/env bash
# Build a corpus from your own recordings: a folder with one subfolder per speaker (or sound class),
# any format and rate soundfile reads (resampled, downmixed to mono).
# Thin wrapper: all logic lives in twostep_asteroid/data/audio_dir.py.
# Usage: local/prepare_audio_dir.sh --audio_dir DIR --out OUT [--seed 0] [--n_tr N --n_cv N --n_tt N] [--n_src 2]
#        [--sample_rate 8000] [--held_out spk1,spk2] (speaker folders kept for the unseen-speaker test tt_unseen)
# Idempotent: a finished corpus with the same options and recordings is left as is (marker OUT/.done).
set -euo pipefail
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m twostep_asteroid.data.audio_dir "$@"
