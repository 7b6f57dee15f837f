#!/usr/bin/env bash
# The paper's first claim: oracle SI-SDRi of learned front ends (step 1, a grid of N and L, stride
# L/2) against STFT masks (several window sizes, hop window/2), on the same test mixtures, each with
# the oracle masks irm / softmax (the paper's latent mask) / binary.
#
#   local/compare_frontends.sh                                        # embedded corpus, conf/default.yml
#   local/compare_frontends.sh --Ns "64 128 256" --Ls "16 32" --steps 2000
#   local/compare_frontends.sh --conf conf/tiny.yml --tag compare_frontends_tiny --Ns 32 --Ls 16 --steps 20
#   local/compare_frontends.sh --data_dir data/wsj2mix/json --conf conf/paper.yml    # wsj0-2mix (run.sh stage 0)
#
# Outputs under exp/<tag>/ (tag compare_frontends): conf.yml (frozen), N<N>_L<L>/ (step-1 runs),
# frontends.csv, frontends_per_utterance.csv, frontends.md, frontends.png, report.html (the page with
# them); logs in exp/<tag>/logs/.
# Idempotent: a step-1 run with its `done` marker is skipped, and the comparison is not redone when
# its options and inputs are unchanged. Logic lives in twostep_asteroid.train and .compare.
set -euo pipefail
cd "$(dirname "$0")/.."

conf=conf/default.yml
tag=compare_frontends
data_dir=data/prompts/json     # folder with tr/ cv/ tt/ manifests
exp_root=exp
Ns="64 128 256"                # numbers of bases N
Ls="16 32"                     # filter lengths L (stride L/2)
steps=2000                     # step-1 training steps of each front end
max_minutes=null               # wall-clock cap of each step-1 run (null: none, all train $steps steps)
windows="16 32 64 128 256 512" # STFT window sizes (samples)
hop_divisor=2                  # STFT hop = window / hop_divisor
masks="irm softmax binary"     # oracle masks scored for every front end
max_utterances=""              # score only the first test mixtures ("" = all)
num_threads=""                 # torch threads per process ("" = the conf's trainer.num_threads)
overrides=""                   # more "section.key=value" overrides, space-separated
_recipe_options="conf tag data_dir exp_root Ns Ls steps max_minutes windows hop_divisor masks max_utterances num_threads overrides"

. utils/parse_options.sh
. ./path.sh

local/check_manifests.sh "$data_dir"
exp=$exp_root/$tag
mkdir -p "$exp/logs"
log() { echo "[$(date '+%F %T')] $*" | tee -a "$exp/logs/compare_frontends.log"; }

all_overrides="$overrides step1.max_steps=$steps step1.max_minutes=$max_minutes"
[ -z "$num_threads" ] || all_overrides+=" trainer.num_threads=$num_threads"
# Validate at least once within the run, so that the best checkpoint is a validated one.
# shellcheck disable=SC2086
val_every=$(python -m twostep_asteroid.config get step1.val_every_n_steps $all_overrides --conf "$conf")
[ "$steps" -ge "$val_every" ] || all_overrides+=" step1.val_every_n_steps=$steps"
# shellcheck disable=SC2086
python -m twostep_asteroid.config freeze --conf "$conf" --out "$exp/conf.yml" $all_overrides
cf=$exp/conf.yml

front_ends=()
for N in $Ns; do
  for L in $Ls; do
    run=$exp/N${N}_L${L}
    front_ends+=("$(python -m twostep_asteroid.serialization best "$run")")
    if [ -f "$run/done" ]; then
      log "step 1 N=$N L=$L: done, skipped ($run)"
      continue
    fi
    log "step 1 N=$N L=$L stride=$((L / 2)), $steps steps -> $run"
    python -m twostep_asteroid.train step1 --conf "$cf" --data_dir "$data_dir" --exp_dir "$run" \
      front_end.n_filters="$N" front_end.kernel_size="$L" front_end.stride=$((L / 2)) \
      2>&1 | tee -a "$exp/logs/step1_N${N}_L${L}.log"
  done
done

# shellcheck disable=SC2206
cmd=(python -m twostep_asteroid.compare frontends --data_dir "$data_dir/tt" --out_dir "$exp"
     --front_ends "${front_ends[@]}" --windows $windows --hop_divisor "$hop_divisor" --masks $masks
     --sample_rate "$(python -m twostep_asteroid.config get data.sample_rate --conf "$cf")"
     --n_src "$(python -m twostep_asteroid.config get data.n_src --conf "$cf")")
[ -z "$max_utterances" ] || cmd+=(--max_utterances "$max_utterances")
[ -z "$num_threads" ] || cmd+=(--num_threads "$num_threads")
marker=$exp/frontends.done
if [ -f "$marker" ] && [ -f "$exp/report.html" ] && [ "$(cat "$marker")" = "${cmd[*]}" ] \
   && [ -z "$(find "${front_ends[@]}" -newer "$marker")" ]; then
  log "comparison: done, skipped ($exp/frontends.md)"
  cat "$exp/frontends.md"
else
  rm -f "$marker"
  log "comparison on $data_dir/tt -> $exp/frontends.{csv,md,png}"
  "${cmd[@]}" 2>&1 | tee "$exp/logs/compare.log"
  printf '%s' "${cmd[*]}" > "$marker"
fi
log "done: $exp (open $exp/report.html in a browser)"
