#!/usr/bin/env bash
# Two-step sound source separation (Tzinis et al., ICASSP 2020) on wsj0-2mix-style data.
#
#   ./run.sh                                   # embedded real-speech corpus, conf/default.yml (2 CPU cores)
#   ./run.sh --wsj0_dir /data/wsj0 --lists_dir /data/lists --conf conf/paper.yml    # wsj0-2mix from WSJ0
#   ./run.sh --wsj0mix_dir /data/wsj0-mix/2speakers --conf conf/paper.yml          # existing wsj0-2mix
#   ./run.sh --librimix_dir /data/Libri2Mix [--task sep_noisy] [--train_set both]  # existing LibriMix
#   ./run.sh --wham_dir /data/wham_mix [--task sep_noisy]                          # existing WHAM!
#   ./run.sh --esc50_dir /data/ESC-50-master                                       # non-speech: ESC-50 sound mixtures
#   ./run.sh --audio_dir /data/my_recordings [--held_out spk1,spk2]                # your own recordings, a folder per speaker
#   ./run.sh --stage 2 --stop_stage 3 --tag mytag                                  # some stages only
#   ./run.sh --audio_dir /data/my_recordings --init_from org/name                  # fine-tune a trained model
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
corpus=prompts            # prompts (embedded real speech) | wsj0mix | librimix | wham | esc50 | audio_dir
wsj0_dir=""               # WSJ0 root: builds wsj0-2mix from the mixture lists
lists_dir=""              # folder with mix_2_spk_{tr,cv,tt}.txt (for --wsj0_dir)
wsj0mix_dir=""            # an existing wsj0-2mix folder (…/2speakers): manifests only
librimix_dir=""           # an existing Libri2Mix/Libri3Mix folder (holding wav8k/min/metadata): manifests only
wham_dir=""               # an existing WHAM! folder (wham_mix, holding wav8k/min/tr/...): manifests only
esc50_dir=""              # the ESC-50 download (ESC-50-master: audio/, meta/esc50.csv): builds 2-class sound mixtures
esc10=false               # esc50: true keeps only the ESC-10 subset (10 classes, CC BY 3.0)
audio_dir=""              # your own recordings, one subfolder per speaker (or sound class): builds a corpus
held_out=""               # audio_dir: speaker folders kept for the unseen-speaker test (tt_unseen), comma-separated
task=sep_clean            # librimix, wham: sep_clean (mix_clean) | sep_noisy (mix_both, static mixtures);
                          # enh_single (mix_single, one speaker) is refused: separation needs n_src >= 2
train_set=train-360       # librimix: the training subset(s), train-360 | train-100 | both
mode=min                  # wsj0mix, librimix, wham: the min or max version of the corpus
data_root=data
exp_root=exp
deb_cache="${TWOSTEP_DEB_CACHE:-$HOME/.cache/twostep-asteroid/debs}"  # cached Debian prompt packages
devices=""                # trainer.devices override
num_nodes=""              # trainer.num_nodes override
strategy=""               # trainer.strategy override (e.g. ddp)
precision=""              # trainer.precision override (e.g. bf16-mixed)
overrides=""              # more "section.key=value" overrides, space-separated
hub_repo_id=""            # stage 4: upload to this Hub repo when a token is present (HF_TOKEN)
init_from=""              # fine-tune: start from this trained model (Hub id org/name[@rev], folder or .pth):
                          # the override step2.init_from=MODEL; step 1 then reuses its front end
                          # (step1.init_from_model: skip; finetune: --overrides step1.init_from_model=finetune)
_recipe_options="stage stop_stage conf tag corpus wsj0_dir lists_dir wsj0mix_dir librimix_dir wham_dir esc50_dir esc10 audio_dir held_out task train_set mode data_root exp_root deb_cache devices num_nodes strategy precision overrides hub_repo_id init_from"

. utils/parse_options.sh
. ./path.sh

if [ -n "$wsj0_dir" ] || [ -n "$wsj0mix_dir" ]; then corpus=wsj0mix; fi
if [ -n "$librimix_dir" ]; then corpus=librimix; fi
if [ -n "$wham_dir" ]; then corpus=wham; fi
if [ -n "$esc50_dir" ]; then corpus=esc50; fi
if [ -n "$audio_dir" ]; then corpus=audio_dir; fi
n_given=0
for d in "$wsj0_dir$wsj0mix_dir" "$librimix_dir" "$wham_dir" "$esc50_dir" "$audio_dir"; do [ -z "$d" ] || n_given=$((n_given + 1)); done
if [ "$n_given" -gt 1 ]; then
  echo "$0: give one corpus: --wsj0_dir/--wsj0mix_dir, --librimix_dir, --wham_dir, --esc50_dir or --audio_dir" >&2; exit 1
fi
case "$task" in
  sep_clean) ;;
  sep_noisy)
    if [ "$corpus" != librimix ] && [ "$corpus" != wham ]; then
      echo "$0: --task sep_noisy needs a noisy corpus: --librimix_dir DIR or --wham_dir DIR" >&2; exit 1
    fi ;;
  enh_single)
    echo "$0: --task enh_single (LibriMix's and WHAM!'s mix_single: one speaker plus noise) is enhancement, not" \
      "separation: the two-step method separates n_src >= 2 sources, and with one its softmax mask over the" \
      "sources is all ones (the output would be the mixture). Use --task sep_noisy (mix_both) or sep_clean." >&2; exit 1 ;;
  *) echo "$0: unknown --task $task (sep_clean or sep_noisy; enh_single, mix_single, is refused)" >&2; exit 1 ;;
esac
case "$esc10" in
  true|false) ;;
  *) echo "$0: --esc10 takes true or false, not '$esc10'" >&2; exit 1 ;;
esac
case "$corpus" in
  prompts) ;;
  librimix|wham|esc50)
    dir_var=${corpus}_dir
    if [ -z "${!dir_var}" ] && [ "$stage" -le 0 ]; then
      echo "$0: --corpus $corpus needs --$dir_var DIR (an existing folder)" >&2; exit 1
    fi ;;
  audio_dir)
    if [ -z "$audio_dir" ] && [ "$stage" -le 0 ]; then
      echo "$0: --corpus audio_dir needs --audio_dir DIR (a folder of recordings, one subfolder per speaker)" >&2; exit 1
    fi ;;
  wsj0mix)
    if [ -n "$wsj0_dir" ] && [ -n "$wsj0mix_dir" ]; then
      echo "$0: give either --wsj0_dir (create wsj0-mix from WSJ0) or --wsj0mix_dir (an existing wsj0-mix folder), not both" >&2; exit 1
    fi
    if [ -z "$wsj0_dir" ] && [ -z "$wsj0mix_dir" ] && [ "$stage" -le 0 ]; then
      echo "$0: --corpus wsj0mix needs --wsj0mix_dir DIR (an existing wsj0-mix folder) or --wsj0_dir DIR --lists_dir DIR" >&2; exit 1
    fi ;;
  *) echo "$0: unknown --corpus $corpus (prompts, wsj0mix, librimix, wham, esc50 or audio_dir)" >&2; exit 1 ;;
esac
[ -n "$tag" ] || tag="$(basename "$conf" .yml)_${corpus}"
exp=$exp_root/$tag

all_overrides=""
# Noisy task: train on the corpus's static noisy mixtures (dynamic mixing remixes clean speakers only);
# --overrides data.dynamic_mixing=true still wins.
if [ "$task" = sep_noisy ]; then all_overrides="data.dynamic_mixing=false "; fi
all_overrides+="$overrides"
if [ -n "$devices" ]; then all_overrides+=" trainer.devices=$devices"; fi
if [ -n "$num_nodes" ]; then all_overrides+=" trainer.num_nodes=$num_nodes"; fi
if [ -n "$strategy" ]; then all_overrides+=" trainer.strategy=$strategy"; fi
if [ -n "$precision" ]; then all_overrides+=" trainer.precision=$precision"; fi
if [ -n "$init_from" ]; then
  case "$init_from" in *[[:space:]]*) echo "$0: --init_from must not contain spaces: $init_from" >&2; exit 1 ;; esac
  all_overrides+=" step2.init_from=$init_from"
fi
# shellcheck disable=SC2086
if [ -n "$(python -m twostep_asteroid.config get step2.init_from $all_overrides --conf "$conf")" ]; then
  # Fine-tuning: the model must fit the configuration (n_src, rate, front end, masker), checked before
  # the experiment folder is created.
  python -m twostep_asteroid.train check_init --conf "$conf" $all_overrides
fi
# shellcheck disable=SC2086
# Validated before anything is created: a bad key or type leaves no empty experiment folder behind.
python -m twostep_asteroid.config freeze --conf "$conf" --out "$exp/conf.yml" $all_overrides
mkdir -p "$exp/logs"
# One run per experiment: refuse while another live run holds $exp/.lock; take over a stale one.
python -m twostep_asteroid.explock acquire "$exp" --pid $$ --command "run.sh --tag $tag --stage $stage --stop_stage $stop_stage"
trap 'python -m twostep_asteroid.explock release "$exp" --pid $$ 2>/dev/null' EXIT
cf="$exp/conf.yml"
get() { python -m twostep_asteroid.config get "$1" --conf "$cf"; }
best() { python -m twostep_asteroid.serialization best "$1"; }  # a run's best_model.pth (or an old run's best.pth)

n_src=$(get data.n_src)
rate=$(get data.sample_rate)
# One corpus folder per option set, named by the options that are not the defaults (the defaults keep
# the plain name): data/prompts_3spk, data/librimix_sep_noisy_both, data/wham_sep_noisy, data/esc10, ...
# Each pair is "value default".
not_default() { while [ $# -ge 2 ]; do [ "$1" = "$2" ] || printf '_%s' "$1"; shift 2; done; }
khz="$((rate / 1000))k"
case "$corpus" in
  prompts) data_dir=$data_root/prompts$(not_default "${n_src}spk" 2spk) ;;
  wsj0mix) data_dir=$data_root/wsj${n_src}mix$(not_default "$mode" min "$khz" 8k) ;;
  librimix) data_dir=$data_root/librimix$(not_default "$task" sep_clean "$train_set" train-360 "$mode" min \
              "${n_src}spk" 2spk "$khz" 8k) ;;
  wham) data_dir=$data_root/wham$(not_default "$task" sep_clean "$mode" min "$khz" 8k) ;;
  esc50) data_dir=$data_root/esc$([ "$esc10" = true ] && echo 10 || echo 50)$(not_default "${n_src}spk" 2spk "$khz" 8k) ;;
  audio_dir) data_dir=$data_root/audio_dir ;;  # rebuilt when the folder or --held_out changes
esac
json_dir=$data_dir/json

log_stage() { echo "[$(date '+%F %T')] stage $1: $2" | tee -a "$exp/logs/run.log"; }

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log_stage 0 "data preparation ($corpus) -> $data_dir"
  if [ "$corpus" = prompts ]; then
    local/prepare_prompts.sh --out "$data_dir" --deb_cache "$deb_cache" \
      --seed "$(get data.corpus_seed)" --n_src "$n_src" --train_speakers "$(get data.train_speakers)" \
      --n_tr "$(get data.n_tr)" --n_cv "$(get data.n_cv)" --n_tt "$(get data.n_tt)" 2>&1 | tee "$exp/logs/stage0_data.log"
  elif [ "$corpus" = librimix ]; then
    local/prepare_librimix.sh --out "$data_dir" --librimix_dir "$librimix_dir" --task "$task" --train_set "$train_set" \
      --n_src "$n_src" --sample_rate "$rate" --mode "$mode" 2>&1 | tee "$exp/logs/stage0_data.log"
  elif [ "$corpus" = wham ]; then
    local/prepare_wham.sh --out "$data_dir" --wham_dir "$wham_dir" --task "$task" \
      --n_src "$n_src" --sample_rate "$rate" --mode "$mode" 2>&1 | tee "$exp/logs/stage0_data.log"
  elif [ "$corpus" = esc50 ]; then
    esc10_opt=(); [ "$esc10" = false ] || esc10_opt=(--esc10)
    local/prepare_esc50.sh --out "$data_dir" --esc50_dir "$esc50_dir" --n_src "$n_src" "${esc10_opt[@]}" \
      --sample_rate "$rate" --seed "$(get data.corpus_seed)" --n_cv "$(get data.n_cv)" \
      --n_tt "$(get data.n_tt)" 2>&1 | tee "$exp/logs/stage0_data.log"
  elif [ "$corpus" = audio_dir ]; then
    local/prepare_audio_dir.sh --out "$data_dir" --audio_dir "$audio_dir" --held_out "$held_out" \
      --seed "$(get data.corpus_seed)" --n_src "$n_src" --sample_rate "$rate" \
      --n_tr "$(get data.n_tr)" --n_cv "$(get data.n_cv)" --n_tt "$(get data.n_tt)" 2>&1 | tee "$exp/logs/stage0_data.log"
  else
    # Pass only the options that were given: --wsj0_dir (with --lists_dir) and --wsj0mix_dir exclude each other.
    src_opts=()
    if [ -n "$wsj0mix_dir" ]; then src_opts+=(--wsj0mix_dir "$wsj0mix_dir"); fi
    if [ -n "$wsj0_dir" ]; then src_opts+=(--wsj0_dir "$wsj0_dir"); fi
    if [ -n "$lists_dir" ]; then src_opts+=(--lists_dir "$lists_dir"); fi
    local/prepare_wsj0mix.sh --out "$data_dir" "${src_opts[@]}" --n_src "$n_src" \
      --sample_rate "$rate" --mode "$mode" 2>&1 | tee "$exp/logs/stage0_data.log"
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
    --front_end "$(best "$exp/step1")" 2>&1 | tee -a "$exp/logs/stage2_step2.log"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  if [ -f "$exp/eval/report.html" ] && [ "$exp/eval/results.json" -nt "$(best "$exp/step2")" ]; then
    log_stage 3 "evaluation already done ($exp/eval/results.json)"
    cat "$exp/eval/results.md"
  else
    unseen=(); unseen_list=""  # unseen-speaker tests of the embedded corpus, reported beside the seen test
    for d in "$json_dir/tt_unseen" "$json_dir/tt_codec2"; do
      if [ -f "$d/mix.json" ]; then unseen+=(--unseen_dir "$d"); unseen_list+=" $(basename "$d")"; fi
    done
    log_stage 3 "evaluation on $json_dir/tt${unseen_list:+ and unseen speakers:$unseen_list} -> $exp/eval"
    python -m twostep_asteroid.evaluate --model "$(best "$exp/step2")" --data_dir "$json_dir/tt" \
      "${unseen[@]}" --out_dir "$exp/eval" --conf "$cf" 2>&1 | tee "$exp/logs/stage3_eval.log"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log_stage 4 "Hub packaging -> $exp/hub"
  set +e
  python -m twostep_asteroid.hub package --model "$(best "$exp/step2")" --results "$exp/eval/results.json" \
    --data_dir "$data_dir" --conf "$cf" --out_dir "$exp/hub" ${hub_repo_id:+--repo_id "$hub_repo_id"} \
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
