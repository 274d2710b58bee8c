#!/usr/bin/env bash
# Writes the nouns of WordNet (Debian's wordnet-base, NegLabel's source of negative labels), one
# per line, as candidates for `halo-clip eval --ood ... --negatives FILE`: every noun lemma of
# letters (and spaces for multi-word lemmas) of at least 3 characters, lower case, sorted,
# without repeats. Installs wordnet-base when it is missing.
#
# usage: scripts/wordnet_nouns.sh OUT_FILE
set -euo pipefail
if [[ $# -ne 1 || "$1" == "-h" || "$1" == "--help" ]]; then sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; [[ $# -eq 1 ]]; exit $?; fi
index=/usr/share/wordnet/index.noun
if [[ ! -f $index ]]; then
  echo "wordnet_nouns: installing wordnet-base" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get install -y wordnet-base > /dev/null
fi
tmp=$(mktemp "$1.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Data lines start with the lemma; the licence header starts with spaces.
awk '/^[a-z]/ { w = $1; gsub(/_/, " ", w); if (w ~ /^[a-z][a-z ]+[a-z]$/ && length(w) >= 3) print w }' "$index" |
  sort -u > "$tmp"
mv "$tmp" "$1"
trap - EXIT
echo "wordnet_nouns: $(wc -l < "$1") nouns in $1" >&2
