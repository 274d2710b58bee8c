#!/usr/bin/env bash
# Configures and builds halo-clip into build/ (Release, warnings as errors). Extra arguments
# go to cmake's configure step, e.g. scripts/build.sh -DHALO_BUILD_TESTS=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHALO_WERROR=ON "$@" >/dev/null
cmake --build build -j "$jobs"
