#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine with no manual step: installs what is missing,
# builds, fetches the emoji sets, prepares a training set from the Google art with 20% of the
# captions swapped and a clean evaluation set from the Twitter art, trains the tiny preset on the
# CPU, evaluates retrieval across the two art styles, filters the noisy training set by abstention
# score, writes the HTML report, and prints a summary with the paths to look at.
#
# Environment: RUN (run folder, default runs/demo), EPOCHS (training budget, default from
# configs/tiny.yaml), KEEP (share of pairs the filter keeps, default 0.8), SHARDS=1 (train from
# WebDataset shards written from the same manifest by `prepare shards`).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/demo}
KEEP=${KEEP:-0.8}
P=data/prepared
H=build/halo-clip
step() { printf '\n==== %s\n' "$*"; }

step "install and build"
scripts/setup.sh
scripts/build.sh -DHALO_BUILD_TESTS=OFF

step "fetch and prepare the emoji sets"
scripts/fetch_data.sh --only emoji
$H prepare emoji --style google --source data/raw/emoji-google --out $P/emoji-google-mm20 \
  --mismatch-fraction 0.2 --seed 0
$H prepare emoji --style twitter --source data/raw/emoji-twitter --out $P/emoji-twitter

train_data=$P/emoji-google-mm20/manifest.tsv
if [[ "${SHARDS:-0}" == 1 ]]; then
  step "write the noisy Google-art set as shards"
  $H prepare shards --manifest $P/emoji-google-mm20/manifest.tsv --out $P/emoji-google-mm20-shards \
    --samples-per-shard 500 --overwrite
  train_data="$P/emoji-google-mm20-shards/{00000..00003}.tar"
fi

step "train the tiny preset (HALO) on the noisy Google-art set"
overrides=(--set "train.run_dir=$RUN" --set "data.train_manifest=$train_data")
[[ -n "${EPOCHS:-}" ]] && overrides+=(--set "train.epochs=$EPOCHS")
resume=()
[[ -e "$RUN/checkpoints/latest" ]] && resume=(--resume latest)  # continue (or reuse) an earlier run
start=$(date +%s)
$H train --config configs/tiny.yaml "${overrides[@]}" "${resume[@]}"
train_seconds=$(( $(date +%s) - start ))

step "evaluate: retrieval on the Twitter art (a style the model never saw)"
$H eval --checkpoint "$RUN" --manifest $P/emoji-twitter/manifest.tsv --out "$RUN/eval-twitter"

step "evaluate: mismatch detection on the noisy training set"
$H eval --checkpoint "$RUN" --manifest $P/emoji-google-mm20/manifest.tsv --out "$RUN/eval-train-noisy"

step "filter the noisy training set, keeping $KEEP of the pairs"
$H filter --checkpoint "$RUN" --manifest $P/emoji-google-mm20/manifest.tsv --out "$RUN/filter" \
  --keep-fraction "$KEEP"

step "report"
$H report --run "$RUN"

step "summary"
echo "training: $train_seconds s (configs/tiny.yaml, run folder $RUN)"
echo
echo "cross-style retrieval (trained on Google art, evaluated on Twitter art):"
grep -E '^(retrieval|image -> text|text -> image)' "$RUN/eval-twitter/results.txt" | sed 's/^/  /'
grep -E '^zero-shot' "$RUN/eval-twitter/results.txt" | sed 's/^/  /' || true
echo
echo "telling the injected mismatches from clean pairs (noisy training set):"
grep -E '^(mismatch score|abstain|cosine)' "$RUN/eval-train-noisy/results.txt" | sed 's/^/  /'
if [[ -f $RUN/pair_dynamics.txt ]]; then
  echo "the same, each pair's score averaged over every step that trained on it ($RUN/pair_dynamics.tsv):"
  sed 's/^/  /' "$RUN/pair_dynamics.txt"
fi
echo
echo "filter (keep $KEEP):"
grep -E '^(scored|injected)' "$RUN/filter/summary.txt" | sed 's/^/  /'
echo
echo "look at:"
echo "  $RUN/report.html            curves, score histograms, reliability, retrieval examples"
echo "  $RUN/eval-twitter/results.json"
echo "  $RUN/filter/kept.tsv        the filtered training manifest (rejected.tsv, scores.tsv beside it)"
