#!/usr/bin/env bash
# A global batch of 65,536 pairs on this machine: the tiny preset with the tiled loss and exact
# gradient accumulation (micro-batches of 1,024), next to the same preset at 4,096 without
# accumulation. The training set repeats the Google emoji art under new keys until it holds
# one batch. Prints, per run, the seconds per step (from metrics.jsonl) and the peak resident
# memory of the process (GNU time). docs/training.md, "Big batches", has the figures.
#
# Environment: STEPS (steps per run, default 2), OUT (folder, default runs/big-batch),
# BATCHES (default "65536:64 4096:1", each GLOBAL:ACCUM_STEPS).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-2}
OUT=${OUT:-runs/big-batch}
BATCHES=${BATCHES:-"65536:64 4096:1"}
H=build/halo-clip
SOURCE=data/prepared/emoji-google-mm20

[[ -x $H ]] || scripts/build.sh -DHALO_BUILD_TESTS=OFF
if [[ ! -f $SOURCE/manifest.tsv ]]; then
  scripts/fetch_data.sh --only emoji
  $H prepare emoji --style google --source data/raw/emoji-google --out $SOURCE --mismatch-fraction 0.2 --seed 0
fi
[[ -x /usr/bin/time ]] || { echo "big_batch.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
mkdir -p "$OUT"

largest=0
for spec in $BATCHES; do (( ${spec%%:*} > largest )) && largest=${spec%%:*}; done
# The repeated set: every row of the source again under a new key (its own manifest row), the
# same image files, until there are $largest rows.
manifest=$OUT/manifest.tsv
awk -F'\t' -v OFS='\t' -v want="$largest" -v src="$(realpath $SOURCE)" '
  NR == 1 { print; next }
  { rows[++n] = $0 }
  END {
    for (i = 0; i < want; ++i) {
      split(rows[i % n + 1], f, "\t"); f[1] = src "/" f[1]
      line = f[1]; for (k = 2; k in f; ++k) line = line OFS f[k]; print line
    }
  }' $SOURCE/manifest.tsv > "$manifest.tmp"
mv "$manifest.tmp" "$manifest"
echo "training set: $(( $(wc -l < "$manifest") - 1 )) pairs in $manifest"

for spec in $BATCHES; do
  batch=${spec%%:*} accum=${spec##*:}
  run=$OUT/batch-$batch-accum-$accum
  rm -rf "$run"
  echo "==== global batch $batch, accum_steps $accum (micro-batch $(( batch / accum ))), $STEPS steps"
  /usr/bin/time -f "peak RSS %M KiB, wall %e s" -o "$run.time" \
    $H train --config configs/tiny.yaml --set "data.train_manifest=$manifest" --set "train.run_dir=$run" \
      --set train.batch_size=$batch --set train.accum_steps=$accum --set loss.implementation=tiled \
      --set train.max_steps=$STEPS --set train.log_every=1 --set train.checkpoint_every=1000000 \
      --set data.prefetch_batches=1
  last() { grep -o "\"$1\": [0-9.]*" "$run/metrics.jsonl" | tail -1 | awk '{printf "%.1f", $2 / 1000}'; }
  echo "RESULT batch $batch accum $accum: last step $(last step_ms) s, then pair dynamics $(last dynamics_ms) s;" \
    "data wait and the rest in the wall time; $(cat "$run.time")"
done
