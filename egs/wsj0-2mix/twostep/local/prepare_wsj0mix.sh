#!/usr/bin/env bash
# wsj0-2mix/3mix: create it from WSJ0, or write manifests for an existing wsj0-mix folder.
# Thin wrapper: all logic lives in twostep_asteroid/data/wsj0mix.py.
# Usage: local/prepare_wsj0mix.sh --out DIR --wsj0_dir WSJ0 [--lists_dir L] [--n_src 2] [--sample_rate 8000] [--mode min]
#        local/prepare_wsj0mix.sh --out DIR --wsj0mix_dir WSJ0_2MIX [--n_src 2]
set -euo pipefail
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m twostep_asteroid.data.wsj0mix "$@"
