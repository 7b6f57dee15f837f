#!/usr/bin/env bash
# WHAM!: write validated manifests for an existing wham_mix folder (the noise download is broken upstream, so
# only an existing folder is supported). Thin wrapper: all logic lives in twostep_asteroid/data/wham.py.
# Usage: local/prepare_wham.sh --out DIR --wham_dir WHAM_MIX [--task sep_clean|sep_noisy] [--sample_rate 8000] [--mode min]
# Idempotent: manifests of the same folder and options are left as they are (marker DIR/.done).
set -euo pipefail
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m twostep_asteroid.data.wham "$@"
