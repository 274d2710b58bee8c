#!/usr/bin/env bash
# The main job on the built-in data. For now: installs, builds, and benchmarks the HALO batch
# loss against InfoNCE and SigLIP (forward+backward time and peak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DHALO_BUILD_TESTS=OFF
build/halo-clip abstain-bias --dim 512 --candidates 4096
build/bench_loss --sizes 256,1024,4096 --dim 512
