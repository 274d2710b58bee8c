#!/usr/bin/env bash
# Checks that every C++ and CUDA source of the project (src/, tests/, bench/) is formatted as
# .clang-format says, with clang-format 14 (Debian 12's package, installed by scripts/setup.sh).
# Lists the files that are not and exits 1. --fix rewrites them in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --fix|"") ;;
  *) echo "check_format: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed (scripts/setup.sh)" >&2; exit 1; }
mapfile -t files < <(find src tests bench -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) | sort)
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  echo "check_format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} files are not formatted (scripts/check_format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check_format: all ${#files[@]} files formatted ($(clang-format --version | head -1))"
