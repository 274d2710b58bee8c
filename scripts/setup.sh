#!/usr/bin/env bash
# Installs every Debian package halo-clip needs to build and test. Idempotent and
# non-interactive: it only calls apt-get when something is missing (update once, then install).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libtorch-dev          # LibTorch 1.13 (CPU)
  libopenblas0-openmp   # fast BLAS for LibTorch (the default reference BLAS is ~25x slower)
  libgloo-dev           # c10d's Gloo backend (multi-process on CPU)
  libyaml-cpp-dev       # configuration (and JSON fixtures)
  libsentencepiece-dev  # tokenizer
  libopencv-dev         # image decoding
  libarchive-dev        # WebDataset .tar shards, read as streams
  librsvg2-dev          # SVG rendering (the iconify icon corpus)
  libgtest-dev libgmock-dev
  iproute2              # ip netns: scripts/multinode_check.sh's two nodes on one machine
  clang-format          # scripts/check_format.sh (CI checks the formatting)
)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
