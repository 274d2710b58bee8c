#!/usr/bin/env bash
# The HALO ablation of docs/results.md: train the tiny preset on the Google-art emoji with a
# share of swapped captions, evaluate retrieval on the Twitter art, and score the noisy training
# pairs (own score and cosine; by the final model, by an early checkpoint, by 2-fold
# cross-scoring for the variants in XFOLD, and by the training dynamics: each pair's mean score
# over every step it was trained on, RUN/pair_dynamics.txt). One row per run in $OUT/table.tsv,
# and a table of means and spreads over the seeds in $OUT/table.md (TABLE names another .md).
#
# Environment (defaults in brackets):
#   OUT [runs/ablation]  EPOCHS [30]  SEEDS ["0 1"]  NOISE ["20 40"] (percent of swapped captions)
#   VARIANTS [all below]  XFOLD [halo-centred-bootstrap infonce]  EARLY_STEP [100]
#   JOBS [2] runs at a time, THREADS [1] threads each; SKIP_SETUP=1 skips install/build/fetch;
#   HALO_CLIP [build/halo-clip] the binary to run; ONLY_TABLE=1 only tabulates finished runs
# Variants: halo-reference halo-centred halo-centred-logtemp halo-centred-radial0.1
#           halo-centred-bootstrap halo-centred-smoothing infonce siglip (the default list), and
#           halo-centred-bootstrap0.8 halo-centred-smoothing-bootstrap, and bootstrapping from the
#           pair's history: halo-centred-history (beta 0.5, fraction 0.25; halo-centred-history-b0.9-f0.4
#           sets both), halo-centred-smoothing-history, and InfoNCE with the same selection
#           (weight 1 - beta on the selected pairs): infonce-history (same suffixes)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-runs/ablation}
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-0 1}
NOISE=${NOISE:-20 40}
VARIANTS=${VARIANTS:-halo-reference halo-centred halo-centred-logtemp halo-centred-radial0.1 halo-centred-bootstrap halo-centred-smoothing infonce siglip}
XFOLD=${XFOLD-halo-centred-bootstrap infonce}
EARLY_STEP=${EARLY_STEP:-100}
P=data/prepared
H=${HALO_CLIP:-build/halo-clip}

# Bootstrapping from the history: "" or suffixes -bBETA -fFRACTION (defaults 0.5 and 0.25).
history_args() {
  local beta=0.5 fraction=0.25
  [[ $1 =~ ^(-b([0-9.]+))?(-f([0-9.]+))?$ ]] || { echo "ablation.sh: unknown history suffix '$1'" >&2; return 1; }
  [[ -n ${BASH_REMATCH[2]} ]] && beta=${BASH_REMATCH[2]}
  [[ -n ${BASH_REMATCH[4]} ]] && fraction=${BASH_REMATCH[4]}
  echo "--set loss.sink_bootstrap=$beta --set loss.sink_bootstrap_from=history --set loss.sink_history_fraction=$fraction"
}

variant_args() {
  local h
  case "$1" in
    halo-reference) echo "--set model.center_embeddings=false" ;;
    halo-centred) echo "--set model.center_embeddings=true" ;;
    halo-centred-logtemp) echo "--set model.center_embeddings=true --set loss.temperature=log" ;;
    halo-centred-radial0.1) echo "--set model.center_embeddings=true --set loss.radial_weight=0.1" ;;
    halo-centred-bootstrap) echo "--set model.center_embeddings=true --set loss.sink_bootstrap=0.5" ;;
    halo-centred-bootstrap0.8) echo "--set model.center_embeddings=true --set loss.sink_bootstrap=0.8" ;;
    halo-centred-smoothing) echo "--set model.center_embeddings=true --set loss.distill=false" ;;
    halo-centred-smoothing-bootstrap)
      echo "--set model.center_embeddings=true --set loss.distill=false --set loss.sink_bootstrap=0.5" ;;
    halo-centred-history | halo-centred-history-*)  # optional suffixes -bBETA -fFRACTION
      h=$(history_args "${1#halo-centred-history}") && echo "--set model.center_embeddings=true $h" ;;
    halo-centred-smoothing-history)
      echo "--set model.center_embeddings=true --set loss.distill=false --set loss.sink_bootstrap=0.5 --set loss.sink_bootstrap_from=history" ;;
    infonce) echo "--set loss.name=infonce --set model.center_embeddings=false" ;;
    infonce-history | infonce-history-*)
      h=$(history_args "${1#infonce-history}") && echo "--set loss.name=infonce --set model.center_embeddings=false $h" ;;
    siglip) echo "--set loss.name=siglip --set model.center_embeddings=false" ;;
    *) echo "ablation.sh: unknown variant '$1'" >&2; return 1 ;;
  esac
}
for v in $VARIANTS $XFOLD; do variant_args "$v" > /dev/null; done

if [[ -z "${SKIP_SETUP:-}" ]]; then
  scripts/setup.sh
  scripts/build.sh -DHALO_BUILD_TESTS=OFF
  scripts/fetch_data.sh --only emoji
fi
for n in $NOISE; do
  [[ -f $P/emoji-google-mm$n/manifest.tsv ]] ||
    $H prepare emoji --style google --source data/raw/emoji-google --out $P/emoji-google-mm$n \
      --mismatch-fraction "0.$n" --seed 0 > /dev/null
done
[[ -f $P/emoji-twitter/manifest.tsv ]] ||
  $H prepare emoji --style twitter --source data/raw/emoji-twitter --out $P/emoji-twitter > /dev/null
mkdir -p "$OUT"

# field VALUE of the row that starts with NAME in a results.txt table
field() { awk -v name="$2" -v col="$3" 'index($0, name) == 1 { sub(name, ""); split($0, f); print f[col]; exit }' "$1"; }
# AUROC and FPR@95 of a training-dynamics score (own_mean, cosine_mean, in_context_log_odds_mean,
# margin_mean), or "-	-"
dynamics() {
  [[ -f $1/pair_dynamics.txt ]] || { printf -- '-\t-\n'; return 0; }
  awk -v name="$2" '$1 == name { print $2 "\t" $3; f = 1 } END { if (!f) print "-\t-" }' "$1/pair_dynamics.txt"
}
# AUROC and FPR@95 from a filter summary
filter_auroc() { sed -n 's/.*AUROC \([0-9.]*\), FPR at 95% TPR \([0-9.]*\)/\1 \2/p' "$1/summary.txt"; }

train() {  # run_dir manifest variant seed [extra --set ...]
  local run=$1 manifest=$2 variant=$3 seed=$4; shift 4
  # shellcheck disable=SC2046
  $H train --config configs/tiny.yaml $(variant_args "$variant") --set "train.seed=$seed" \
    --set "train.run_dir=$run" --set "train.epochs=$EPOCHS" --set "data.train_manifest=$manifest" \
    --set train.checkpoint_every=$EARLY_STEP --set train.keep_checkpoints=100 "$@" | grep -E "finished|stopped"
}

# One run: train, evaluate, score. RUN/row.tsv marks it finished (it is not redone).
run_one() {
  local n=$1 seed=$2 v=$3
  local noisy=$P/emoji-google-mm$n/manifest.tsv run="$OUT/mm$n/$v-seed$seed"
  [[ -f $run/row.tsv ]] && return 0
  echo "==== $n% swapped, $v, seed $seed -> $run"
  rm -rf "$run"
  train "$run" "$noisy" "$v" "$seed"
  $H eval --checkpoint "$run" --manifest $P/emoji-twitter/manifest.tsv --out "$run/eval-twitter" > /dev/null
  $H eval --checkpoint "$run" --manifest "$noisy" --out "$run/eval-train-noisy" > /dev/null
  $H eval --checkpoint "$(printf '%s/checkpoints/step_%08d.pt' "$run" "$EARLY_STEP")" --manifest "$noisy" \
    --out "$run/eval-train-noisy-early" > /dev/null
  if [[ " $XFOLD " == *" $v "* ]]; then
    for k in 0 1; do
      train "$run/fold$k" "$noisy" "$v" "$seed" --set data.folds=2 --set "data.holdout_fold=$k"
    done
    $H filter --checkpoint "$run/fold0" --checkpoint "$run/fold1" --manifest "$noisy" --keep-fraction 0.8 \
      --out "$run/xfold-own" > /dev/null
    $H filter --checkpoint "$run/fold0" --checkpoint "$run/fold1" --manifest "$noisy" --keep-fraction 0.8 \
      --score cosine --out "$run/xfold-cosine" > /dev/null
  fi
  echo "$n $seed $v" > "$run/row.tsv"
}

# One tab-separated row of figures, read from a finished run's result files.
make_row() {
  local n=$1 seed=$2 v=$3
  local run="$OUT/mm$n/$v-seed$seed"
  local tw=$run/eval-twitter/results.txt tn=$run/eval-train-noisy/results.txt te=$run/eval-train-noisy-early/results.txt
  local zs own early_own xf="-	-	-"
  zs=$(awk '/^zero-shot/ { for (i = 1; i <= NF; i++) { if ($i == "top-1") t = $(i+1); if ($i == "ECE") e = $(i+1) }
                           sub(/,$/, "", t); print t "\t" e; exit }' "$tw")
  own=$(awk '/^(abstain|infonce|siglip) / { print $2 "\t" $3; exit }' "$tn")
  early_own=$(awk '/^(abstain|infonce|siglip) / { print $2; exit }' "$te")
  local ctx early_ctx
  ctx=$(awk '/^in-context / { print $2; exit }' "$tn")
  early_ctx=$(awk '/^in-context / { print $2; exit }' "$te")
  [[ -f $run/xfold-own/summary.txt ]] &&
    xf="$(filter_auroc "$run/xfold-own" | tr ' ' '\t')	$(filter_auroc "$run/xfold-cosine" | cut -d' ' -f1)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$v" "$seed" \
    "$(field "$tw" "image -> text" 1)" "$(field "$tw" "image -> text" 2)" \
    "$(field "$tw" "text -> image" 1)" "$(field "$tw" "text -> image" 2)" "$zs" \
    "$own" "$(field "$tn" "cosine" 1)" "$(field "$tn" "cosine" 2)" \
    "$early_own" "$(field "$te" "cosine" 1)" "$xf" "${ctx:--}" "${early_ctx:--}" \
    "$(dynamics "$run" own_mean)" "$(dynamics "$run" cosine_mean)" "$(dynamics "$run" in_context_log_odds_mean)" \
    "$(dynamics "$run" margin_mean)"
}
export -f run_one make_row train field dynamics filter_auroc variant_args history_args
export OUT EPOCHS XFOLD EARLY_STEP P H

# JOBS runs at a time, each with THREADS threads (two 1-thread runs use 2 cores better than one
# 2-thread run when the machine is shared).
if [[ -z "${ONLY_TABLE:-}" ]]; then
  for n in $NOISE; do for seed in $SEEDS; do for v in $VARIANTS; do echo "$n $seed $v"; done; done; done |
    OMP_NUM_THREADS=${THREADS:-1} xargs -P "${JOBS:-2}" -L 1 bash -c 'set -euo pipefail; run_one "$@"' _
fi

rows="${TABLE:-$OUT/table.md}"; rows="${rows%.md}.tsv"
printf 'noise\tvariant\tseed\ti2t_r1\ti2t_r5\tt2i_r1\tt2i_r5\tzeroshot_top1\tzeroshot_ece\town_auroc\town_fpr95\tcos_auroc\tcos_fpr95\tearly_own_auroc\tearly_cos_auroc\txfold_own_auroc\txfold_own_fpr95\txfold_cos_auroc\tcontext_auroc\tearly_context_auroc\tdyn_own_auroc\tdyn_own_fpr95\tdyn_cos_auroc\tdyn_cos_fpr95\tdyn_context_auroc\tdyn_context_fpr95\tdyn_margin_auroc\tdyn_margin_fpr95\n' > "$rows"
for n in $NOISE; do for v in $VARIANTS; do for seed in $SEEDS; do
  [[ -f "$OUT/mm$n/$v-seed$seed/row.tsv" ]] && make_row "$n" "$seed" "$v" >> "$rows"
done; done; done

# Mean and spread (half the range) over the seeds, one line per (noise, variant).
awk -F'\t' '
  NR == 1 { for (i = 4; i <= NF; i++) name[i] = $i; ncol = NF; next }
  { key = $1 "\t" $2; if (!(key in count)) order[++nkeys] = key; count[key]++
    for (i = 4; i <= ncol; i++) {
      if ($i == "-" || $i == "") { missing[key, i] = 1; continue }
      sum[key, i] += $i
      if (!((key, i) in lo) || $i < lo[key, i]) lo[key, i] = $i
      if (!((key, i) in hi) || $i > hi[key, i]) hi[key, i] = $i } }
  function cell(key, i) { if ((key, i) in missing || !((key, i) in lo)) return "-"
    return sprintf("%.3f ± %.3f", sum[key, i] / count[key], (hi[key, i] - lo[key, i]) / 2) }
  END {
    print "Learning: retrieval on the Twitter art (image -> text, text -> image) and zero-shot category classification\n"
    printf "| swapped | variant | seeds | i2t R@1 | i2t R@5 | t2i R@1 | zero-shot top-1 | ECE |\n"
    printf "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for (k = 1; k <= nkeys; k++) { key = order[k]; split(key, p, "\t")
      printf "| %s%% | %s | %d | %s | %s | %s | %s | %s |\n", p[1], p[2], count[key],
        cell(key, 4), cell(key, 5), cell(key, 6), cell(key, 8), cell(key, 9) }
    print "\nRejecting the swapped pairs of the training set: AUROC (and FPR@95 of the own score) by scorer\n"
    printf "| swapped | variant | own score | own FPR@95 | cosine | in-context | own, early | cosine, early | in-context, early | own, 2-fold | cosine, 2-fold |\n"
    printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for (k = 1; k <= nkeys; k++) { key = order[k]; split(key, p, "\t")
      printf "| %s%% | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2],
        cell(key, 10), cell(key, 11), cell(key, 12), cell(key, 19), cell(key, 14), cell(key, 15), cell(key, 20),
        cell(key, 16), cell(key, 18) }
    print "\nRejecting by the training dynamics: AUROC (FPR@95) of each score averaged over every step that trained on the pair\n"
    printf "| swapped | variant | own | own FPR@95 | cosine | cosine FPR@95 | in-context | in-context FPR@95 | margin | margin FPR@95 |\n"
    printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for (k = 1; k <= nkeys; k++) { key = order[k]; split(key, p, "\t")
      printf "| %s%% | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2],
        cell(key, 21), cell(key, 22), cell(key, 23), cell(key, 24), cell(key, 25), cell(key, 26),
        cell(key, 27), cell(key, 28) } }
' "$rows" | tee "${TABLE:-$OUT/table.md}"
echo "rows: $rows   table: ${TABLE:-$OUT/table.md}"
