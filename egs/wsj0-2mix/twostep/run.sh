#!/usr/bin/env bash
# Two-step sound source separation (Tzinis et al., ICASSP 2020) on wsj0-2mix-style data.
#
#   ./run.sh                                   # embedded real-speech corpus, conf/default.yml (2 CPU cores)
#   ./run.sh --wsj0_dir /data/wsj0 --lists_dir /data/lists --conf conf/paper.yml    # wsj0-2mix from WSJ0
#   ./run.sh --wsj0mix_dir /data/wsj0-mix/2speakers --conf conf/paper.yml          # existing wsj0-2mix
#   ./run.sh --stage 2 --stop_stage 3 --tag mytag                                  # some stages only
#
# Stages: 0 data, 1 step 1 (front end), 2 step 2 (separator), 3 evaluation, 4 Hub packaging.
# Every stage is idempotent (a finished stage is skipped) and logs to exp/<tag>/logs/.
# Multi-GPU / multi-node: --devices 4 [--num_nodes 2] [--strategy ddp]; the effective batch size is
# batch_size x devices x num_nodes. Under SLURM: srun ./run.sh --stage 1 --devices 4 --num_nodes 2.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=4
conf=conf/default.yml
tag=""
corpus=prompts            # prompts (embedded real speech) | wsj0mix
wsj0_dir=""               # WSJ0 root: builds wsj0-2mix from the mixture lists
lists_dir=""              # folder with mix_2_spk_{tr,cv,tt}.txt (for --wsj0_dir)
wsj0mix_dir=""            # an existing wsj0-2mix folder (…/2speakers): manifests only
data_root=data
exp_root=exp
deb_cache="${TWOSTEP_DEB_CACHE:-$HOME/.cache/twostep-asteroid/debs}"  # cached Debian prompt packages
devices=""                # trainer.devices override
num_nodes=""              # trainer.num_nodes override
strategy=""               # trainer.strategy override (e.g. ddp)
precision=""              # trainer.precision override (e.g. bf16-mixed)
overrides=""              # more "section.key=value" overrides, space-separated
hub_repo_id=""            # stage 4: upload to this Hub repo when a token is present (HF_TOKEN)
_recipe_options="stage stop_stage conf tag corpus wsj0_dir lists_dir wsj0mix_dir data_root exp_root deb_cache devices num_nodes strategy precision overrides hub_repo_id"

. utils/parse_options.sh
. ./path.sh

if [ -n "$wsj0_dir" ] || [ -n "$wsj0mix_dir" ]; then corpus=wsj0mix; fi
case "$corpus" in
  prompts) ;;
  wsj0mix)
    if [ -n "$wsj0_dir" ] && [ -n "$wsj0mix_dir" ]; then
      echo "$0: give either --wsj0_dir (create wsj0-mix from WSJ0) or --wsj0mix_dir (an existing wsj0-mix folder), not both" >&2; exit 1
    fi
    if [ -z "$wsj0_dir" ] && [ -z "$wsj0mix_dir" ] && [ "$stage" -le 0 ]; then
      echo "$0: --corpus wsj0mix needs --wsj0mix_dir DIR (an existing wsj0-mix folder) or --wsj0_dir DIR --lists_dir DIR" >&2; exit 1
    fi ;;
  *) echo "$0: unknown --corpus $corpus (prompts or wsj0mix)" >&2; exit 1 ;;
esac
n_src_guess=$(python -m twostep_asteroid.config get data.n_src --conf "$conf")
[ -n "$tag" ] || tag="$(basename "$conf" .yml)_${corpus}"
exp=$exp_root/$tag

all_overrides="$overrides"
if [ -n "$devices" ]; then all_overrides+=" trainer.devices=$devices"; fi
if [ -n "$num_nodes" ]; then all_overrides+=" trainer.num_nodes=$num_nodes"; fi
if [ -n "$strategy" ]; then all_overrides+=" trainer.strategy=$strategy"; fi
if [ -n "$precision" ]; then all_overrides+=" trainer.precision=$precision"; fi
# shellcheck disable=SC2086
# Validated before anything is created: a bad key or type leaves no empty experiment folder behind.
python -m twostep_asteroid.config freeze --conf "$conf" --out "$exp/conf.yml" $all_overrides
mkdir -p "$exp/logs"
# One run per experiment: refuse while another live run holds $exp/.lock; take over a stale one.
python -m twostep_asteroid.explock acquire "$exp" --pid $$ --command "run.sh --tag $tag --stage $stage --stop_stage $stop_stage"
trap 'python -m twostep_asteroid.explock release "$exp" --pid $$ 2>/dev/null' EXIT
cf="$exp/conf.yml"
get() { python -m twostep_asteroid.config get "$1" --conf "$cf"; }

if [ "$corpus" = prompts ]; then data_dir=$data_root/prompts; else data_dir=$data_root/wsj${n_src_guess}mix; fi
json_dir=$data_dir/json

log_stage() { echo "[$(date '+%F %T')] stage $1: $2" | tee -a "$exp/logs/run.log"; }

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log_stage 0 "data preparation ($corpus) -> $data_dir"
  if [ "$corpus" = prompts ]; then
    local/prepare_prompts.sh --out "$data_dir" --deb_cache "$deb_cache" \
      --seed "$(get data.corpus_seed)" --n_src "$(get data.n_src)" --train_speakers "$(get data.train_speakers)" \
      --n_tr "$(get data.n_tr)" --n_cv "$(get data.n_cv)" --n_tt "$(get data.n_tt)" 2>&1 | tee "$exp/logs/stage0_data.log"
  else
    # Pass only the options that were given: --wsj0_dir (with --lists_dir) and --wsj0mix_dir exclude each other.
    src_opts=()
    if [ -n "$wsj0mix_dir" ]; then src_opts+=(--wsj0mix_dir "$wsj0mix_dir"); fi
    if [ -n "$wsj0_dir" ]; then src_opts+=(--wsj0_dir "$wsj0_dir"); fi
    if [ -n "$lists_dir" ]; then src_opts+=(--lists_dir "$lists_dir"); fi
    local/prepare_wsj0mix.sh --out "$data_dir" "${src_opts[@]}" --n_src "$(get data.n_src)" \
      --sample_rate "$(get data.sample_rate)" 2>&1 | tee "$exp/logs/stage0_data.log"
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log_stage 1 "step 1: learning the front end -> $exp/step1"
  python -m twostep_asteroid.train step1 --conf "$cf" --data_dir "$json_dir" --exp_dir "$exp/step1" \
    2>&1 | tee -a "$exp/logs/stage1_step1.log"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log_stage 2 "step 2: training the separator -> $exp/step2"
  python -m twostep_asteroid.train step2 --conf "$cf" --data_dir "$json_dir" --exp_dir "$exp/step2" \
    --front_end "$exp/step1/best.pth" 2>&1 | tee -a "$exp/logs/stage2_step2.log"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  if [ -f "$exp/eval/report.html" ] && [ "$exp/eval/results.json" -nt "$exp/step2/best.pth" ]; then
    log_stage 3 "evaluation already done ($exp/eval/results.json)"
    cat "$exp/eval/results.md"
  else
    unseen=(); unseen_list=""  # unseen-speaker tests of the embedded corpus, reported beside the seen test
    for d in "$json_dir/tt_unseen" "$json_dir/tt_codec2"; do
      if [ -f "$d/mix.json" ]; then unseen+=(--unseen_dir "$d"); unseen_list+=" $(basename "$d")"; fi
    done
    log_stage 3 "evaluation on $json_dir/tt${unseen_list:+ and unseen speakers:$unseen_list} -> $exp/eval"
    python -m twostep_asteroid.evaluate --model "$exp/step2/best.pth" --data_dir "$json_dir/tt" \
      "${unseen[@]}" --out_dir "$exp/eval" --conf "$cf" 2>&1 | tee "$exp/logs/stage3_eval.log"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log_stage 4 "Hub packaging -> $exp/hub"
  set +e
  python -m twostep_asteroid.hub package --model "$exp/step2/best.pth" --results "$exp/eval/results.json" \
    --data_dir "$data_dir" --out_dir "$exp/hub" ${hub_repo_id:+--repo_id "$hub_repo_id"} \
    2>&1 | tee "$exp/logs/stage4_package.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "$0: stage 4 failed (see $exp/logs/stage4_package.log). To retry only it, rerun the same command with --stage 4." >&2
    exit "$rc"
  fi
  if [ -z "$hub_repo_id" ]; then
    echo "To upload the model: rerun the same command with --stage 4 --hub_repo_id <org>/<name> and HF_TOKEN set."
  fi
fi
python -m twostep_asteroid.train budget "$exp" | tee -a "$exp/logs/run.log"
log_stage done "$exp"
[ ! -f "$exp/eval/report.html" ] || echo "Evaluation report (open it in a browser): $(cd "$exp/eval" && pwd)/report.html"
