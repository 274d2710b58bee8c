#!/usr/bin/env bash
# Downloads, here where Debian's registry is reachable, the Debian 12 .debs that
# scripts/gpu_check.sh unpacks on the bare GPU machine (no registry there) to build halo-clip.
# Writes .gpu-debs/ (git-ignored): the .debs, two stub libraries and a manifest.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/fetch_gpu_debs.sh [--out DIR] [--keep]

Downloads with `apt-get download` the Debian 12 packages the halo-clip build needs that a bare
GPU machine lacks (it has LibTorch from PyTorch, CUDA, a compiler and CMake):
  yaml-cpp, SentencePiece, OpenCV core/imgproc/imgcodecs, GoogleTest/GoogleMock, libarchive,
  and the shared libraries they load (JPEG, PNG, TIFF, WebP, OpenJPEG, OpenEXR, TBB, BLAS/LAPACK,
  GLX, libxml2/ICU, ...), everything except glibc, libstdc++, libgcc and zlib.
OpenCV's image codecs also load GDAL and GDCM (geospatial and DICOM formats) whose own
dependencies weigh over 100 MiB; instead of them it builds stub libraries with the same names
that define the symbols imgcodecs imports (reading a GDAL or DICOM image fails; PNG, JPEG and the
other formats are unaffected). The stubs are made from the real packages' symbol tables.
Then it unpacks everything into a scratch folder and checks that every library's dependencies
are inside the bundle (or are the base libraries above), and prints the total size.

Options:
  --out DIR   where to write (default: .gpu-debs in the repository root)
  --keep      keep .debs already in DIR (default: start from an empty DIR)
  -h, --help  this text

Carry DIR to the GPU machine with the working tree; scripts/gpu_check.sh finds it there.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.gpu-debs"
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch_gpu_debs: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

DEV=(libyaml-cpp-dev libsentencepiece-dev libopencv-core-dev libopencv-imgproc-dev
     libopencv-imgcodecs-dev libgtest-dev libgmock-dev libarchive-dev)
RUNTIME=(
  libyaml-cpp0.7 libsentencepiece0 libarchive13
  libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406
  # imgcodecs' formats
  libjpeg62-turbo libpng16-16 libwebp7 libtiff6 libjbig0 libdeflate0 liblerc4 libopenjp2-7
  libopenexr-3-1-30 libimath-3-1-29
  # core: TBB, BLAS/LAPACK (the reference ones, through Debian's alternatives folders), GLX
  libtbb12 libtbbmalloc2 libblas3 liblapack3 libgfortran5 libquadmath0
  libglx0 libglvnd0 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
  # libarchive's and libtiff's compressors and libxml2
  liblzma5 libzstd1 liblz4-1 libbz2-1.0 libacl1 libnettle8 libxml2 libicu72
)
# Libraries a bare machine has; nothing in the bundle may need anything else.
BASE_SONAMES="libc.so.6 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0 ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1 libz.so.1"
# Stubbed (soname package): loaded only by imgcodecs.
STUBS=("libgdal.so.32 libgdal32" "libgdcmMSFF.so.3.0 libgdcm3.0" "libgdcmDSED.so.3.0 libgdcm3.0")

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  { echo "fetch_gpu_debs: needs apt-get and dpkg-deb (a Debian machine)" >&2; exit 1; }
command -v cc >/dev/null || { echo "fetch_gpu_debs: needs a C compiler for the stubs" >&2; exit 1; }

if [[ $keep -eq 0 && -d "$out" ]]; then rm -rf "${out:?}/debs" "${out:?}/stubs"; fi
mkdir -p "$out/debs" "$out/stubs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "fetch_gpu_debs: downloading ${#DEV[@]} -dev and ${#RUNTIME[@]} runtime packages into $out/debs"
# apt-get download writes into the current folder; the _apt sandbox user may not write there.
(cd "$out/debs" && apt-get download -o APT::Sandbox::User=root "${DEV[@]}" "${RUNTIME[@]}" 2>&1 | grep -v "^Get:\|^Fetched" || true)
for p in "${DEV[@]}" "${RUNTIME[@]}"; do
  ls "$out/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "fetch_gpu_debs: $p was not downloaded" >&2; exit 1; }
done

# ---- stubs for GDAL and GDCM ---------------------------------------------------------------
(cd "$scratch" && apt-get download -o APT::Sandbox::User=root libgdal32 libgdcm3.0 >/dev/null 2>&1) ||
  { echo "fetch_gpu_debs: could not download libgdal32/libgdcm3.0 (for their symbol tables)" >&2; exit 1; }
mkdir -p "$scratch/real" "$scratch/bundle"
for d in "$scratch"/*.deb; do dpkg-deb -x "$d" "$scratch/real"; done
for d in "$out"/debs/*.deb; do dpkg-deb -x "$d" "$scratch/bundle"; done
lib=usr/lib/x86_64-linux-gnu
imgcodecs=$(ls "$scratch/bundle/$lib"/libopencv_imgcodecs.so.4.*)
# What imgcodecs imports (undefined, not weak) and what the other libraries it loads define.
readelf -W --dyn-syms "$imgcodecs" | awk '$7 == "UND" && $5 != "WEAK" && $8 != "" { sub(/@.*/, "", $8); print $8 }' |
  sort -u > "$scratch/imports"
for soname_pkg in "${STUBS[@]}"; do
  read -r soname _ <<<"$soname_pkg"
  real=$(readlink -f "$scratch/real/$lib/$soname")
  [[ -f "$real" ]] || { echo "fetch_gpu_debs: $soname not found in its package" >&2; exit 1; }
  # Defined symbols of the real library: name, type, size.
  readelf -W --dyn-syms "$real" | awk '$7 != "UND" && ($4 == "FUNC" || $4 == "OBJECT") && $5 != "LOCAL" { sub(/@.*/, "", $8); print $8, $4, $3 }' |
    sort -u -k1,1 > "$scratch/defs"
  join "$scratch/imports" "$scratch/defs" > "$scratch/stub_syms"
  {
    echo "# Stub of $soname for halo-clip's GPU check (scripts/fetch_gpu_debs.sh): the symbols"
    echo "# libopencv_imgcodecs imports from it. Functions return 0; objects are zero."
    echo ".text"
    echo "halo_stub_zero: xorl %eax, %eax; ret"
    while read -r name type size; do
      if [[ "$type" == FUNC ]]; then
        printf '.globl %s\n.type %s, @function\n%s: jmp halo_stub_zero\n' "$name" "$name" "$name"
      else
        [[ "$size" -gt 0 ]] 2>/dev/null || size=8
        printf '.data\n.globl %s\n.type %s, @object\n.size %s, %s\n%s: .zero %s\n.text\n' \
          "$name" "$name" "$name" "$size" "$name" "$size"
      fi
    done < "$scratch/stub_syms"
  } > "$scratch/$soname.s"
  cc -shared -nostdlib -o "$out/stubs/$soname" -Wl,-soname,"$soname" "$scratch/$soname.s"
  echo "fetch_gpu_debs: stub $soname: $(wc -l < "$scratch/stub_syms") symbols"
done

# ---- check the bundle is complete ----------------------------------------------------------
have=" $BASE_SONAMES "
for f in $(find "$scratch/bundle" "$out/stubs" -name '*.so*' \( -type f -o -type l \)); do
  have+="$(basename "$f") "
done
missing=""
while IFS= read -r f; do
  for need in $(readelf -d "$f" 2>/dev/null | awk '/NEEDED/ { gsub(/[\[\]]/, "", $5); print $5 }'); do
    [[ "$have" == *" $need "* ]] || missing+="$need (needed by $(basename "$f"))"$'\n'
  done
done < <(find "$scratch/bundle" -name '*.so*' -type f)
# Every symbol imgcodecs imports must be defined by a library it can load: the bundle, the stubs
# or the base libraries (this machine's copies stand for the GPU machine's).
defined_by() { readelf -W --dyn-syms "$@" 2>/dev/null | awk '$7 != "UND" && $8 != "" { sub(/@.*/, "", $8); print $8 }'; }
{
  find "$scratch/bundle" "$out/stubs" -name '*.so*' -type f -print0 | xargs -0 -n 20 bash -c "$(declare -f defined_by); defined_by \"\$@\"" _
  for b in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 libz.so.1; do
    defined_by "$(ldconfig -p | awk -v b="$b" '$1 == b && /x86-64/ { print $NF; exit }')"
  done
} | sort -u > "$scratch/all_defined"
unresolved=$(comm -23 "$scratch/imports" "$scratch/all_defined")
[[ -z "$unresolved" ]] || missing+="symbols imgcodecs imports that nothing in the bundle defines: $unresolved"$'\n'
if [[ -n "$missing" ]]; then
  printf 'fetch_gpu_debs: libraries missing from the bundle:\n%s' "$missing" | sort -u >&2
  exit 1
fi
glibc=$(find "$scratch/bundle" "$out/stubs" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null |
  grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1)
{
  echo "# .gpu-debs: made by scripts/fetch_gpu_debs.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "# newest glibc symbol version needed: $glibc"
  (cd "$out/debs" && ls *.deb)
  (cd "$out/stubs" && ls | sed 's/^/stub: /')
} > "$out/MANIFEST"
echo "fetch_gpu_debs: complete; needs glibc >= ${glibc#GLIBC_}; $(ls "$out"/debs/*.deb | wc -l) .debs + ${#STUBS[@]} stubs, $(du -sh "$out" | cut -f1) in $out"
