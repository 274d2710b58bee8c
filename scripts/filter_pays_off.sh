#!/usr/bin/env bash
# Does filtering pay off? For each share of swapped captions: train HALO (the tiny preset) on the
# noisy Google-art emoji, keep the KEEP share of pairs with the lowest abstention score, retrain
# HALO from scratch on the kept pairs, and compare Twitter-art retrieval before and after with a
# retrain on the pairs kept by the cosine score of an InfoNCE model trained on the same noisy set
# (the DataComp-style CLIP-score filter). One table; figures in $OUT.
#
# Environment (defaults in brackets): OUT [runs/filter-pays-off]  NOISE ["0 20 40"] (percent)
#   SEEDS ["0"]  EPOCHS [30]  KEEP [0.8]  JOBS [2] runs at a time, THREADS [1] each
#   SKIP_SETUP=1 skips install/build/fetch; HALO_CLIP [build/halo-clip]
#   SCORE_STEP [empty: the final models] filter with the scoring models' checkpoint of this step
#   DYNAMICS=1 filter by the scoring runs' pair_dynamics.tsv instead (each score averaged over
#     training: HALO's abstention own_mean, InfoNCE's cosine_mean)
#   SCORERS [empty: trained here] an ablation.sh output folder whose runs mm<N>/halo-centred-seed<S>
#     and mm<N>/infonce-seed<S> (the same preset and data) are the scoring models; with it,
#     HALO_SCORER [halo-centred] and INFONCE_SCORER [infonce] name other ablation variants to
#     score with (e.g. halo-centred-history-b0.7); "HALO on all pairs" stays halo-centred
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-runs/filter-pays-off}
NOISE=${NOISE:-0 20 40}
SEEDS=${SEEDS:-0}
EPOCHS=${EPOCHS:-30}
KEEP=${KEEP:-0.8}
SCORE_STEP=${SCORE_STEP:-}
SCORERS=${SCORERS:-}
DYNAMICS=${DYNAMICS:-}
HALO_SCORER=${HALO_SCORER:-halo-centred}
INFONCE_SCORER=${INFONCE_SCORER:-infonce}
[[ -n $SCORERS || ( $HALO_SCORER == halo-centred && $INFONCE_SCORER == infonce ) ]] ||
  { echo "filter_pays_off: HALO_SCORER and INFONCE_SCORER need SCORERS" >&2; exit 2; }
[[ -z $SCORE_STEP || -z $DYNAMICS ]] || { echo "filter_pays_off: SCORE_STEP and DYNAMICS exclude each other" >&2; exit 2; }
# Folders are named by how the filters score; SCORERS alone would reuse the final-model folders.
[[ -z $SCORERS || -n $SCORE_STEP$DYNAMICS ]] || { echo "filter_pays_off: SCORERS needs SCORE_STEP or DYNAMICS" >&2; exit 2; }
TAG=${SCORE_STEP:+-step$SCORE_STEP}${DYNAMICS:+-dynamics}  # folder suffix of filters and retrains not scored by the final model
[[ $HALO_SCORER == halo-centred && $INFONCE_SCORER == infonce ]] || TAG="$TAG-by-$HALO_SCORER-$INFONCE_SCORER"
P=data/prepared
H=${HALO_CLIP:-build/halo-clip}

if [[ -z "${SKIP_SETUP:-}" ]]; then
  scripts/setup.sh
  scripts/build.sh -DHALO_BUILD_TESTS=OFF
  scripts/fetch_data.sh --only emoji
fi
manifest_for() { echo "$P/emoji-google-mm$1/manifest.tsv"; }
for n in $NOISE; do
  [[ -f $(manifest_for "$n") ]] ||
    $H prepare emoji --style google --source data/raw/emoji-google --out "$P/emoji-google-mm$n" \
      --mismatch-fraction "$(awk -v n="$n" 'BEGIN { print n / 100 }')" --seed 0 > /dev/null
done
[[ -f $P/emoji-twitter/manifest.tsv ]] ||
  $H prepare emoji --style twitter --source data/raw/emoji-twitter --out $P/emoji-twitter > /dev/null
mkdir -p "$OUT"

train() {  # run_dir manifest seed [--set ...]
  local run=$1 manifest=$2 seed=$3; shift 3
  [[ -f $run/checkpoints/final.pt ]] && return 0
  $H train --config configs/tiny.yaml --set "train.run_dir=$run" --set "data.train_manifest=$manifest" \
    --set "train.seed=$seed" --set "train.epochs=$EPOCHS" "$@" | grep -E "finished|stopped"
}
retrieval() {  # run_dir -> "R@1 R@5" image->text on the Twitter art
  [[ -f $1/eval-twitter/results.txt ]] ||
    $H eval --checkpoint "$1" --manifest $P/emoji-twitter/manifest.tsv --out "$1/eval-twitter" > /dev/null
  awk '/^image -> text/ { print $4, $5; exit }' "$1/eval-twitter/results.txt"
}
scorer() {  # scorer halo|infonce noise seed -> the scoring model's run folder
  if [[ -n $SCORERS ]]; then
    [[ $1 == halo ]] && echo "$SCORERS/mm$2/$HALO_SCORER-seed$3" || echo "$SCORERS/mm$2/$INFONCE_SCORER-seed$3"
  else
    echo "$OUT/mm$2-seed$3/$1"
  fi
}
baseline() {  # noise seed -> the run of the retrains' preset (centred HALO) on all pairs
  if [[ -n $SCORERS ]]; then echo "$SCORERS/mm$1/halo-centred-seed$2"; else scorer halo "$1" "$2"; fi
}
scoring_checkpoint() {  # run folder -> what `filter --checkpoint` gets
  if [[ -n $SCORE_STEP ]]; then printf '%s/checkpoints/step_%08d.pt' "$1" "$SCORE_STEP"; else echo "$1"; fi
}
scores_from() {  # run folder, cosine|model -> the filter's flags that choose the score
  if [[ -n $DYNAMICS ]]; then
    echo --scores-file "$1/pair_dynamics.tsv" --score-column "$([[ $2 == cosine ]] && echo cosine_mean || echo own_mean)"
  else
    echo --checkpoint "$(scoring_checkpoint "$1")" --score "$2"
  fi
}
# Stage one (per noise and seed): the two scoring models, then the two filters.
stage_one() {
  local n=$1 seed=$2 d="$OUT/mm$1-seed$2" keep=()
  local halo infonce
  halo=$(scorer halo "$n" "$seed")
  infonce=$(scorer infonce "$n" "$seed")
  [[ -n $SCORE_STEP ]] && keep=(--set "train.checkpoint_every=$SCORE_STEP" --set train.keep_checkpoints=1000)
  if [[ -z $SCORERS ]]; then
    train "$halo" "$(manifest_for "$n")" "$seed" "${keep[@]}"
    train "$infonce" "$(manifest_for "$n")" "$seed" --set loss.name=infonce --set model.center_embeddings=false "${keep[@]}"
  fi
  # shellcheck disable=SC2046  # scores_from prints flags; run folders hold no blanks
  [[ -f $d/filter-halo$TAG/summary.txt ]] || $H filter $(scores_from "$halo" model) \
    --manifest "$(manifest_for "$n")" --keep-fraction "$KEEP" --out "$d/filter-halo$TAG" > /dev/null
  # shellcheck disable=SC2046
  [[ -f $d/filter-infonce-cosine$TAG/summary.txt ]] || $H filter $(scores_from "$infonce" cosine) \
    --manifest "$(manifest_for "$n")" --keep-fraction "$KEEP" --out "$d/filter-infonce-cosine$TAG" > /dev/null
}
# Stage two: HALO retrained on each kept set.
stage_two() {
  local n=$1 seed=$2 which=$3 d="$OUT/mm$1-seed$2"
  train "$d/retrain-$which$TAG" "$d/filter-$which$TAG/kept.tsv" "$seed"
}
export -f train retrieval stage_one stage_two manifest_for scorer scoring_checkpoint scores_from
export OUT EPOCHS KEEP P H SCORE_STEP SCORERS DYNAMICS TAG HALO_SCORER INFONCE_SCORER
jobs_list() { for n in $NOISE; do for s in $SEEDS; do echo "$n $s${*:+ $*}"; done; done; }  # no trailing blank: xargs -L would join lines
jobs_list | OMP_NUM_THREADS=${THREADS:-1} xargs -P "${JOBS:-2}" -L 1 bash -c 'set -euo pipefail; stage_one "$@"' _
{ jobs_list halo; jobs_list infonce-cosine; } |
  OMP_NUM_THREADS=${THREADS:-1} xargs -P "${JOBS:-2}" -L 1 bash -c 'set -euo pipefail; stage_two "$@"' _

caught() { sed -n 's/.*rejected \([0-9]*\) of them: precision \([0-9.]*\), recall.*/\1 (precision \2)/p' "$1/summary.txt"; }
{
  echo "| swapped | seed | HALO on all pairs: R@1 / R@5 | HALO retrained, kept by HALO abstention: R@1 / R@5 | swapped pairs removed | HALO retrained, kept by InfoNCE cosine: R@1 / R@5 | swapped pairs removed |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for n in $NOISE; do for s in $SEEDS; do
    d="$OUT/mm$n-seed$s"
    printf '| %s%% | %s | %s | %s | %s | %s | %s |\n' "$n" "$s" "$(retrieval "$(baseline "$n" "$s")" | tr ' ' '/')" \
      "$(retrieval "$d/retrain-halo$TAG" | tr ' ' '/')" "$(caught "$d/filter-halo$TAG")" \
      "$(retrieval "$d/retrain-infonce-cosine$TAG" | tr ' ' '/')" "$(caught "$d/filter-infonce-cosine$TAG")"
  done; done
} | tee "$OUT/table$TAG.md"
# The same figures one per line, for `halo-clip plot bars` (scripts/plots.sh).
{
  printf 'swapped\tseed\tmodel\tr1\tr5\n'
  for n in $NOISE; do for s in $SEEDS; do
    d="$OUT/mm$n-seed$s"
    printf '%s%%\t%s\t%s\t%s\n' "$n" "$s" "all pairs" "$(retrieval "$(baseline "$n" "$s")" | tr ' ' '\t')"
    for m in "retrain-halo$TAG:kept by HALO abstention" "retrain-infonce-cosine$TAG:kept by InfoNCE cosine"; do
      printf '%s%%\t%s\t%s\t%s\n' "$n" "$s" "${m#*:}" "$(retrieval "$d/${m%%:*}" | tr ' ' '\t')"
    done
  done; done
} > "$OUT/table$TAG.tsv.tmp" && mv "$OUT/table$TAG.tsv.tmp" "$OUT/table$TAG.tsv"
echo "table: $OUT/table$TAG.md, $OUT/table$TAG.tsv   (kept share $KEEP, $EPOCHS epochs${SCORE_STEP:+, scored at step $SCORE_STEP}${DYNAMICS:+, scored by the training dynamics}; scorers $HALO_SCORER, $INFONCE_SCORER)"
