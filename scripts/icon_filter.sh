#!/usr/bin/env bash
# Filtering that pays off on the icon corpus (docs/results.md, "Filtering the icon pool"), as
# DataComp measures it: swap 30% of the captions of a sub-pool (prepare noise on shards), score
# every pair by each method, keep the same share by each score, retrain HALO on each kept set
# with the same budget, and compare held-out retrieval and zero-shot against the noisy sub-pool
# and the clean one (the oracle). Every arm is the small preset cut to STEPS steps.
#   scores: HALO's abstention (a HALO model trained on the noisy pool), the cosine of an InfoNCE
#   model trained on it (the CLIP score), HALO's in-context score with a bank of BANK pairs,
#   pair dynamics (the abstention averaged over the HALO run, own_mean), and 2-fold
#   cross-scoring (two HALO models on half the shards each, STEPS/2 steps each).
# Every result is appended to OUT/results.tsv as soon as it exists; a rerun skips what is done
# and resumes a killed training. The table: scripts/icon_filter.sh --table.
#
# Environment (defaults in brackets): OUT [runs/icon-filter]  SHARDS [10] training shards in the
#   sub-pool (10,000 pairs each)  NOISE [0.3]  KEEP [0.7]  STEPS [600]  BANK [16384]  SEED [0]
#   CORPUS [data/prepared/iconify-64]  TOKENIZER [empty: trained by the first run] a SentencePiece
#   model to share  HALO_CLIP [build/halo-clip]  LOCK [empty] a file each command holds (flock)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-runs/icon-filter}
SHARDS=${SHARDS:-10}
NOISE=${NOISE:-0.3}
KEEP=${KEEP:-0.7}
STEPS=${STEPS:-600}
BANK=${BANK:-16384}
SEED=${SEED:-0}
source scripts/icon_common.sh  # CORPUS, H, P, locked
RESULTS=$OUT/results.tsv

if [[ "${1:-}" == "--table" ]]; then
  awk -F'\t' '{ v[$1 "\t" $2] = $3; if (!($1 in a)) { a[$1] = 1; arms[++n] = $1 } if (!($2 in m)) { m[$2] = 1; metrics[++k] = $2 } }
    END {
      printf "%-22s", "arm"; for (j = 1; j <= k; j++) printf " | %s", metrics[j]; printf "\n"
      for (i = 1; i <= n; i++) {
        printf "%-22s", arms[i]
        for (j = 1; j <= k; j++) { x = arms[i] "\t" metrics[j]; printf " | %s", (x in v) ? v[x] : "-" }
        printf "\n"
      }
    }' "$RESULTS"
  exit 0
fi

for f in "$CORPUS/prepared.json" $P/emoji-google/manifest.tsv $P/emoji-twitter/manifest.tsv; do
  [[ -f $f ]] || { echo "icon_filter: $f is missing (scripts/fetch_data.sh, then prepare; README)" >&2; exit 2; }
done
last=$(printf '%05d' $((SHARDS - 1)))
CLEAN="$CORPUS/train/{00000..$last}.tar"
mkdir -p "$OUT/data"
[[ -f $OUT/data/noisy/sizes.json ]] ||
  locked "$H" prepare noise --manifest "$CLEAN" --out "$OUT/data/noisy" --fraction "$NOISE" --seed "$SEED" --overwrite > /dev/null
NOISY="$OUT/data/noisy/{00000..$last}.tar"
tokenizer=()
[[ -n ${TOKENIZER:-} ]] && tokenizer=(--set "tokenizer.model=$TOKENIZER")
start=$(date +%s)

record() { printf '%s\t%s\t%s\n' "$@" >> "$RESULTS"; }
recorded() { [[ -f $RESULTS ]] && grep -q "^$1	$2	" "$RESULTS"; }

train() {  # train RUN DATA STEPS [--set ...]: the small preset, resumable
  local run=$1 data=$2 steps=$3
  shift 3
  [[ -f $run/checkpoints/final.pt ]] && return 0
  echo "==== train $run ($(date +%H:%M:%S), $(( $(date +%s) - start )) s)"
  mkdir -p "$run"
  locked /usr/bin/time -v -o "$run/time.txt" "$H" train --config configs/small.yaml --resume auto --set "train.run_dir=$run" \
    --set "data.train_manifest=$data" --set "train.max_steps=$steps" --set "train.seed=$SEED" \
    --set train.eval_manifest= "${tokenizer[@]}" "$@" | grep --line-buffered -E "finished|error"
  if [[ ${#tokenizer[@]} -eq 0 ]]; then tokenizer=(--set "tokenizer.model=$run/tokenizer.model"); fi
}

evaluate() {  # evaluate ARM RUN: held-out retrieval and zero-shot, recorded
  local arm=$1 run=$2
  recorded "$arm" "val i2t R@1 (%)" && return 0  # the last line recorded: the arm is done
  [[ -f $run/eval-val/results.txt ]] ||
    locked "$H" eval --checkpoint "$run" --manifest "$CORPUS/val/{00000..00002}.tar" --out "$run/eval-val" > /dev/null
  [[ -f $run/eval-emoji/results.txt ]] ||
    locked "$H" eval --checkpoint "$run" --manifest "$CORPUS/emoji/{00000..00002}.tar" --out "$run/eval-emoji" > /dev/null
  for art in google twitter; do
    [[ -f $run/eval-$art/results.txt ]] ||
      locked "$H" eval --checkpoint "$run" --manifest $P/emoji-$art/manifest.tsv --out "$run/eval-$art" > /dev/null
  done
  # Zero-shot first, the retrieval line last: it marks the arm done.
  for set in emoji google twitter; do
    record "$arm" "zero-shot $set" "$(awk '/^zero-shot classification/ { for (i = 1; i <= NF; i++) if ($i == "top-1") { v = $(i+1); sub(/,$/, "", v); print v } }' "$run/eval-$set/results.txt")"
  done
  # Retrieval from results.json: R@k in percent with 3 decimals, and the median ranks (weak
  # models differ there when R@1 rounds to 0 in results.txt).
  local json=$run/eval-val/results.json
  json_value() { awk -v dir="$1" -v key="$2" '$0 ~ "\"" dir "\"" { on = 1 } on && $0 ~ "\"" key "\"" {
      v = $2; sub(/,$/, "", v); print v; exit }' "$json"; }
  record "$arm" "val median rank i2t / t2i" "$(json_value image_to_text median_rank) / $(json_value text_to_image median_rank)"
  record "$arm" "val t2i R@1 (%)" "$(awk -v v="$(json_value text_to_image r1)" 'BEGIN { printf "%.3f", 100 * v }')"
  record "$arm" "val i2t R@5 (%)" "$(awk -v v="$(json_value image_to_text r5)" 'BEGIN { printf "%.3f", 100 * v }')"
  record "$arm" "val i2t R@1 (%)" "$(awk -v v="$(json_value image_to_text r1)" 'BEGIN { printf "%.3f", 100 * v }')"
}

filter() {  # filter NAME FLAGS...: keep KEEP of the noisy pool by a score; records its detection
  local name=$1
  shift
  local out=$OUT/filter-$name
  if [[ ! -f $out/summary.txt ]]; then
    echo "==== filter $name ($(date +%H:%M:%S))"
    rm -rf "$out"
    locked "$H" filter --manifest "$NOISY" --out "$out" --keep-fraction "$KEEP" "$@" > "$out.log"
  fi
  recorded "kept by $name" "swapped: AUROC / recall" ||
    record "kept by $name" "swapped: AUROC / recall" "$(awk '/^injected mismatches/ { r = $NF }
      /mismatch detector: AUROC/ { a = $7; sub(/,$/, "", a) } END { print a " / " r }' "$out/summary.txt")"
}

# 1. The scoring models and the two references, all with the same budget.
train "$OUT/noisy-halo" "$NOISY" "$STEPS"                    # HALO on the noisy pool (+ pair dynamics)
evaluate "noisy pool" "$OUT/noisy-halo"
train "$OUT/clean-halo" "$CLEAN" "$STEPS" --set train.pair_dynamics=false
evaluate "clean pool (oracle)" "$OUT/clean-halo"
train "$OUT/noisy-infonce" "$NOISY" "$STEPS" --set loss.name=infonce --set train.pair_dynamics=false
for fold in 0 1; do
  train "$OUT/noisy-fold$fold" "$NOISY" $((STEPS / 2)) --set data.folds=2 --set "data.holdout_fold=$fold" \
    --set train.pair_dynamics=false
done

# 2. Keep the same share by each score.
filter abstain --checkpoint "$OUT/noisy-halo"
filter cosine --checkpoint "$OUT/noisy-infonce" --score cosine
filter in-context --checkpoint "$OUT/noisy-halo" --score in-context --chunk "$BANK"
filter dynamics --scores-file "$OUT/noisy-halo/pair_dynamics.tsv" --score-column own_mean
filter 2-fold --checkpoint "$OUT/noisy-fold0" --checkpoint "$OUT/noisy-fold1"

# 3. Retrain on each kept set, the same budget.
for name in abstain cosine in-context dynamics 2-fold; do
  train "$OUT/retrain-$name" "$OUT/filter-$name/kept/{00000..$last}.tar" "$STEPS" --set train.pair_dynamics=false
  evaluate "kept by $name" "$OUT/retrain-$name"
done
echo "all: $(( $(date +%s) - start )) s; the table: OUT=$OUT scripts/icon_filter.sh --table"
