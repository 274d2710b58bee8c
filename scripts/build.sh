#!/usr/bin/env bash
# Configures and builds halo-clip into build/ (Release, warnings as errors). Extra arguments
# go to cmake's configure step, e.g. scripts/build.sh -DHALO_BUILD_TESTS=OFF.
# HALO_BUILD_DIR picks another build folder, HALO_BUILD_JOBS the parallel jobs (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${HALO_BUILD_DIR:-build}
jobs=${HALO_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHALO_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
