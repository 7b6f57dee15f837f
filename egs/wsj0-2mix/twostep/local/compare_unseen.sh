#!/usr/bin/env bash
# Unseen-speaker generalisation: pseudo-speakers (speed perturbation) off / on on the full voice pool,
# and the 5 voices of before against the full pool, each run as the whole recipe (stages 0-3) with the
# same step budget, per seed; then one table of seen and unseen-speaker SI-SDRi with both oracles.
# pool7 is the 7 voices of before the Dutch actors (corpus version 2's pool); pool52 adds the 43 opt-in
# KDE voices (KLettres, KTuberling) to the default pool of 9.
#
#   local/compare_unseen.sh --seeds "0 1"
#   local/compare_unseen.sh --seeds 0 --arms "aug_off aug_on"
#
# Tags: <arm>_s<seed> under exp_root (aug_off = the default pool without augmentation); pool5, pool7 and
# pool52 build their corpora under ${data_root}_5voices, ${data_root}_7voices and ${data_root}_52voices. Outputs: exp_root/compare_unseen/unseen.{md,csv}. Every run is
# an ordinary ./run.sh, so finished stages are skipped on a rerun. Logic: run.sh, twostep_asteroid.compare.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="0 1"
arms="aug_off aug_on pool5"
conf=conf/default.yml
data_root=data
exp_root=exp
deb_cache="${TWOSTEP_DEB_CACHE:-$HOME/.cache/twostep-asteroid/debs}"
five_voices="[allison,june,carlo,ivrvoiceru,paola]"
seven_voices="[allison,june,carlo,ivrvoiceru,paola,fillets-m,fillets-v]"
kde_voices="klettres-ar,klettres-cs,klettres-da,klettres-de,klettres-en,klettres-en-gb,klettres-es,klettres-fr"
kde_voices+=",klettres-he,klettres-hu,klettres-it,klettres-lt,klettres-ml,klettres-nb,klettres-nds,klettres-nl"
kde_voices+=",klettres-pt-br,klettres-ru,klettres-tn,klettres-uk,ktuberling-ca,ktuberling-da,ktuberling-de"
kde_voices+=",ktuberling-el,ktuberling-en,ktuberling-es,ktuberling-fi,ktuberling-fr,ktuberling-ga,ktuberling-gl"
kde_voices+=",ktuberling-it,ktuberling-lt,ktuberling-nds,ktuberling-nl,ktuberling-nn,ktuberling-pt,ktuberling-ro"
kde_voices+=",ktuberling-ru,ktuberling-sl,ktuberling-sr,ktuberling-sv,ktuberling-uk,ktuberling-wa"
all_voices="[allison,june,carlo,ivrvoiceru,paola,fillets-m,fillets-v,fillets-nl-m,fillets-nl-v,$kde_voices]"
overrides=""                   # more "section.key=value" overrides for every run
_recipe_options="seeds arms conf data_root exp_root deb_cache five_voices seven_voices all_voices overrides"

. utils/parse_options.sh
. ./path.sh

evals=()
for seed in $seeds; do
  for arm in $arms; do
    root=$data_root
    case "$arm" in
      aug_off) extra="data.speed_perturb=0.0" ;;
      aug_on) extra="data.speed_perturb=1.0" ;;
      pool5) extra="data.speed_perturb=0.0 data.train_speakers=$five_voices"; root=${data_root}_5voices ;;
      pool7) extra="data.speed_perturb=0.0 data.train_speakers=$seven_voices"; root=${data_root}_7voices ;;
      pool52) extra="data.speed_perturb=0.0 data.train_speakers=$all_voices"; root=${data_root}_52voices ;;
      *) echo "$0: unknown arm $arm (aug_off, aug_on, pool5, pool7, pool52)" >&2; exit 1 ;;
    esac
    ./run.sh --conf "$conf" --stop_stage 3 --tag "${arm}_s${seed}" --data_root "$root" --exp_root "$exp_root" \
      --deb_cache "$deb_cache" --overrides "$overrides trainer.seed=$seed $extra"
    evals+=("$exp_root/${arm}_s${seed}/eval")
  done
done
python -m twostep_asteroid.compare unseen "${evals[@]}" --out_dir "$exp_root/compare_unseen"
