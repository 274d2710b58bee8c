# Shared by the icon-corpus scripts (icon_evidence.sh, icon_filter.sh, sink_table.sh); sourced,
# not run. CORPUS [data/prepared/iconify-64], HALO_CLIP [build/halo-clip], LOCK [empty]: a file
# that every training and evaluation holds (flock), so that builds and tests run between them.
CORPUS=${CORPUS:-data/prepared/iconify-64}
H=${HALO_CLIP:-build/halo-clip}
P=data/prepared
locked() { if [[ -n "${LOCK:-}" ]]; then flock "$LOCK" "$@"; else "$@"; fi; }
