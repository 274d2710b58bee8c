#!/usr/bin/env bash
# Does the trained sink say no? (docs/results.md, "Teaching the sink to say no"). On the icon
# corpus, with the models of scripts/icon_evidence.sh (HALO, InfoNCE, SigLIP in EVIDENCE) and a
# HALO variant trained with partner dropout (loss.sink_partner_drop = DROP) the same way:
#   1. trains the variant (icon_evidence.sh with LOSSES=halo and EXTRA, into OUT/partner-drop);
#   2. evaluates every model's zero-shot OOD again with a bank of negative captions (WordNet's
#      nouns, scripts/wordnet_nouns.sh; the BANK farthest from every class prompt), which adds
#      the `negatives` score for every loss and HALO's `negatives_sink`;
#   3. prints, per task, each model's scores: far OOD (MNIST, Fashion-MNIST, Tux Paint AUROC),
#      mismatch of unseen pairs (val split, 30% swapped), and retrieval R@1.
# Every step is skipped when its output exists; OUT/results.tsv collects the figures.
#
# Environment (defaults in brackets): EVIDENCE [runs/icons] the icon_evidence.sh output
#   OUT [runs/sink]  DROP [0.3]  BANK [10000]  SEEDS ["0 1"]  STEPS [600]
#   CORPUS [data/prepared/iconify-64]  HALO_CLIP [build/halo-clip]  LOCK [empty] (flock)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
EVIDENCE=${EVIDENCE:-runs/icons}
OUT=${OUT:-runs/sink}
DROP=${DROP:-0.3}
BANK=${BANK:-10000}
SEEDS=${SEEDS:-0 1}
STEPS=${STEPS:-600}
source scripts/icon_common.sh  # CORPUS, H, P, locked
[[ -f $EVIDENCE/tokenizer.model ]] ||
  { echo "sink_table: $EVIDENCE/tokenizer.model is missing: run scripts/icon_evidence.sh first" >&2; exit 2; }
mkdir -p "$OUT"

# 1. The partner-dropout variant, measured as icon_evidence.sh measures the others.
OUT="$OUT/partner-drop" LOSSES=halo SEEDS="$SEEDS" STEPS="$STEPS" CORPUS="$CORPUS" \
  EXTRA="--set loss.sink_partner_drop=$DROP --set tokenizer.model=$EVIDENCE/tokenizer.model" \
  scripts/icon_evidence.sh

# 2. The bank, and every model's OOD evaluation with it.
[[ -f $OUT/wordnet_nouns.txt ]] || scripts/wordnet_nouns.sh "$OUT/wordnet_nouns.txt"
runs=()
for seed in $SEEDS; do
  for loss in halo infonce siglip; do runs+=("$EVIDENCE/$loss-seed$seed"); done
  runs+=("$OUT/partner-drop/halo-seed$seed")
done
for run in "${runs[@]}"; do
  [[ -f $run/eval-emoji-negatives/results.txt ]] && continue
  echo "==== negatives: $run ($(date +%H:%M:%S))"
  locked "$H" eval --checkpoint "$run" --manifest "$CORPUS/emoji/{00000..00002}.tar" \
    --out "$run/eval-emoji-negatives" --negatives "$OUT/wordnet_nouns.txt" --negatives-count "$BANK" \
    --ood mnist=$P/mnist-test/manifest.tsv --ood fashion-mnist=$P/fashion-mnist-test/manifest.tsv \
    --ood tuxpaint=$P/tuxpaint/manifest.tsv > /dev/null
done

# 3. One row per (model, score): far OOD, mismatch, retrieval; mean +- sd over the seeds.
: > "$OUT/results.tsv"
for run in "${runs[@]}"; do
  model=$(basename "$run" | sed 's/-seed[0-9]*$//')
  [[ $run == "$OUT/partner-drop/"* ]] && model="halo+drop$DROP"
  awk -v m="$model" '$1 ~ /^(mnist|fashion-mnist|tuxpaint)$/ && NF == 5 { print m "\t" $2 "\t" $1 "\t" $4 }' \
    "$run/eval-emoji-negatives/results.txt" >> "$OUT/results.tsv"
  awk -v m="$model" 'NF == 5 && $1 ~ /^(abstain|infonce|siglip|cosine|in-context)$/ { print m "\t" $1 "\tmismatch\t" $2 }' \
    "$run/eval-val-mm30/results.txt" >> "$OUT/results.tsv"
  awk -v m="$model" '/^image -> text/ { print m "\t-\tR@1 i2t\t" $4 }' "$run/eval-val/results.txt" >> "$OUT/results.tsv"
done
grep -h "^negatives:" "${runs[0]}/eval-emoji-negatives/results.txt" || true
echo "| model | score | MNIST | Fashion-MNIST | Tux Paint | mismatch | R@1 i2t |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
awk -F'\t' '
  { k = $1 "\t" $2 "\t" $3; s[k] += $4; q[k] += $4 * $4; n[k]++
    if (!(($1 "\t" $2) in seen)) { seen[$1 "\t" $2] = 1; rows[++nr] = $1 "\t" $2 } }
  function cell(k,   mu, v) { if (!(k in n)) return "-"; mu = s[k] / n[k]
    v = n[k] > 1 ? (q[k] - n[k] * mu * mu) / (n[k] - 1) : 0; return sprintf("%.3f +- %.3f", mu, sqrt(v < 0 ? 0 : v)) }
  END {
    for (i = 1; i <= nr; i++) {
      split(rows[i], r, "\t"); if (r[2] == "-") continue
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", r[1], r[2], cell(rows[i] "\tmnist"),
        cell(rows[i] "\tfashion-mnist"), cell(rows[i] "\ttuxpaint"), cell(rows[i] "\tmismatch"),
        cell(r[1] "\t-\tR@1 i2t")
    }
  }' "$OUT/results.tsv"
