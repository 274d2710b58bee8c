#!/usr/bin/env bash
# HALO against cross-entropy as an image classifier (halo-clip classify): trained on
# Fashion-MNIST, tested on its test split, with MNIST (far OOD, grey digits) and the Google-art
# emoji (a colour OOD set) as out-of-distribution sets. Trains both losses for each seed and
# prints one table: mean and sample standard deviation over the seeds.
#
# Environment: SEEDS (default "0 1 2"), EPOCHS (default 1), OUT (default runs/classify),
# EXTRA (more flags for halo-clip classify, e.g. "--preset resnet18 --device cuda").
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1 2}
EPOCHS=${EPOCHS:-1}
OUT=${OUT:-runs/classify}
EXTRA=${EXTRA:-}
P=data/prepared
H=build/halo-clip

scripts/setup.sh
scripts/build.sh
scripts/fetch_data.sh --only fashion-mnist,mnist,emoji-google

prepare() {  # prepare SET OUT_FOLDER FLAGS...: once (skipped when the manifest exists)
  local set=$1 out=$2
  shift 2
  [[ -f "$out/manifest.tsv" ]] || $H prepare "$set" --out "$out" "$@" > /dev/null
}
prepare fashion-mnist $P/fashion-mnist-train --source data/raw/fashion-mnist --split train
prepare fashion-mnist $P/fashion-mnist-test --source data/raw/fashion-mnist --split test
prepare mnist $P/mnist-test --source data/raw/mnist --split test
prepare emoji $P/emoji-google --source data/raw/emoji-google --style google

start=$(date +%s)
for seed in $SEEDS; do
  for loss in ce halo; do
    run="$OUT/$loss-seed$seed"
    echo "==== $loss, seed $seed -> $run"
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    $H classify --loss "$loss" --seed "$seed" --epochs "$EPOCHS" --out "$run" \
      --train $P/fashion-mnist-train/manifest.tsv --test $P/fashion-mnist-test/manifest.tsv \
      --ood mnist=$P/mnist-test/manifest.tsv --ood emoji=$P/emoji-google/manifest.tsv $EXTRA |
      grep --line-buffered -E "training|ETA 0m00s|^test:|^(mnist|emoji) "
  done
done
echo "all runs: $(( $(date +%s) - start )) s"

# One row per loss: mean +- sample standard deviation over the seeds, read from results.txt.
echo
echo "Fashion-MNIST test (in distribution); OOD: MNIST test, Google-art emoji. Seeds: $SEEDS; epochs: $EPOCHS"
printf '%-5s | %-16s %-16s | %-16s %-16s | %-16s %-16s\n' loss "accuracy %" ECE "MNIST AUROC %" \
  "MNIST FPR@95 %" "emoji AUROC %" "emoji FPR@95 %"
for loss in ce halo; do
  files=()
  for seed in $SEEDS; do files+=("$OUT/$loss-seed$seed/results.txt"); done
  awk -v loss="$loss" '
    function add(k, v) { sum[k] += v; sq[k] += v * v; n[k]++ }
    function cell(k, scale, digits,   m, var) {
      m = sum[k] / n[k]
      var = n[k] > 1 ? (sq[k] - n[k] * m * m) / (n[k] - 1) : 0
      if (var < 0) var = 0
      return sprintf("%." digits "f +- %." digits "f", scale * m, scale * sqrt(var))
    }
    /^test:/ { for (i = 1; i <= NF; i++) { if ($i == "accuracy") acc = $(i+1); if ($i == "ECE") ece = $(i+1) }
               sub(/,$/, "", acc); add("acc", acc); add("ece", ece) }
    /^(mnist|emoji) / { add($1 "_auroc", $3); add($1 "_fpr", $4) }
    END { printf "%-5s | %-16s %-16s | %-16s %-16s | %-16s %-16s\n", loss, cell("acc", 100, 2), cell("ece", 1, 4),
            cell("mnist_auroc", 100, 2), cell("mnist_fpr", 100, 2), cell("emoji_auroc", 100, 2), cell("emoji_fpr", 100, 2) }
  ' "${files[@]}"
done
echo
echo "OOD score: HALO the abstain probability; CE 1 - max softmax probability. FPR@95: share of OOD"
echo "images accepted at the threshold that keeps 95% of the test images. Results: $OUT/*/results.json"
