#!/usr/bin/env bash
# Zero-shot classification with an "I don't know", and mismatch detection on pairs never trained
# on, for HALO, InfoNCE and SigLIP (the tiny preset, trained on the Google emoji art):
#   1. eval --ood: in distribution, the Twitter art's images and its 10 categories; OOD, the
#      MNIST and Fashion-MNIST test images (far) and the Tux Paint stamps. AUROC and FPR@95 of
#      each score (HALO's abstain probability, MSP, MCM at the paper's temperature 1 and at
#      CLIP's 0.01, energy), selective classification.
#   2. eval on the Twitter art with 20% of its captions swapped (prepare noise): own score,
#      cosine and in-context score, with bootstrap intervals of own - cosine.
#   3. filter --score in-context against --score cosine on the same set (chunks of 512 pairs).
# Prints one table per part: mean +- sample standard deviation over the seeds.
#
# Environment: SEEDS (default "0 1 2"), LOSSES (default "halo infonce siglip"), OUT (default
# runs/ood), EPOCHS (default: the preset's).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1 2}
LOSSES=${LOSSES:-halo infonce siglip}
OUT=${OUT:-runs/ood}
P=data/prepared
H=build/halo-clip

scripts/setup.sh
scripts/build.sh
scripts/fetch_data.sh --only emoji,mnist,fashion-mnist,tuxpaint

prepare() {  # prepare SET OUT_FOLDER FLAGS...: once (skipped when the manifest exists)
  local set=$1 out=$2
  shift 2
  [[ -f "$out/manifest.tsv" ]] || $H prepare "$set" --out "$out" "$@" > /dev/null
}
prepare emoji $P/emoji-google --source data/raw/emoji-google --style google
prepare emoji $P/emoji-twitter --source data/raw/emoji-twitter --style twitter
prepare mnist $P/mnist-test --source data/raw/mnist --split test
prepare fashion-mnist $P/fashion-mnist-test --source data/raw/fashion-mnist --split test
prepare tuxpaint $P/tuxpaint --source data/raw/tuxpaint
prepare noise $P/emoji-twitter-mm20 --manifest $P/emoji-twitter/manifest.tsv --fraction 0.2 --seed 0

epochs=()
[[ -n "${EPOCHS:-}" ]] && epochs=(--set "train.epochs=$EPOCHS")
start=$(date +%s)
for seed in $SEEDS; do
  for loss in $LOSSES; do
    run="$OUT/$loss-seed$seed"
    echo "==== $loss, seed $seed -> $run"
    [[ -f "$run/checkpoints/final.pt" ]] ||
      $H train --config configs/tiny.yaml --set "train.run_dir=$run" --set "loss.name=$loss" \
        --set "train.seed=$seed" --set "data.train_manifest=$P/emoji-google/manifest.tsv" \
        --set train.pair_dynamics=false "${epochs[@]}" | grep --line-buffered -E "finished|error"
    $H eval --checkpoint "$run" --manifest $P/emoji-twitter/manifest.tsv --out "$run/eval-ood" \
      --ood mnist=$P/mnist-test/manifest.tsv --ood fashion-mnist=$P/fashion-mnist-test/manifest.tsv \
      --ood tuxpaint=$P/tuxpaint/manifest.tsv > /dev/null
    $H eval --checkpoint "$run" --manifest $P/emoji-twitter-mm20/manifest.tsv --out "$run/eval-mm20" > /dev/null
    for score in in-context cosine; do
      $H filter --checkpoint "$run" --manifest $P/emoji-twitter-mm20/manifest.tsv --out "$run/filter-$score" \
        --score $score --keep-fraction 0.8 --chunk 512 > "$run/filter-$score.txt"
    done
  done
done
echo "all runs: $(( $(date +%s) - start )) s"

# Mean +- sample standard deviation of what each awk program collects (add), one row per loss.
stats='
  function add(k, v) { sum[k] += v; sq[k] += v * v; n[k]++ }
  function cell(k,   m, var) {
    if (!(k in n)) return "-"
    m = sum[k] / n[k]
    var = n[k] > 1 ? (sq[k] - n[k] * m * m) / (n[k] - 1) : 0
    if (var < 0) var = 0
    return sprintf("%.3f+-%.3f", m, sqrt(var))
  }'

files() {  # files NAME LOSS: that file of every seed's run
  local name=$1 loss=$2 seed
  for seed in $SEEDS; do echo "$OUT/$loss-seed$seed/$name"; done
}

echo
echo "1. OOD detection: in distribution the Twitter art (10 categories); AUROC (FPR@95) of each score. Seeds: $SEEDS"
printf '%-8s %-8s | %-26s | %-26s | %-26s\n' loss score "mnist" "fashion-mnist" "tuxpaint"
for loss in $LOSSES; do
  # shellcheck disable=SC2046
  awk -v loss="$loss" "$stats"'
    $1 ~ /^(mnist|fashion-mnist|tuxpaint)$/ && NF == 5 { add($1 "/" $2 "/auroc", $4); add($1 "/" $2 "/fpr", $5); scores[$2] = 1 }
    END {
      split("abstain msp mcm mcm_clip energy", order, " ")
      for (i = 1; i <= 5; i++) {
        s = order[i]; if (!(s in scores)) continue
        printf "%-8s %-8s", loss, s
        split("mnist fashion-mnist tuxpaint", sets, " ")
        for (j = 1; j <= 3; j++) printf " | %-12s (%s)", cell(sets[j] "/" s "/auroc"), cell(sets[j] "/" s "/fpr")
        printf "\n"
      }
    }' $(files eval-ood/results.txt "$loss")
done

echo
echo "   Selective classification of the Twitter art: accuracy at 50/80/95% coverage, AURC (lower is better)"
printf '%-8s %-8s | %-13s %-13s %-13s %-13s\n' loss score "acc@50%" "acc@80%" "acc@95%" AURC
for loss in $LOSSES; do
  # shellcheck disable=SC2046
  awk -v loss="$loss" "$stats"'
    $1 == "by" && NF == 6 { add($2 "/a50", $3); add($2 "/a80", $4); add($2 "/a95", $5); add($2 "/aurc", $6); scores[$2] = 1 }
    /^zero-shot classification/ { for (i = 1; i <= NF; i++) if ($i == "top-1") { v = $(i+1); sub(/,$/, "", v); add("top1", v) } }
    END {
      split("abstain msp mcm mcm_clip energy", order, " ")
      for (i = 1; i <= 5; i++) {
        s = order[i]; if (!(s in scores)) continue
        printf "%-8s %-8s | %-13s %-13s %-13s %-13s\n", loss, s, cell(s "/a50"), cell(s "/a80"), cell(s "/a95"), cell(s "/aurc")
      }
      printf "%-8s %-8s | top-1 at full coverage %s\n", loss, "", cell("top1")
    }' $(files eval-ood/results.txt "$loss")
done

echo
echo "2. Mismatch detection on pairs never trained on (Twitter art, 20% captions swapped): AUROC"
printf '%-8s | %-13s %-13s %-13s | %-40s\n' loss "own score" cosine in-context "own - cosine (95% bootstrap interval), per seed"
for loss in $LOSSES; do
  # shellcheck disable=SC2046
  awk -v loss="$loss" "$stats"'
    NF == 5 && $1 ~ /^(abstain|infonce|siglip)$/ { add("own", $2) }
    NF == 5 && $1 == "cosine" { add("cos", $2) }
    NF == 5 && $1 == "in-context" { add("ctx", $2) }
    /^AUROC .* - cosine/ && $2 != "in-context" { hi = $11; sub(/,$/, "", hi); d = d sprintf(" %s [%s, %s]", $5, $9, hi) }
    END { printf "%-8s | %-13s %-13s %-13s |%s\n", loss, cell("own"), cell("cos"), cell("ctx"), d }
  ' $(files eval-mm20/results.txt "$loss")
done

echo
echo "3. filter on the same set, chunks of 512 pairs as the in-context bank: AUROC of the score"
printf '%-8s | %-13s %-13s\n' loss in-context cosine
for loss in $LOSSES; do
  row="$loss"
  for score in in-context cosine; do
    # shellcheck disable=SC2046
    row+=" $(awk "$stats"' /mismatch detector: AUROC/ { v = $7; sub(/,$/, "", v); add("a", v) } END { printf "%s", cell("a") }' \
      $(files "filter-$score.txt" "$loss"))"
  done
  printf '%-8s | %-13s %-13s\n' $row
done
echo
echo "4. docs/loss.md, 'When the pair score is a cosine': on the same pairs, the relative spread of the"
echo "   norms (sd / mean) and the share of pair couples that the pair score and the cosine order differently"
for loss in $LOSSES; do
  for f in $(files eval-mm20/pair_scores.tsv "$loss"); do
    awk -F'\t' -v run="$f" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      { s[n] = $col["log_odds"]; c[n] = $col["cosine_score"]; xi = $col["image_norm"]; xt = $col["text_norm"]
        si += xi; qi += xi * xi; st += xt; qt += xt * xt; n++ }
      END {
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) {
          a = s[i] - s[j]; b = c[i] - c[j]
          if (a * b < 0) d++; else if (a * b > 0) k++
        }
        mi = si / n; mt = st / n
        printf "   %-48s image norm %.3f (sd/mean %.3f), text norm %.3f (sd/mean %.3f); discordant %.4f\n", run,
          mi, sqrt(qi / n - mi * mi) / mi, mt, sqrt(qt / n - mt * mt) / mt, d / (d + k)
      }' "$f"
  done
done
echo
echo "Results: $OUT/*/eval-ood/results.json, ood_scores.tsv (per image), eval-mm20/results.json"
