#!/usr/bin/env bash
# The paper's second claim: the two-step method against the same masker trained end to end.
#
# For each dynamic-mixing setting and seed:
#   two-step   = step 1 (front end), then step 2 on the frozen front end (the conf's step-2 loss);
#   end-to-end = the same masker with a fresh front end, all trained jointly from scratch on waveform
#                SI-SDR with PIT (step2.train_front_end=true step2.latent_weight=0 step2.waveform_weight=1),
#                same step-2 max_steps, same seed.
# Each is evaluated on the test set (python -m twostep_asteroid.evaluate), then one table is built
# (python -m twostep_asteroid.compare runs): runs, mean ± std over seeds, paired differences.
#
#   local/compare_two_step_e2e.sh --seeds "0 1"                                 # conf/default.yml
#   local/compare_two_step_e2e.sh --seeds "0 1 2" --steps 3000 --dynamic_mixing both
#   local/compare_two_step_e2e.sh --conf conf/tiny.yml --tag cmp_e2e_tiny --seeds "0 1" --steps 20
#
# Outputs under exp/<tag>/ (tag compare_two_step_e2e): conf.yml (frozen), dm<true|false>_seed<k>/{step1,
# two_step,end_to_end}/ (each step-2 run with its eval/, eval/report.html included), runs.csv,
# runs_summary.csv, runs.md, runs.png, report.html (tables, plot, links to each run's page); logs in
# exp/<tag>/logs/. Idempotent: finished trainings (`done`) and evaluations are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

conf=conf/default.yml
tag=compare_two_step_e2e
data_dir=data/prompts/json     # folder with tr/ cv/ tt/ manifests
exp_root=exp
seeds="0 1"                    # trainer.seed of each pair of runs
steps=""                       # step-2 max_steps of both systems ("" = the conf's step2.max_steps)
step1_steps=""                 # step-1 max_steps of the two-step front end ("" = the conf's)
dynamic_mixing=true            # true | false | both
max_minutes=null               # wall-clock cap of every training (null: none, so both train the same steps)
num_threads=""                 # torch threads per process ("" = the conf's trainer.num_threads)
overrides=""                   # more "section.key=value" overrides, space-separated (both systems)
_recipe_options="conf tag data_dir exp_root seeds steps step1_steps dynamic_mixing max_minutes num_threads overrides"

. utils/parse_options.sh
. ./path.sh

local/check_manifests.sh "$data_dir"
case "$dynamic_mixing" in
  true|false) dm_values=$dynamic_mixing ;;
  both) dm_values="true false" ;;
  *) echo "$0: --dynamic_mixing must be true, false or both, not '$dynamic_mixing'" >&2; exit 1 ;;
esac
exp=$exp_root/$tag
mkdir -p "$exp/logs"
log() { echo "[$(date '+%F %T')] $*" | tee -a "$exp/logs/compare_two_step_e2e.log"; }

all_overrides="$overrides step1.max_minutes=$max_minutes step2.max_minutes=$max_minutes"
[ -z "$steps" ] || all_overrides+=" step2.max_steps=$steps"
[ -z "$step1_steps" ] || all_overrides+=" step1.max_steps=$step1_steps"
[ -z "$num_threads" ] || all_overrides+=" trainer.num_threads=$num_threads"
# shellcheck disable=SC2086
python -m twostep_asteroid.config freeze --conf "$conf" --out "$exp/conf.yml" $all_overrides
cf=$exp/conf.yml
train() {  # train STEP EXP_DIR LOG_NAME [args...]: skipped when EXP_DIR has its `done` marker
  local step=$1 dir=$2 name=$3; shift 3
  if [ -f "$dir/done" ]; then log "$name: done, skipped ($dir)"; return; fi
  python -m twostep_asteroid.train "$step" --conf "$cf" --data_dir "$data_dir" --exp_dir "$dir" "$@" \
    2>&1 | tee -a "$exp/logs/$name.log"
}

best() { python -m twostep_asteroid.serialization best "$1"; }  # a run's best_model.pth (or an old run's best.pth)

evaluate() {  # evaluate RUN_DIR: test-set metrics into RUN_DIR/eval, unless newer than the model
  if [ -f "$1/eval/report.html" ] && [ "$1/eval/results.json" -nt "$(best "$1")" ]; then
    log "evaluation of $1: done, skipped"
  else
    log "evaluation of $1 on $data_dir/tt"
    python -m twostep_asteroid.evaluate --model "$(best "$1")" --data_dir "$data_dir/tt" --out_dir "$1/eval" \
      --conf "$cf" 2>&1 | tee "$exp/logs/eval_$2.log"
  fi
}

runs=()
for dm in $dm_values; do
  for seed in $seeds; do
    base=$exp/dm${dm}_seed${seed}
    name=dm${dm}_seed${seed}
    common="data.dynamic_mixing=$dm trainer.seed=$seed"
    log "$name: two-step, step 1 -> $base/step1"
    # shellcheck disable=SC2086
    train step1 "$base/step1" "${name}_step1" $common
    log "$name: two-step, step 2 on the frozen front end -> $base/two_step"
    # shellcheck disable=SC2086
    train step2 "$base/two_step" "${name}_two_step" --front_end "$(best "$base/step1")" $common
    evaluate "$base/two_step" "${name}_two_step"
    log "$name: end to end -> $base/end_to_end"
    # shellcheck disable=SC2086
    train step2 "$base/end_to_end" "${name}_end_to_end" $common \
      step2.train_front_end=true step2.latent_weight=0 step2.waveform_weight=1
    evaluate "$base/end_to_end" "${name}_end_to_end"
    runs+=("$base/two_step" "$base/end_to_end")
  done
done

log "runs table -> $exp/runs.{md,csv}"
python -m twostep_asteroid.compare runs "${runs[@]}" --out_dir "$exp" 2>&1 | tee "$exp/logs/runs_table.log"
log "done: $exp (open $exp/report.html in a browser)"
