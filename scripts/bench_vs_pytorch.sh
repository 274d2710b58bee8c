#!/usr/bin/env bash
# Speed of halo-clip against the same training written in PyTorch (scripts/bench_vs_pytorch.py),
# in one command: installs what is missing, builds, fetches and prepares the emoji training set,
# then runs both sides alternately with the same threads and prints one table of training steps
# per second and data-pipeline images per second, with the ratio halo-clip / PyTorch, and a
# second one of where each side spends its time (pipeline stages, step phases).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/bench_vs_pytorch.sh [--reps N] [--threads N] [--device cpu|cuda] [--python PATH]
                                   [--out DIR] [--no-install] [--no-build] [--cmake ARG ...] [--config FILE]
                                   [--precision fp32|bf16] [--compile] [--only LIST]
                                   [--pytorch-malloc same|default]

Runs, REPS times and alternating which side goes first:
  halo-clip  build/bench_pipeline (data pipeline alone, training step alone) and
             build/halo-clip train (the whole training loop, timed from metrics.jsonl)
  PyTorch    scripts/bench_vs_pytorch.py (the same three measurements), eager, and with
             --compile also with both towers through torch.compile (a third side)
on a preset (default configs/tiny.yaml: ViT 3 x 96 on 32 px, text 2 x 96, D = 64, batch 128,
HALO loss, AdamW; configs/small.yaml: ViT 4 x 128, text 3 x 128, D = 128, batch 256) trained
on the emoji Google art with 20% swapped captions (only the shapes matter for speed), then
prints the table (medians and ranges over the runs), the breakdown table and the load average
before and after.

What is timed, the same on both sides (untimed warm-up first):
  data pipeline  BATCHES batches of 128 after WARMUP, with 1..data.workers workers
                 (halo-clip: threads; PyTorch: DataLoader worker processes)
  step           STEPS steps on one fixed batch after WARMUP: forward, HALO loss, backward,
                 gradient clipping, AdamW
  train          steps TRAIN_WARMUP+1 .. TRAIN_STEPS of a TRAIN_STEPS-step run: loader, schedule,
                 step, logging diagnostics every train.log_every steps
  breakdown      (second table) the pipeline's stages one after the other on one thread, in
                 microseconds per image, and the step's phases, in milliseconds per step

options:
  --reps N        runs per side (default 5)
  --threads N     torch threads of both sides, also OMP_NUM_THREADS (default: all cores)
  --device D      cpu (default) or cuda: PyTorch and halo-clip both train on the GPU
  --python PATH   interpreter with torch, cv2, sentencepiece, numpy, yaml (default /usr/bin/python3)
  --out DIR       working folder (default runs/bench-vs-pytorch); results.txt is written there
  --no-install    do not call apt-get (e.g. on a machine without a package registry)
  --no-build      use build/ as it is (it must hold halo-clip and bench_pipeline)
  --cmake ARG     extra argument for scripts/build.sh (repeatable), e.g. on the GPU machine
                  --cmake -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  --config FILE   the preset (default configs/tiny.yaml)
  --precision P   train.precision of both sides: fp32 (default) or bf16 (autocast of the towers;
                  on the CPU it needs LibTorch/PyTorch 2.x)
  --compile       also time PyTorch with torch.compile on both towers (PyTorch 2.x)
  --only LIST     measurements, a comma-separated subset of pipeline,step,train (default: all)
  --pytorch-malloc M  same (default): PyTorch runs with halo-clip's malloc settings, given as
                  GLIBC_TUNABLES (src/common/allocator.h), so the table compares the code;
                  default: PyTorch at glibc's defaults, as a user gets it
environment: BATCHES (default 20), STEPS (20), WARMUP (2), TRAIN_STEPS (60), TRAIN_WARMUP (10);
  OMP_WAIT_POLICY (default PASSIVE: idle OpenMP threads sleep instead of spinning, which keeps
  both sides usable on a shared, busy machine; set ACTIVE for OpenMP's spinning).
Before timing, the PyTorch loss is checked against halo-clip's golden cases (tests/fixtures).
EOF
}

REPS=5
CORES=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS
THREADS=$CORES
DEVICE=cpu
PYTHON=/usr/bin/python3
OUT=runs/bench-vs-pytorch
INSTALL=1
BUILD=1
CMAKE_ARGS=(-DHALO_BUILD_TESTS=OFF)
PRESET=configs/tiny.yaml
PRECISION=fp32
COMPILE=0
ONLY=pipeline,step,train
PYTORCH_MALLOC=same
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --reps) REPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --cmake) CMAKE_ARGS+=("$2"); shift 2 ;;
    --config) PRESET=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    --compile) COMPILE=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --pytorch-malloc) PYTORCH_MALLOC=$2; shift 2 ;;
    *) echo "bench_vs_pytorch: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f $PRESET ]] || { echo "bench_vs_pytorch: --config $PRESET: no such file" >&2; exit 2; }
[[ $PRECISION == fp32 || $PRECISION == bf16 ]] ||
  { echo "bench_vs_pytorch: --precision must be fp32 or bf16, got '$PRECISION'" >&2; exit 2; }
[[ $PYTORCH_MALLOC == same || $PYTORCH_MALLOC == default ]] ||
  { echo "bench_vs_pytorch: --pytorch-malloc must be same or default, got '$PYTORCH_MALLOC'" >&2; exit 2; }
BATCHES=${BATCHES:-20}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-2}
TRAIN_STEPS=${TRAIN_STEPS:-60}
TRAIN_WARMUP=${TRAIN_WARMUP:-10}
LOG_EVERY=10  # configs/tiny.yaml; the train window is read from metrics.jsonl at logging steps
if (( TRAIN_WARMUP % LOG_EVERY != 0 || TRAIN_STEPS % LOG_EVERY != 0 || TRAIN_WARMUP >= TRAIN_STEPS )); then
  echo "bench_vs_pytorch: TRAIN_WARMUP and TRAIN_STEPS must be multiples of $LOG_EVERY, TRAIN_WARMUP < TRAIN_STEPS" >&2
  exit 2
fi
H=build/halo-clip
P=data/prepared
MANIFEST=$P/emoji-google-mm20/manifest.tsv
step() { printf '\n==== %s\n' "$*"; }

# ---- install, build, data ---------------------------------------------------------------------
if (( INSTALL )); then
  step "install what is missing"
  scripts/setup.sh
  PY_PACKAGES=(python3-torch python3-opencv python3-sentencepiece python3-numpy python3-yaml)
  missing=()
  for p in "${PY_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "bench_vs_pytorch: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

if (( BUILD )); then
  step "build"
  scripts/build.sh "${CMAKE_ARGS[@]}"
fi
[[ -x $H && -x build/bench_pipeline ]] || { echo "bench_vs_pytorch: $H or build/bench_pipeline is missing" >&2; exit 1; }

step "fetch and prepare the emoji training set, train the tokenizer"
scripts/fetch_data.sh --only emoji-google
[[ -f $MANIFEST ]] || $H prepare emoji --style google --source data/raw/emoji-google \
  --out $P/emoji-google-mm20 --mismatch-fraction 0.2 --seed 0
mkdir -p "$OUT"
TOKENIZER=$OUT/tokenizer.model
[[ -f $TOKENIZER ]] || $H tokenizer train --manifest $MANIFEST --out "$OUT/tokenizer" --vocab-size 1000

# One resolved configuration read by both sides (the reference HALO model: the Python side does
# not mirror the embedding centring that the preset switches on).
CONFIG=$OUT/config.yaml
$H train --config "$PRESET" --set model.center_embeddings=false --set "train.precision=$PRECISION" \
  --set "data.train_manifest=$MANIFEST" --set train.eval_manifest= --set "tokenizer.model=$TOKENIZER" \
  --set "train.run_dir=$OUT/train" --set "train.max_steps=$TRAIN_STEPS" --set "train.log_every=$LOG_EVERY" \
  --set train.checkpoint_every=1000000 --set "train.device=$DEVICE" --dump-config > "$CONFIG"
PARAMS=$(build/bench_pipeline --config "$CONFIG" --tokenizer "$TOKENIZER" --count-params)
"$PYTHON" scripts/bench_vs_pytorch.py --check-loss tests/fixtures

# ---- the runs ---------------------------------------------------------------------------------
export OMP_NUM_THREADS=$THREADS
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
RESULTS=$OUT/results.tsv
LOGS=$OUT/logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
: > "$RESULTS"

has() { [[ ",$ONLY," == *",$1,"* ]]; }
PIPELINE_FLAGS=(); has pipeline || PIPELINE_FLAGS=(--step-only)
# halo-clip's malloc settings (src/common/allocator.h) as glibc tunables, for the PyTorch side.
SAME_MALLOC=glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647

run_halo_clip() {  # $1: run number
  local log=$LOGS/halo-clip-$1.txt
  if has pipeline || has step; then
    build/bench_pipeline --config "$CONFIG" --tokenizer "$TOKENIZER" --batches "$BATCHES" --steps "$STEPS" \
      --warmup "$WARMUP" --breakdown "${PIPELINE_FLAGS[@]}" > "$log"
    "$PYTHON" scripts/bench_vs_pytorch.py --read-bench-pipeline "$log" >> "$RESULTS"
  fi
  if has train; then
    rm -rf "$OUT/train"
    $H train --config "$CONFIG" > "$LOGS/halo-clip-train-$1.txt" 2>&1
    "$PYTHON" scripts/bench_vs_pytorch.py --read-metrics "$OUT/train/metrics.jsonl" \
      --train-warmup "$TRAIN_WARMUP" --train-steps "$TRAIN_STEPS" >> "$RESULTS"
  fi
}

run_pytorch() {  # $1: run number, $2: empty or --compile
  local log=$LOGS/pytorch$2-$1.txt env=()
  [[ $PYTORCH_MALLOC == same ]] && env=(env "GLIBC_TUNABLES=$SAME_MALLOC")
  "${env[@]}" "$PYTHON" scripts/bench_vs_pytorch.py --config "$CONFIG" --tokenizer "$TOKENIZER" \
    --expect-params "$PARAMS" --device "$DEVICE" --threads "$THREADS" --batches "$BATCHES" --steps "$STEPS" \
    --warmup "$WARMUP" --train-steps "$TRAIN_STEPS" --train-warmup "$TRAIN_WARMUP" --breakdown \
    --only "$ONLY" $2 > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
  grep '^RESULT' "$log" >> "$RESULTS"
}

run_pytorch_sides() {  # $1: run number
  run_pytorch "$1" ""
  if (( COMPILE )); then run_pytorch "$1" --compile; fi
}

step "$REPS runs per side, alternating, $THREADS threads, device $DEVICE"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
for ((r = 1; r <= REPS; r++)); do
  if (( r % 2 == 1 )); then run_halo_clip "$r"; run_pytorch_sides "$r"; else run_pytorch_sides "$r"; run_halo_clip "$r"; fi
  echo "run $r of $REPS done ($(( $(date +%s) - START )) s, load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table --------------------------------------------------------------------------------
{
  echo "halo-clip against PyTorch: $PRESET ($("$PYTHON" -c "import yaml; c = yaml.safe_load(open('$CONFIG')); m = c['model']
print(f\"batch {c['train']['batch_size']}, {m['image']['image_size']} px ViT {m['image']['layers']} x {m['image']['width']}\"
      f\" (patch {m['image']['patch_size']}), text {m['text']['layers']} x {m['text']['width']}, D = {m['embed_dim']}\")")),"
  echo "HALO loss, AdamW, precision $PRECISION, on $CORES cores, $THREADS torch threads per side (OMP_WAIT_POLICY=$OMP_WAIT_POLICY), device $DEVICE"
  echo "PyTorch's malloc: $PYTORCH_MALLOC$([[ $PYTORCH_MALLOC == same ]] && echo " (GLIBC_TUNABLES=$SAME_MALLOC)")"
  echo "halo-clip: $("$H" info 2>/dev/null | grep -im1 'libtorch' | sed 's/^ *//')"
  echo "PyTorch:   $("$PYTHON" -c 'import torch; print(torch.__version__)') ($PYTHON)"
  echo "parameters: $PARAMS on both sides (checked)"
  echo "load average (1, 5, 15 min): before $LOAD_BEFORE, after $LOAD_AFTER"
  echo "timed: pipeline $BATCHES batches after $WARMUP; step $STEPS steps after $WARMUP;" \
    "train steps $((TRAIN_WARMUP + 1))-$TRAIN_STEPS of a $TRAIN_STEPS-step run"
  echo
  "$PYTHON" scripts/bench_vs_pytorch.py --table "$RESULTS"
} | tee "$OUT/results.txt"
