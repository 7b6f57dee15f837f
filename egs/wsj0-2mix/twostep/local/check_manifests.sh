#!/usr/bin/env bash
# Usage: local/check_manifests.sh DATA_DIR
# Fails, saying how to build them, unless DATA_DIR holds the tr/ cv/ tt/ manifests of stage 0. The
# training split may be an utterance pool only (tr/utterances.json: mixed on the fly, as ESC-50's is).
set -euo pipefail
data_dir=$1
for split in tr cv tt; do
  if [ -f "$data_dir/$split/mix.json" ] || { [ "$split" = tr ] && [ -f "$data_dir/$split/utterances.json" ]; }; then
    continue
  fi
  echo "no manifests in $data_dir/$split: build the corpus first (./run.sh --stop_stage 0)." >&2
  exit 1
done
