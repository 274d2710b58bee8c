#!/usr/bin/env bash
# HALO against InfoNCE and SigLIP on the same budget: the tiny preset trained on the Google-art
# emoji with 20% of the captions swapped, evaluated on the Twitter art (retrieval, zero-shot
# category classification and its ECE) and on the noisy training set (how well each model's own
# pair score and the cosine score tell the swapped pairs from the clean ones). One table, the
# mean and spread over the seeds.
#
# The runs are those of scripts/ablation.sh (same folder, same names): a run that the ablation
# already made is not redone. Environment: OUT [runs/ablation], EPOCHS [30], SEEDS ["0 1"],
# HALO_VARIANTS [halo-reference halo-centred] (see scripts/ablation.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${OUT:-runs/ablation}
export OUT NOISE=20 XFOLD="" TABLE="$OUT/compare_losses.md"
export VARIANTS="${HALO_VARIANTS:-halo-reference halo-centred} infonce siglip"
exec scripts/ablation.sh
