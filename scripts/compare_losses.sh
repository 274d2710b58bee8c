#!/usr/bin/env bash
# HALO against InfoNCE and SigLIP on the same budget: the tiny preset trained on the Google-art
# emoji with 20% of the captions swapped, evaluated on the Twitter art (retrieval, zero-shot
# category classification and its ECE) and on the noisy training set (how well each model's own
# pair score and the cosine score tell the swapped pairs from the clean ones). One table.
#
# Environment: OUT (default runs/compare), EPOCHS (default: the preset's), SEEDS (default "0").
# Expects the data prepared as scripts/demo.sh does it (it runs the same prepare steps).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/compare}
SEEDS=${SEEDS:-0}
P=data/prepared
H=build/halo-clip

scripts/setup.sh
scripts/build.sh -DHALO_BUILD_TESTS=OFF
scripts/fetch_data.sh --only emoji
$H prepare emoji --style google --source data/raw/emoji-google --out $P/emoji-google-mm20 \
  --mismatch-fraction 0.2 --seed 0 > /dev/null
$H prepare emoji --style twitter --source data/raw/emoji-twitter --out $P/emoji-twitter > /dev/null

for seed in $SEEDS; do
  for loss in halo infonce siglip; do
    run="$OUT/$loss-seed$seed"
    echo "==== $loss, seed $seed -> $run"
    args=(--set "loss.name=$loss" --set "train.seed=$seed" --set "train.run_dir=$run"
          --set "data.train_manifest=$P/emoji-google-mm20/manifest.tsv")
    [[ -n "${EPOCHS:-}" ]] && args+=(--set "train.epochs=$EPOCHS")
    $H train --config configs/tiny.yaml "${args[@]}" | grep -E "finished|stopped" || true
    $H eval --checkpoint "$run" --manifest $P/emoji-twitter/manifest.tsv --out "$run/eval-twitter" > /dev/null
    $H eval --checkpoint "$run" --manifest $P/emoji-google-mm20/manifest.tsv --out "$run/eval-train-noisy" > /dev/null
  done
done

# One row per run, read from the results.txt tables.
printf '\n%-8s %4s | %-23s | %-23s | %-12s | %-25s | %-25s\n' "" "" "image->text (Twitter)" \
  "text->image (Twitter)" "zero-shot" "mismatch: own score" "mismatch: cosine"
printf '%-8s %4s | %7s %7s %7s | %7s %7s %7s | %5s %6s | %5s %7s %11s | %5s %7s %11s\n' loss seed \
  R@1 R@5 R@10 R@1 R@5 R@10 top1 ECE AUROC FPR@95 score-name AUROC FPR@95 ""
for seed in $SEEDS; do
  for loss in halo infonce siglip; do
    run="$OUT/$loss-seed$seed"
    awk -v loss="$loss" -v seed="$seed" '
      FILENAME ~ /eval-twitter/ && /^image -> text/ { i2t = sprintf("%7s %7s %7s", $4, $5, $6) }
      FILENAME ~ /eval-twitter/ && /^text -> image/ { t2i = sprintf("%7s %7s %7s", $4, $5, $6) }
      FILENAME ~ /eval-twitter/ && /^zero-shot/ {
        for (i = 1; i <= NF; i++) { if ($i == "top-1") top1 = $(i+1); if ($i == "ECE") ece = $(i+1) }
        sub(/,$/, "", top1); sub(/,$/, "", ece) }
      FILENAME ~ /eval-train-noisy/ && /^(abstain|infonce|siglip) / { own = sprintf("%5s %7s %11s", $2, $3, $1) }
      FILENAME ~ /eval-train-noisy/ && /^cosine / { cosine_part = sprintf("%5s %7s", $2, $3) }
      END { printf "%-8s %4s | %s | %s | %5s %6s | %s | %s\n", loss, seed, i2t, t2i, top1, ece, own, cosine_part }
    ' "$run/eval-twitter/results.txt" "$run/eval-train-noisy/results.txt"
  done
done
echo
echo "own score: HALO's abstention probability; InfoNCE (1 - cos)/2; SigLIP 1 - sigmoid(pair logit)."
echo "cosine: 1 - cosine similarity of the pair's embeddings (the CLIP-score filter)."
