#!/usr/bin/env bash
# The evidence on the icon corpus (docs/results.md, "The icon corpus"): HALO, InfoNCE and SigLIP
# trained with the small preset (configs/small.yaml) for the same number of steps, each seed:
#   - in-style retrieval on the held-out sets (val split), R@1 and R@5 both ways;
#   - zero-shot classification on the held-out emoji pool (19 classes) and on the Google and
#     Twitter emoji art (10 classes);
#   - eval --ood: the emoji pool against MNIST, Fashion-MNIST and Tux Paint;
#   - mismatch detection on pairs never trained on: the val split with 30% of its captions swapped.
# Every result is appended to OUT/results.tsv as soon as it exists; a rerun skips what is done
# and resumes a killed training (--resume auto). The table (mean +- sample sd over the seeds, a
# column per loss): scripts/icon_evidence.sh --table. The small evaluation sets (emoji art,
# MNIST, Fashion-MNIST, Tux Paint) are fetched and prepared when missing; the corpus is not
# (README: prepare iconify).
#
# Environment (defaults in brackets): OUT [runs/icons]  SEEDS ["0 1"]  LOSSES ["halo infonce siglip"]
#   STEPS [600] training steps of every arm (batch 256)  CURVE_EVERY [200] validation steps
#   CORPUS [data/prepared/iconify-64] the output of `prepare iconify` (64 px)
#   EXTRA [empty] more --set flags for every training (e.g. "--set loss.sink_partner_drop=0.3"
#     with LOSSES=halo and another OUT: a variant measured the same way)
#   HALO_CLIP [build/halo-clip]  LOCK [empty] a file each training and evaluation holds (flock)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-runs/icons}
SEEDS=${SEEDS:-0 1}
LOSSES=${LOSSES:-halo infonce siglip}
STEPS=${STEPS:-600}
CURVE_EVERY=${CURVE_EVERY:-200}
source scripts/icon_common.sh  # CORPUS, H, P, locked
RESULTS=$OUT/results.tsv

if [[ "${1:-}" == "--table" ]]; then
  # A Markdown table: a row per metric (in the order first recorded), a column per loss, each
  # cell the mean +- sample standard deviation over the seeds (n: the seeds measured).
  awk -F'\t' '
    { k = $4 "\t" $2; s[k] += $5; q[k] += $5 * $5; n[k]++
      if (!($4 in seen_m)) { seen_m[$4] = 1; metrics[++nm] = $4 }
      if (!($2 in seen_l)) { seen_l[$2] = 1; losses[++nl] = $2 } }
    END {
      printf "| metric |"; for (j = 1; j <= nl; j++) printf " %s |", losses[j]; printf "\n| --- |"
      for (j = 1; j <= nl; j++) printf " --- |"; printf "\n"
      for (i = 1; i <= nm; i++) {
        printf "| %s |", metrics[i]
        for (j = 1; j <= nl; j++) {
          k = metrics[i] "\t" losses[j]
          if (!(k in n)) { printf " - |"; continue }
          mu = s[k] / n[k]; v = n[k] > 1 ? (q[k] - n[k] * mu * mu) / (n[k] - 1) : 0
          printf " %.3f +- %.3f (%d) |", mu, sqrt(v < 0 ? 0 : v), n[k]
        }
        printf "\n"
      }
    }' "$RESULTS"
  exit 0
fi

[[ -f $CORPUS/prepared.json ]] ||
  { echo "icon_evidence: $CORPUS/prepared.json is missing (README: fetch and prepare the icon corpus)" >&2; exit 2; }
prepare() {  # prepare SET OUT_FOLDER FLAGS...: once (skipped when the manifest exists)
  local set=$1 out=$2
  shift 2
  [[ -f "$out/manifest.tsv" ]] || locked "$H" prepare "$set" --out "$out" "$@" > /dev/null
}
scripts/fetch_data.sh --only emoji,mnist,fashion-mnist,tuxpaint > /dev/null
prepare emoji $P/emoji-google --source data/raw/emoji-google --style google
prepare emoji $P/emoji-twitter --source data/raw/emoji-twitter --style twitter
prepare mnist $P/mnist-test --source data/raw/mnist --split test
prepare fashion-mnist $P/fashion-mnist-test --source data/raw/fashion-mnist --split test
prepare tuxpaint $P/tuxpaint --source data/raw/tuxpaint
extra=()
read -r -a extra <<< "${EXTRA:-}"
TRAIN="$CORPUS/train/{00000..00038}.tar"
VAL="$CORPUS/val/{00000..00002}.tar"
EMOJI="$CORPUS/emoji/{00000..00002}.tar"
mkdir -p "$OUT/data"
VAL_MM="$OUT/data/val-mm30"
[[ -f $VAL_MM/sizes.json ]] ||
  locked "$H" prepare noise --manifest "$VAL" --out "$VAL_MM" --fraction 0.3 --seed 0 --overwrite > /dev/null
VAL_MM="$VAL_MM/{00000..00002}.tar"

record() {  # record ARM SEED LOSS METRIC VALUE: one line of results.tsv
  printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"
}
done_before() { [[ -f $RESULTS ]] && grep -q "^$1	$2	" "$RESULTS"; }

tokenizer=()
start=$(date +%s)
for seed in $SEEDS; do
  for loss in $LOSSES; do
    arm=$loss-seed$seed
    run=$OUT/$arm
    done_before "$loss" "$seed" && { [[ -f $OUT/tokenizer.model ]] && tokenizer=(--set "tokenizer.model=$OUT/tokenizer.model"); continue; }
    echo "==== $arm ($(date +%H:%M:%S))"
    if [[ ! -f $run/checkpoints/final.pt ]]; then
      locked "$H" train --config configs/small.yaml --resume auto --set "train.run_dir=$run" \
        --set "loss.name=$loss" --set "train.seed=$seed" --set "data.train_manifest=$TRAIN" \
        --set "train.max_steps=$STEPS" --set "train.eval_manifest=$CORPUS/val/00000.tar" \
        --set "train.eval_every=$CURVE_EVERY" --set train.pair_dynamics=false "${tokenizer[@]}" "${extra[@]}" \
        | grep --line-buffered -E "finished|error|validation"
    fi
    [[ -f $OUT/tokenizer.model ]] || cp "$run/tokenizer.model" "$OUT/tokenizer.model"
    tokenizer=(--set "tokenizer.model=$OUT/tokenizer.model")
    ev() { locked "$H" eval --checkpoint "$run" "$@" > /dev/null; }
    [[ -f $run/eval-val/results.txt ]] || ev --manifest "$VAL" --out "$run/eval-val"
    [[ -f $run/eval-emoji/results.txt ]] || ev --manifest "$EMOJI" --out "$run/eval-emoji" \
      --ood mnist=$P/mnist-test/manifest.tsv --ood fashion-mnist=$P/fashion-mnist-test/manifest.tsv \
      --ood tuxpaint=$P/tuxpaint/manifest.tsv
    for art in google twitter; do
      [[ -f $run/eval-$art/results.txt ]] || ev --manifest $P/emoji-$art/manifest.tsv --out "$run/eval-$art"
    done
    [[ -f $run/eval-val-mm30/results.txt ]] || ev --manifest "$VAL_MM" --out "$run/eval-val-mm30"
    {
      awk -v a="$loss" -v s="$seed" '/^image -> text/ { print "i2t R@1", $4; print "i2t R@5", $5 }
        /^text -> image/ { print "t2i R@1", $4; print "t2i R@5", $5 }' "$run/eval-val/results.txt"
      for set in emoji google twitter; do
        awk -v set="$set" '/^zero-shot classification/ { for (i = 1; i <= NF; i++) if ($i == "top-1") { v = $(i+1); sub(/,$/, "", v); print "zero-shot top-1 " set, v } }' \
          "$run/eval-$set/results.txt"
      done
      awk '$1 ~ /^(mnist|fashion-mnist|tuxpaint)$/ && NF == 5 { print "ood AUROC " $1 " " $2, $4 }' "$run/eval-emoji/results.txt"
      awk 'NF == 5 && $1 ~ /^(abstain|infonce|siglip|cosine|in-context)$/ { print "mismatch AUROC " $1, $2 }' "$run/eval-val-mm30/results.txt"
    } | while read -r line; do
      record "$arm" "$loss" "$seed" "${line% *}" "${line##* }"
    done
    echo "     done in $(( $(date +%s) - start )) s since the start"
  done
done
echo "all arms: $(( $(date +%s) - start )) s; the table: OUT=$OUT scripts/icon_evidence.sh --table"
