#!/usr/bin/env bash
# Builds halo-clip against LibTorch 2.x (Debian 13 "trixie": libtorch-dev 2.6, CPU) in a chroot
# under /var/tmp, with warnings as errors (scripts/build.sh), and runs the whole ctest suite there.
# Needs root. The chroot is made once (debootstrap, about 7 minutes with its packages) and reused.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/test_libtorch2.sh [--chroot DIR] [--recreate] [--setup-only] [--jobs N]
                                 [--ctest-args "ARGS"] [--bench "ARGS"]

Builds this checkout against Debian 13 ("trixie")'s LibTorch 2.6 inside a chroot and runs the
whole test suite there, as scripts/test.sh does on the host's LibTorch 1.13:
  1. makes the chroot (debootstrap --variant=minbase trixie, mirror from the URIs: line of
     /etc/apt/sources.list.d/debian.sources) or reuses it when its stamp file lists exactly the
     packages below; a chroot whose creation did not finish is deleted and made again;
  2. bind-mounts /proc, /sys, /dev (and /dev/pts, /dev/shm) and this checkout (read-only, at
     /halo/src) into it; a trap unmounts them whatever happens;
  3. configures and builds there into /halo/build-<id> (inside the chroot, kept for the next
     run) with scripts/build.sh (Release, -DHALO_WERROR=ON, tests on);
  4. runs ctest --output-on-failure there, or with --bench the speed comparison instead.

Options:
  --chroot DIR        where the chroot lives (default: $HALO_TRIXIE_CHROOT or /var/tmp/halo-trixie)
  --recreate          delete the chroot and make it again
  --setup-only        make (or check) the chroot, then stop: no build, no tests
  --jobs N            parallel compile jobs (default: nproc)
  --ctest-args ARGS   extra ctest arguments, e.g. "-R Dist" (default: none)
  --bench ARGS        instead of the suite, scripts/bench_vs_pytorch.sh --no-install ARGS against
                      Debian 13's PyTorch 2.6 on the same LibTorch (python3-torch and the
                      benchmark's Python packages are installed in the chroot on first use), in
                      a writable copy of this checkout's tracked files (/halo/bench-<id>, with the
                      emoji data of data/ when present here), with the build above (its tests
                      included) as build/; its results.txt and results.tsv files are
                      copied to runs/libtorch2/ here, under their paths in its runs/ (pass
                      --out runs/NAME to keep runs apart). E.g. --bench "--reps 3 --compile"
  -h, --help          this text

Environment: HALO_TRIXIE_MIRROR overrides the mirror. Exit status: ctest's (0: all passed).
EOF
}

root_dir=${HALO_TRIXIE_CHROOT:-/var/tmp/halo-trixie}
recreate=0
setup_only=0
jobs=$(nproc 2>/dev/null || echo 2)
ctest_args=""
bench_args=""
bench=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --chroot) root_dir=$2; shift 2 ;;
    --recreate) recreate=1; shift ;;
    --setup-only) setup_only=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --ctest-args) ctest_args=$2; shift 2 ;;
    --bench) bench=1; bench_args=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test_libtorch2: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

src_dir=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "test_libtorch2: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
[[ "$root_dir" == /* && "$root_dir" != / ]] || { echo "test_libtorch2: --chroot must be an absolute path" >&2; exit 2; }

# What the build needs inside (as scripts/setup.sh on the host).
PACKAGES=(build-essential cmake pkg-config libtorch-dev libopenblas0-openmp libgloo-dev
          libyaml-cpp-dev libsentencepiece-dev libopencv-dev libgtest-dev libgmock-dev
          libarchive-dev librsvg2-dev)
SUITE=trixie
STAMP="$root_dir/.halo-stamp"              # suite + package list, written when all is installed
BOOTSTRAPPED="$root_dir/.halo-bootstrapped"  # written when debootstrap finished
expected_stamp="suite=$SUITE packages=${PACKAGES[*]}"

log() { printf 'test_libtorch2: %s\n' "$*"; }
now() { date +%s; }
t_start=$(now)

# One run at a time per chroot (CI and a developer on the same machine).
exec 9>"$root_dir.lock"
flock -w 7200 9 || { echo "test_libtorch2: could not lock $root_dir.lock" >&2; exit 1; }

# ---- mounts, always undone --------------------------------------------------------------------
mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
  done
  mounted=()
  # Anything left under the chroot (an earlier run killed with SIGKILL): deepest first.
  local left
  left=$(awk -v r="$root_dir/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r)
  for m in $left; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
trap unmount_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unmount_all  # mounts an earlier run left when it was killed (we hold the lock: nobody uses them)

bind() {  # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  if [[ "${3:-}" == ro ]]; then mount -o remount,bind,ro "$2"; fi
}

remove_chroot() {
  unmount_all
  if awk -v r="$root_dir/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "test_libtorch2: something is still mounted under $root_dir; not deleting it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$root_dir"
}

mirror() {
  if [[ -n "${HALO_TRIXIE_MIRROR:-}" ]]; then echo "$HALO_TRIXIE_MIRROR"; return; fi
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

in_chroot() { chroot "$root_dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# ---- make or reuse the chroot -----------------------------------------------------------------
t_chroot=$(now)
if [[ $recreate -eq 1 || ( -e "$root_dir" && ! -f "$BOOTSTRAPPED" ) ]]; then
  [[ -e "$root_dir" ]] && log "deleting $root_dir (--recreate, or an unfinished debootstrap)"
  remove_chroot
fi
made=0
if [[ ! -f "$BOOTSTRAPPED" ]]; then
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  fi
  m=$(mirror)
  log "debootstrap --variant=minbase $SUITE $root_dir $m"
  mkdir -p "$root_dir"
  debootstrap --variant=minbase "$SUITE" "$root_dir" "$m" > "$root_dir.debootstrap.log" 2>&1 || {
    tail -20 "$root_dir.debootstrap.log" >&2; echo "test_libtorch2: debootstrap failed" >&2; exit 1; }
  touch "$BOOTSTRAPPED"
  made=1
fi
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$expected_stamp" ]]; then
  log "installing ${#PACKAGES[@]} packages in the chroot"
  cp /etc/resolv.conf "$root_dir/etc/resolv.conf"
  bind /proc "$root_dir/proc"
  rm -f "$STAMP"
  in_chroot apt-get update -qq
  in_chroot apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" > "$root_dir.apt.log" 2>&1 || {
    tail -20 "$root_dir.apt.log" >&2; echo "test_libtorch2: apt-get install in the chroot failed" >&2; exit 1; }
  in_chroot apt-get clean
  echo "$expected_stamp" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
  unmount_all
  made=1
fi
t_chroot_end=$(now)
if [[ $made -eq 1 ]]; then
  log "chroot ready in $((t_chroot_end - t_chroot)) s"
else
  log "reusing $root_dir ($(in_chroot dpkg-query -W -f='libtorch-dev ${Version}' libtorch-dev))"
fi

[[ $setup_only -eq 1 ]] && exit 0

# ---- mounts for the build and the tests -------------------------------------------------------
mkdir -p "$root_dir/proc" && mount -t proc proc "$root_dir/proc" && mounted+=("$root_dir/proc")
mkdir -p "$root_dir/sys" && mount -t sysfs sysfs "$root_dir/sys" && mounted+=("$root_dir/sys")
bind /dev "$root_dir/dev"
[[ -d /dev/pts ]] && bind /dev/pts "$root_dir/dev/pts"
[[ -d /dev/shm ]] && bind /dev/shm "$root_dir/dev/shm"
bind "$src_dir" "$root_dir/halo/src" ro

# One build folder per checkout path, kept inside the chroot for the next run.
build_id=$(printf '%s' "$src_dir" | sha1sum | cut -c1-12)
build_dir=/halo/build-$build_id

# ---- build (scripts/build.sh's flags: Release, warnings as errors) ----------------------------
t_build=$(now)
log "building $src_dir in the chroot ($build_dir, -j$jobs)"
in_chroot HALO_BUILD_DIR="$build_dir" HALO_BUILD_JOBS="$jobs" \
  bash /halo/src/scripts/build.sh -DHALO_BUILD_TESTS=ON
t_build_end=$(now)
log "build: $((t_build_end - t_build)) s"

# ---- or the speed comparison against PyTorch 2.x ----------------------------------------------
if [[ $bench -eq 1 ]]; then
  # setuptools and the Python headers: torch.compile's Inductor builds its C++ kernels with them.
  BENCH_PY=(python3-torch python3-opencv python3-sentencepiece python3-numpy python3-yaml
            python3-setuptools python3-dev)
  if ! in_chroot python3 -c 'import torch, cv2, sentencepiece, numpy, yaml, setuptools.command, sysconfig, os
assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null; then
    log "installing ${BENCH_PY[*]} in the chroot"
    cp /etc/resolv.conf "$root_dir/etc/resolv.conf"
    { in_chroot apt-get update -qq && in_chroot apt-get install -y -qq --no-install-recommends "${BENCH_PY[@]}"; } \
      > "$root_dir.apt-bench.log" 2>&1 || { tail -20 "$root_dir.apt-bench.log" >&2; exit 1; }
  fi
  work=/halo/bench-$build_id
  log "benchmark in $work: scripts/bench_vs_pytorch.sh --no-install --no-build $bench_args"
  mkdir -p "$root_dir$work"
  (cd "$src_dir" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$root_dir$work"
  for d in data/raw/emoji-google data/prepared/emoji-google-mm20; do
    [[ -d $src_dir/$d && ! -e $root_dir$work/$d ]] && mkdir -p "$root_dir$work/$(dirname $d)" &&
      cp -a "$(realpath "$src_dir/$d")" "$root_dir$work/$d"
  done
  ln -sfn "$build_dir" "$root_dir$work/build"
  status=0
  # shellcheck disable=SC2086  # bench_args is a list of words on purpose
  in_chroot bash -c "cd '$work' && HALO_BUILD_JOBS='$jobs' scripts/bench_vs_pytorch.sh --no-install --no-build $bench_args" || status=$?
  mkdir -p "$src_dir/runs/libtorch2"  # every results.txt / results.tsv under its runs/, same paths
  (cd "$root_dir$work/runs" && find . -name 'results.t[sx][vt]' -print0 | tar --null -T - -cf -) |
    tar -xf - -C "$src_dir/runs/libtorch2"
  log "benchmark: $(( $(now) - t_build_end )) s (status $status)"
  exit $status
fi

# ---- the whole suite --------------------------------------------------------------------------
t_test=$(now)
status=0
# shellcheck disable=SC2086  # ctest_args is a list of words on purpose
in_chroot bash -c "cd '$build_dir' && ctest --output-on-failure -j '$jobs' --timeout 600 $ctest_args" || status=$?
t_end=$(now)
log "tests: $((t_end - t_test)) s (status $status)"
log "total: $((t_end - t_start)) s (chroot $((t_chroot_end - t_chroot)) s, build $((t_build_end - t_build)) s, tests $((t_end - t_test)) s)"
exit $status
