#!/usr/bin/env bash
# The figures of docs/results.md: SVG charts drawn by `halo-clip plot` from the run folders that
# the measurement scripts leave behind. A group whose runs are missing is skipped with the
# command that makes them.
#
#   ablation   runs/ablation            scripts/ablation.sh (NOISE="20 40")
#   history    runs/history             the commands of docs/results.md, "Bootstrapping from the pair's history"
#   filtering  runs/filter-pays-off     SEEDS="0 1" scripts/filter_pays_off.sh (and with NOISE="20 40":
#              SCORERS=runs/ablation SCORE_STEP=100, SCORERS=runs/dynamics DYNAMICS=1)
#   classify   runs/classify-plots      scripts/classify_table.sh with OUT=runs/classify-plots SEEDS=0
#   speed      runs/bench-vs-pytorch    scripts/bench_vs_pytorch.sh
#
# Environment: OUT [docs/plots]  HALO_CLIP [build/halo-clip]  and the five folders above as
#   ABLATION, HISTORY, FILTERING, CLASSIFY, SPEED.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-docs/plots}
H=${HALO_CLIP:-build/halo-clip}
ABLATION=${ABLATION:-runs/ablation}
HISTORY=${HISTORY:-runs/history}
FILTERING=${FILTERING:-runs/filter-pays-off}
CLASSIFY=${CLASSIFY:-runs/classify-plots}
SPEED=${SPEED:-runs/bench-vs-pytorch}
[[ -x $H ]] || { echo "plots: $H not found (scripts/build.sh builds it)" >&2; exit 1; }
mkdir -p "$OUT"
have() {  # have FILE WHAT: true when FILE exists, else says what is skipped
  [[ -e $1 ]] && return 0
  echo "plots: skipping $2: $1 is missing" >&2
  return 1
}
plot() { $H plot "$@" | sed 's/^plot: /wrote /'; }
MISMATCH=(--group mismatched --name 0=clean --name 1=swapped)

if have "$ABLATION/table.tsv" "the ablation figures"; then
  A=$ABLATION/mm20
  plot bars --out "$OUT/ablation-retrieval.svg" --table "$ABLATION/table.tsv" --label variant --value i2t_r1 \
    --series noise --name 20="20% swapped" --name 40="40% swapped" \
    --title "Twitter-art R@1, image to text (mean of 2 seeds; whiskers: range)" --x-label "R@1"
  plot bars --out "$OUT/ablation-rejection-20.svg" --table "$ABLATION/table.tsv" --label variant --where noise=20 \
    --value own_auroc --value cos_auroc --value early_context_auroc --value xfold_own_auroc --from 0.5 \
    --name own_auroc="own score, final model" --name cos_auroc="cosine, final model" \
    --name early_context_auroc="in-context, step 100" --name xfold_own_auroc="own score, 2-fold" \
    --title "Rejecting 20% swapped pairs: AUROC (mean of 2 seeds; whiskers: range)" --x-label "AUROC"
  plot curves --out "$OUT/ablation-abstention-by-step.svg" --key mismatch_score_clean --key mismatch_score_mismatched \
    --run "centred=$A/halo-centred-seed0" --run "bootstrap=$A/halo-centred-smoothing-bootstrap-seed0" \
    --title "Mean abstention in training batches (20% swapped, seed 0)"
  plot curves --out "$OUT/ablation-gamma.svg" --key gamma --run "reference=$A/halo-reference-seed0" \
    --run "centred=$A/halo-centred-seed0" --run "centred, log temperature=$A/halo-centred-logtemp-seed0" \
    --title "gamma (inverse temperature) during training (20%, seed 0)"
  plot curves --out "$OUT/ablation-mean-embedding.svg" --key image_mean_norm --key text_mean_norm \
    --run "reference=$A/halo-reference-seed0" \
    --title "Norm of the mean embedding, reference maths (20%, seed 0)"
  plot histogram --out "$OUT/ablation-scores-halo.svg" --table "$A/halo-centred-seed0/eval-train-noisy/pair_scores.tsv" \
    --value score "${MISMATCH[@]}" --log10 --x-label "log10 abstention probability (share of pairs per bin)" \
    --title "Centred HALO, final model: abstention by pair"
  plot histogram --out "$OUT/ablation-scores-infonce.svg" --table "$A/infonce-seed0/eval-train-noisy/pair_scores.tsv" \
    --value cosine_score "${MISMATCH[@]}" --x-label "1 - cosine of the pair (share of pairs per bin)" \
    --title "InfoNCE, final model: 1 - cosine by pair"
  plot histogram --out "$OUT/ablation-scores-bootstrap-early.svg" \
    --table "$A/halo-centred-smoothing-bootstrap-seed0/eval-train-noisy-early/pair_scores.tsv" \
    --value score "${MISMATCH[@]}" --x-label "abstention probability (share of pairs per bin)" \
    --title "Centred HALO + smoothing + bootstrap, step 100: abstention"
fi

if have "$HISTORY/table.tsv" "the history figures"; then
  for n in 20 40; do
    plot bars --out "$OUT/history-rejection-$n.svg" --table "$HISTORY/table.tsv" --label variant --where noise=$n \
      --value own_auroc --value cos_auroc --value dyn_own_auroc --value dyn_cos_auroc --from 0.5 \
      --name own_auroc="own score, final model" --name cos_auroc="cosine, final model" \
      --name dyn_own_auroc="own score, training dynamics" --name dyn_cos_auroc="cosine, training dynamics" \
      --title "Rejecting $n% swapped pairs: AUROC (mean of 2 seeds; whiskers: range)" --x-label "AUROC"
  done
  plot curves --out "$OUT/history-abstention-by-step.svg" --key mismatch_score_clean --key mismatch_score_mismatched \
    --run "centred=$HISTORY/mm20/halo-centred-seed0" --run "history=$HISTORY/mm20/halo-centred-history-seed0" \
    --title "Mean abstention in training batches (20% swapped, seed 0)"
  plot histogram --out "$OUT/history-scores-halo.svg" \
    --table "$HISTORY/mm20/halo-centred-history-seed0/eval-train-noisy/pair_scores.tsv" \
    --value score "${MISMATCH[@]}" --log10 --x-label "log10 abstention probability (share of pairs per bin)" \
    --title "Centred HALO, bootstrapped from the history, final model: abstention by pair"
fi

if have "$FILTERING/table.tsv" "the filtering figures"; then
  F=$FILTERING/mm20-seed0
  for scored in "step100:at step 100" "dynamics:by the training dynamics"; do
    tag=${scored%%:*}
    [[ -f $FILTERING/table-$tag.tsv ]] || continue
    plot bars --out "$OUT/filtering-retrieval-$tag.svg" --table "$FILTERING/table-$tag.tsv" --label swapped \
      --value r1 --series model --title "Scored ${scored#*:}, retrained on the kept 80%: R@1 (2 seeds)" \
      --x-label "R@1"
  done
  plot bars --out "$OUT/filtering-retrieval.svg" --table "$FILTERING/table.tsv" --label swapped --value r1 --series model \
    --title "Retrained on the kept 80%: Twitter-art R@1 (2 seeds; whiskers: range)" --x-label "R@1"
  plot histogram --out "$OUT/filtering-scores-halo.svg" --table "$F/filter-halo/scores.tsv" --value score \
    "${MISMATCH[@]}" --log10 --x-label "log10 abstention probability (share of pairs per bin)" \
    --title "Filter scores, HALO abstention (20% swapped, seed 0)"
  plot histogram --out "$OUT/filtering-scores-infonce.svg" --table "$F/filter-infonce-cosine/scores.tsv" --value score \
    "${MISMATCH[@]}" --x-label "filter score: 1 - cosine (share of pairs per bin)" \
    --title "Filter scores, InfoNCE cosine (20% swapped, seed 0)"
fi

if have "$CLASSIFY/halo-seed0/scores.tsv" "the classification figures" &&
   have "$CLASSIFY/ce-seed0/scores.tsv" "the classification figures"; then
  SETS=(--group set --name test="Fashion-MNIST test (in distribution)" --name mnist="MNIST (far OOD)" --name emoji="emoji (colour OOD)")
  plot histogram --out "$OUT/classify-ood-halo.svg" --table "$CLASSIFY/halo-seed0/scores.tsv" --value ood_score \
    "${SETS[@]}" --x-label "abstain probability (share of images per bin)" \
    --title "HALO classifier: abstain probability by set (seed 0)"
  plot histogram --out "$OUT/classify-ood-ce.svg" --table "$CLASSIFY/ce-seed0/scores.tsv" --value ood_score \
    "${SETS[@]}" --x-label "1 - max softmax probability (share of images per bin)" \
    --title "Cross-entropy classifier: 1 - max softmax prob. (seed 0)"
fi

if have "$SPEED/results.tsv" "the speed figures"; then
  # results.tsv holds lines "RESULT side measurement value unit"; the chart wants a header.
  table=$(mktemp)
  trap 'rm -f "$table"' EXIT
  awk 'BEGIN {
         print "side\tmeasurement\tvalue\tunit"
         split("train=whole training loop;step=training step alone;pipeline_workers_1=1 worker;" \
               "pipeline_workers_2=2 workers;phase_encode=forward of both towers;phase_loss=HALO loss forward;" \
               "phase_backward=backward;phase_clip=gradient clipping;phase_adamw=AdamW", pairs, ";")
         for (i in pairs) { split(pairs[i], kv, "="); name[kv[1]] = kv[2] }
       }
       $1 == "RESULT" { print $2 "\t" ($3 in name ? name[$3] : $3) "\t" $4 "\t" $5 }' "$SPEED/results.tsv" > "$table"
  plot bars --out "$OUT/speed-steps.svg" --table "$table" --label measurement --value value --series side \
    --where unit=steps/s --title "Training steps per second (mean of the runs; whiskers: range)" \
    --x-label "steps/s (higher is faster)"
  plot bars --out "$OUT/speed-pipeline.svg" --table "$table" --label measurement --value value --series side \
    --where unit=images/s --title "Data pipeline, images per second" --x-label "images/s (higher is faster)"
  plot bars --out "$OUT/speed-phases.svg" --table "$table" --label measurement --value value --series side \
    --where unit=ms/step --title "Where a training step's time goes" --x-label "ms per step (lower is faster)"
fi
echo "plots: $OUT"
