#!/usr/bin/env bash
# One prepared command for the bare GPU machine: builds halo-clip with CUDA and NCCL against the
# machine's PyTorch (dependencies from the carried .gpu-debs), runs the CUDA tests, the loss
# benchmark and a ViT-B/16 training smoke, and appends every result to one file under $OUT.
set -uo pipefail  # no -e: a failed step is recorded and the next one still runs

usage() {
  cat <<'EOF'
Usage: scripts/gpu_check.sh [--dry-run] [--out DIR] [--debs DIR] [--build-dir DIR]
                            [--skip-build] [--budget-s S]

On the GPU machine (one H100/H200, CUDA 13, PyTorch 2.11 at /opt/torch/.venv, no package
registry), from the repository root, with .gpu-debs/ made by scripts/fetch_gpu_debs.sh:
  1. unpacks the .debs into BUILD/deps with dpkg -x (never into /) and writes a small
     OpenCVConfig.cmake for OpenCV core/imgproc/imgcodecs;
  2. configures and builds (Release, CUDA kernels for sm_90, NCCL) against the LibTorch of
     `python3 -c 'import torch;print(torch.utils.cmake_prefix_path)'`;
  3. records `halo-clip info` and runs the CUDA tests (TiledCuda.*: ATen tiles and the kernels
     against dense, fp32 and bf16, odd shapes) and the rendezvous tests (DistGroup.*);
  4. bench_kernel --device cuda, N in {4096, 16384, 65536, 262144}, D = 512, bf16 and fp32,
     tiled, kernel and dense (dense where it fits), each checked against dense first;
  5. a training smoke: configs/vit-b16.yaml, bf16, `halo-clip launch --nproc-per-node 1` with
     dist.backend=nccl (a real NCCL group of one), on generated images: finds the largest global
     batch that fits (1024, 512, 256, ...: 2 steps each), then 50 steps; images/s and peak GPU
     memory (nvidia-smi, sampled every 0.5 s).
Everything is appended to OUT/gpu_check.md (logs of each step in OUT/logs/). Steps that would
overrun the budget are skipped and said so. Exit status: 0 when every step passed.

--dry-run runs the same steps on the CPU with small shapes, without CUDA and without building:
it uses an existing host build (--build-dir, default build/), unpacks .gpu-debs only when it is
there, uses dist.backend=gloo and reads peak memory from /proc. The test suite runs it this way.

Options:
  --dry-run        the CPU rehearsal described above
  --out DIR        results folder (default: $OUT, else runs/gpu_check)
  --debs DIR       the downloaded packages (default: .gpu-debs)
  --build-dir DIR  build folder (default: build-gpu; with --dry-run: build)
  --skip-build     reuse the build folder as it is (after a first run)
  --budget-s S     overall time budget in seconds (default: 480)
  -h, --help       this text
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
dry_run=0
out_dir=${OUT:-}
debs="$root/.gpu-debs"
build_dir=""
skip_build=0
budget_s=480
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    --out) out_dir=$2; shift 2 ;;
    --debs) debs=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --budget-s) budget_s=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$out_dir" ]] || out_dir="$root/runs/gpu_check"
if [[ -z "$build_dir" ]]; then
  if [[ $dry_run -eq 1 ]]; then build_dir="$root/build"; else build_dir="$root/build-gpu"; fi
fi
mkdir -p "$out_dir/logs" || exit 1
out_dir=$(cd "$out_dir" && pwd)
build_dir=$(mkdir -p "$build_dir" && cd "$build_dir" && pwd -P)
results="$out_dir/gpu_check.md"
halo_clip="$build_dir/halo-clip"
logs="$out_dir/logs"
work="$out_dir/work"  # generated data and runs (rewritten each time)
start_s=$(date +%s)
deadline_s=$((start_s + budget_s))
failures=0
summary=()

# ---- helpers --------------------------------------------------------------------------------
say() { printf '%s\n' "$*" | tee -a "$results"; }
elapsed() { echo $(($(date +%s) - start_s)); }
left_s() { echo $((deadline_s - $(date +%s))); }
record() {  # record STEP STATUS DETAIL
  summary+=("| $1 | $2 | $3 |")
  [[ "$2" == FAIL ]] && failures=$((failures + 1))
  say "- **$1**: $2${3:+ ($3)} at $(elapsed) s"
}
# run_step NAME TIMEOUT_S COMMAND...: runs with a timeout (never past the budget), output to
# logs/NAME.log and the last lines into the results; returns the command's status.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left
  left=$(left_s)
  if [[ $left -lt 10 ]]; then
    record "$name" SKIP "out of time budget"
    return 125
  fi
  [[ $limit -le $left ]] || limit=$left
  local t0 status
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$logs/$name.log" 2>&1
  status=$?
  {
    echo ""
    echo "### $name ($(($(date +%s) - t0)) s, exit $status)"
    echo '```'
    echo "\$ $*"
    tail -n 40 "$logs/$name.log"
    echo '```'
  } >> "$results"
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    record "$name" FAIL "timed out after $limit s"
  elif [[ $status -ne 0 ]]; then
    record "$name" FAIL "exit $status, logs/$name.log"
  fi
  return $status
}

# Unpacks one .deb into a folder (dpkg-deb where there is one, else ar + tar).
unpack_deb() {
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$2"
  else
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1" && tar -xf data.tar.* -C "$2")
    local s=$?
    rm -rf "$tmp"
    return $s
  fi
}

# Background sampler of peak memory: GPU memory.used (nvidia-smi) or the summed RSS of the
# halo-clip processes (dry run), the maximum written to FILE in MiB.
sample_memory() {
  local file=$1 peak=0 now
  echo 0 > "$file"
  while :; do
    if [[ $dry_run -eq 0 ]]; then
      now=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc '0-9')
    else
      now=0
      for d in /proc/[0-9]*; do  # the launcher and its workers (started through /proc/self/exe)
        [[ "$(readlink "$d/exe" 2>/dev/null)" == "$halo_clip" ]] || continue
        now=$((now + $(awk '/^VmRSS:/ { print int($2 / 1024) }' "$d/status" 2>/dev/null || echo 0)))
      done
    fi
    if [[ -n "$now" && "$now" -gt "$peak" ]]; then peak=$now; echo "$peak" > "$file"; fi
    sleep 0.5
  done
}

# ---- 0. the machine ---------------------------------------------------------------------------
{
  echo ""
  echo "## gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)$([[ $dry_run -eq 1 ]] && echo ' (dry run on the CPU)')"
  echo ""
  echo "- host: $(uname -n), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  if command -v git >/dev/null && git -C "$root" rev-parse HEAD >/dev/null 2>&1; then
    echo "- commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD || echo ' (with local changes)')"
  fi
} >> "$results"
echo "gpu_check: results in $results"
if [[ $dry_run -eq 0 ]]; then
  say "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
  python=/opt/torch/.venv/bin/python3
  [[ -x "$python" ]] || python=python3
  torch_prefix=$("$python" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  torch_version=$("$python" -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null)
  say "- PyTorch: ${torch_version:-not found} ($python), CMake prefix ${torch_prefix:-?}"
  export PATH="/usr/local/cuda/bin:$PATH"
  say "- nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo missing); cmake: $(cmake --version 2>/dev/null | head -1 || echo missing); c++: $(c++ --version 2>/dev/null | head -1 || echo missing)"
  say "- glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null); packages need: $(sed -n 's/^# newest glibc symbol version needed: //p' "$debs/MANIFEST" 2>/dev/null)"
  if [[ -z "$torch_prefix" ]] || ! command -v cmake >/dev/null || ! command -v nvcc >/dev/null; then
    record preflight FAIL "needs python3 with torch, cmake and nvcc"
  fi
fi

# ---- 1. the Debian packages into a prefix ------------------------------------------------------
deps="$build_dir/deps"
libs="$deps/libs"  # one folder of links to every library, stubs included
if [[ -d "$debs/debs" ]]; then
  t0=$(date +%s)
  rm -rf "$deps" && mkdir -p "$libs"
  unpack_ok=1
  for d in "$debs"/debs/*.deb; do unpack_deb "$d" "$deps" || { unpack_ok=0; echo "failed: $d"; }; done > "$logs/unpack.log" 2>&1
  # The real libraries (BLAS/LAPACK live in Debian's alternatives folders), then the stubs. A
  # library the machine already has (ldconfig) is left to the machine's copy.
  host_libs=$(ldconfig -p 2>/dev/null | awk '/x86-64/ { print $1 }')
  kept=0 host=0
  for f in "$deps"/usr/lib/x86_64-linux-gnu/*.so* "$deps"/lib/x86_64-linux-gnu/*.so* \
           "$deps"/usr/lib/x86_64-linux-gnu/blas/*.so* "$deps"/usr/lib/x86_64-linux-gnu/lapack/*.so* \
           "$debs"/stubs/*.so*; do
    [[ -e "$f" ]] || continue
    name=$(basename "$f")
    if [[ "$name" == *.so.* ]] && grep -qx "$name" <<<"$host_libs" && [[ "$f" != "$debs"/stubs/* ]]; then
      host=$((host + 1)); continue
    fi
    [[ -e "$libs/$name" ]] || { ln -s "$f" "$libs/$name"; kept=$((kept + 1)); }
  done
  opencv_lib="$deps/usr/lib/x86_64-linux-gnu"
  mkdir -p "$deps/opencv"
  cat > "$deps/opencv/OpenCVConfig.cmake" <<EOF
# Written by scripts/gpu_check.sh: OpenCV core, imgproc and imgcodecs from the unpacked Debian
# packages (Debian's own OpenCVConfig.cmake wants every OpenCV module installed).
set(OpenCV_VERSION 4.6.0)
set(OpenCV_INCLUDE_DIRS "$deps/usr/include/opencv4")
set(OpenCV_LIBS "$opencv_lib/libopencv_core.so;$opencv_lib/libopencv_imgproc.so;$opencv_lib/libopencv_imgcodecs.so")
set(OpenCV_FOUND TRUE)
EOF
  missing=""
  for f in libopencv_imgcodecs.so libyaml-cpp.so libsentencepiece.so libgtest.a; do
    [[ -e "$opencv_lib/$f" ]] || missing+=" $f"
  done
  if [[ $unpack_ok -eq 1 && -z "$missing" ]]; then
    record unpack PASS "$(ls "$debs"/debs/*.deb | wc -l) .debs into $deps in $(($(date +%s) - t0)) s; $kept libraries linked, $host left to the machine's copies"
  else
    record unpack FAIL "missing:$missing; see logs/unpack.log"
  fi
elif [[ $dry_run -eq 1 ]]; then
  record unpack SKIP "no $debs (scripts/fetch_gpu_debs.sh makes it); the dry run uses the host's packages"
else
  record unpack FAIL "no $debs: run scripts/fetch_gpu_debs.sh where Debian's registry is reachable and carry the folder"
fi

# ---- 2. configure and build ---------------------------------------------------------------------
if [[ $dry_run -eq 1 ]]; then
  if [[ -x "$build_dir/halo-clip" && -x "$build_dir/halo_tests" && -x "$build_dir/bench_kernel" ]]; then
    record build SKIP "dry run: uses the host build in $build_dir"
  else
    record build FAIL "dry run needs a host build with tests in $build_dir (scripts/build.sh -DHALO_BUILD_TESTS=ON)"
  fi
elif [[ $skip_build -eq 1 ]]; then
  record build SKIP "--skip-build: using $build_dir as it is"
else
  export CPLUS_INCLUDE_PATH="$deps/usr/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
  export LIBRARY_PATH="$libs${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export TORCH_CUDA_ARCH_LIST=9.0 CUDACXX=/usr/local/cuda/bin/nvcc
  # DT_RPATH (not RUNPATH): the executables' search path then also serves the libraries they
  # load (imgcodecs -> libjpeg, ...), without LD_LIBRARY_PATH.
  link_flags="-Wl,--disable-new-dtags -Wl,-rpath-link,$libs"
  if run_step configure 180 cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
      -DHALO_BUILD_TESTS=ON -DHALO_WERROR=OFF -DHALO_CUDA_ARCHITECTURES=90 \
      "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr;$deps/usr/lib/x86_64-linux-gnu/cmake" \
      "-DOpenCV_DIR=$deps/opencv" "-DCMAKE_BUILD_RPATH=$libs" \
      "-DCMAKE_EXE_LINKER_FLAGS=$link_flags" "-DCMAKE_SHARED_LINKER_FLAGS=$link_flags" \
      "-DCMAKE_MODULE_LINKER_FLAGS=$link_flags"; then
    if grep -q "CUDA loss kernels compiled and used" "$logs/configure.log" &&
       grep -q "USE_C10D_NCCL" "$build_dir"/CMakeFiles/halo.dir/flags.make 2>/dev/null; then
      record configure PASS "CUDA kernels and NCCL on"
    else
      record configure FAIL "configured without the CUDA kernels or without NCCL (logs/configure.log)"
    fi
    if run_step build 300 cmake --build "$build_dir" -j "$(nproc)" --target halo-clip halo_tests bench_kernel; then
      record build PASS "$(grep -c 'warning:' "$logs/build.log") compiler warnings"
    fi
  fi
fi

# ---- 3. info and the CUDA tests ------------------------------------------------------------------
if run_step info 60 "$build_dir/halo-clip" info; then
  record info PASS "$(grep 'rendezvous store' "$logs/info.log")"
fi
filter='TiledCuda.*:DistGroup.*'
[[ $dry_run -eq 1 ]] && filter='TiledCuda.*'  # the rest already ran in the suite on the CPU
if run_step cuda_tests 240 "$build_dir/halo_tests" "--gtest_filter=$filter"; then
  record cuda_tests PASS "$(grep -E '^\[  PASSED  \]|SKIPPED \]' "$logs/cuda_tests.log" | head -2 | tr '\n' ' ')"
fi

# ---- 4. the loss benchmark ------------------------------------------------------------------------
if [[ $dry_run -eq 1 ]]; then
  bench=("$build_dir/bench_kernel" --device cpu --sizes 96,160 --dims 32 --dtypes fp32,bf16
         --impls tiled,dense --tile 64 --check-full-max-n 96 --check-rows 32 --repeats 1 --warmup 0)
else
  bench=("$build_dir/bench_kernel" --device cuda --sizes 4096,16384,65536,262144 --dims 512
         --dtypes bf16,fp32 --check-rows 1024 --max-case-s 10 --skip-projected-s 45 --repeats 3)
fi
if run_step bench_kernel 200 "${bench[@]}"; then
  record bench_kernel PASS "$(grep -c 'checked:' "$logs/bench_kernel.log") cases checked against dense and timed"
fi

# ---- 5. the training smoke: ViT-B/16, bf16, world size 1 through the launcher ----------------------
rm -rf "$work" && mkdir -p "$work/data/img"
if [[ $dry_run -eq 1 ]]; then
  n_images=64 size=32 steps=5 log_every=1 batches="32 16" backend=gloo device=cpu
  # The same preset, shrunk to CPU size.
  shape=(--set model.embed_dim=32 --set model.image.image_size=32 --set model.image.patch_size=16
         --set model.image.width=64 --set model.image.layers=1 --set model.image.heads=2
         --set model.text.context_length=16 --set model.text.width=64 --set model.text.layers=1
         --set model.text.heads=2 --set tokenizer.vocab_size=40 --set data.workers=2)
  precision=fp32
  "$build_dir/halo-clip" info 2>/dev/null | grep -Eq '^bf16 autocast: (cuda, )?cpu$' && precision=bf16
else
  n_images=2048 size=160 steps=50 log_every=5 batches="1024 768 512 384 256 128" backend=nccl device=cuda
  shape=(--set tokenizer.vocab_size=1000)
  precision=bf16
fi
# Generated images: random colour noise (binary PPM, which OpenCV reads natively), one caption each.
words=(red green blue yellow round square tall small striped dotted)
{
  printf 'image_path\tcaption\n'
  for ((i = 0; i < n_images; i++)); do
    { printf 'P6\n%d %d\n255\n' "$size" "$size"; head -c $((size * size * 3)) /dev/urandom; } > "$work/data/img/$i.ppm"
    printf 'img/%d.ppm\ta %s %s thing number %d\n' "$i" "${words[i % 10]}" "${words[(i / 10) % 10]}" "$i"
  done
} > "$work/data/manifest.tsv"
train_cmd() {  # train_cmd RUN_DIR BATCH STEPS: sets the array `cmd`
  cmd=("$build_dir/halo-clip" launch --nproc-per-node 1 --standalone -- train
       --config "$root/configs/vit-b16.yaml" --set "data.train_manifest=$work/data/manifest.tsv"
       --set "train.run_dir=$1" --set "train.batch_size=$2" --set "train.max_steps=$3"
       --set "train.log_every=$log_every" --set train.checkpoint_every=100000 --set "train.precision=$precision"
       --set "train.device=$device" --set "dist.backend=$backend" --set train.pair_dynamics=false
       "${shape[@]}" "${tokenizer_set[@]}")
}
batch=""
tokenizer_set=()
for b in $batches; do
  train_cmd "$work/probe_$b" "$b" 2
  run_step "train_probe_$b" 180 "${cmd[@]}"
  status=$?
  if [[ $status -eq 0 ]]; then
    batch=$b
    record "train_probe_$b" PASS "global batch $b fits"
    break
  fi
  [[ $status -eq 125 ]] && break
  grep -qi "out of memory" "$logs/train_probe_$b.log" || break  # another failure: stop probing
  say "  (batch $b does not fit: out of memory)"
  [[ -f "$work/probe_$b/tokenizer.model" ]] && tokenizer_set=(--set "tokenizer.model=$work/probe_$b/tokenizer.model")
done
if [[ -n "$batch" ]]; then
  [[ -f "$work/probe_$batch/tokenizer.model" ]] && tokenizer_set=(--set "tokenizer.model=$work/probe_$batch/tokenizer.model")
  sample_memory "$work/peak_mib" &
  sampler=$!
  train_cmd "$work/smoke" "$batch" "$steps"
  run_step train_smoke 240 "${cmd[@]}"
  status=$?
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  if [[ $status -eq 0 ]]; then
    # images/s of the logged windows after the first (warm-up), and the peak memory sampled.
    ips=$(awk -F'"images_per_s": ' 'NR > 1 && NF > 1 { split($2, v, /[,}]/); s += v[1]; n++ } END { if (n) printf "%.1f", s / n; else print "?" }' "$work/smoke/metrics.jsonl")
    peak=$(cat "$work/peak_mib")
    what=$([[ $dry_run -eq 1 ]] && echo "host RSS of the halo-clip processes" || echo "GPU memory used (nvidia-smi)")
    record train_smoke PASS "ViT-B/16 preset, $precision, $backend world size 1, global batch $batch, $steps steps: $ips images/s (mean of the logged windows after the first), peak $what $peak MiB"
  fi
else
  record train_smoke FAIL "no global batch in {$batches} trained (see the probe logs)"
fi

# ---- summary ---------------------------------------------------------------------------------------
{
  echo ""
  echo "### summary ($(elapsed) s of the $budget_s s budget)"
  echo ""
  echo "| step | status | detail |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${summary[@]}"
} >> "$results"
echo "gpu_check: $failures failed step(s) in $(elapsed) s; results in $results"
[[ $failures -eq 0 ]]
