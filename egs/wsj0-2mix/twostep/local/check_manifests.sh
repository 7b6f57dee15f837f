#!/usr/bin/env bash
# Usage: local/check_manifests.sh DATA_DIR
# Fails, saying how to build them, unless DATA_DIR holds the tr/ cv/ tt/ manifests of stage 0.
set -euo pipefail
data_dir=$1
for split in tr cv tt; do
  if [ ! -f "$data_dir/$split/mix.json" ]; then
    echo "no manifests in $data_dir/$split: build the corpus first (./run.sh --stop_stage 0)." >&2
    exit 1
  fi
done
