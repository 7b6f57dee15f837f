#!/usr/bin/env bash
# Causal vs non-causal step 2 at the same training budget on the embedded corpus (bench/README.md,
# "Streaming"). Needs a step-1 front end and the corpus from:
#   cd egs/wsj0-2mix/twostep && ./run.sh --stop_stage 1 --tag stream_fe --devices 1 --strategy auto \
#       --overrides "step1.max_minutes=5.0 data.num_workers=0"
# Both runs: 1 process, 1 thread, the same steps, cosine schedule, minutes cap and test subset; they run
# side by side (one core each) so that machine load affects them alike.
# Usage: bench/causal_vs_noncausal.sh [max_steps] [max_minutes] [test utterances]
set -euo pipefail
cd "$(dirname "$0")/../egs/wsj0-2mix/twostep"
. ./path.sh
steps=${1:-1500}; minutes=${2:-8.0}; n_test=${3:-100}
exp=exp/stream_fe; data=data/prompts/json
common="trainer.devices=1 trainer.strategy=auto trainer.num_threads=1 trainer.compile=false data.num_workers=0
  step2.max_steps=$steps step2.max_minutes=$minutes step2.val_every_n_steps=$steps step2.limit_val_batches=20
  step2.ckpt_every_n_steps=$steps eval.metrics=[si_sdr] eval.n_examples=0 eval.max_utterances=$n_test eval.num_workers=1"
for name in default causal; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 python -m twostep_asteroid.train step2 --conf conf/$name.yml --data_dir $data \
    --exp_dir $exp/cmp_$name/step2 --front_end "$(python -m twostep_asteroid.serialization best $exp/step1)" $common > $exp/cmp_$name.train.log 2>&1 &
done
wait
for name in default causal; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 python -m twostep_asteroid.evaluate --model "$(python -m twostep_asteroid.serialization best $exp/cmp_$name/step2)" \
    --data_dir $data/tt --out_dir $exp/cmp_$name/eval --conf conf/$name.yml $common > $exp/cmp_$name.eval.log 2>&1
  echo "== $name"; cat $exp/cmp_$name/eval/results.md
done
