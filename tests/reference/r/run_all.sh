#!/usr/bin/env bash
# Regenerate every R reference file (tests/reference/*.json) from the committed R scripts.
# Needs: apt-get install r-base-core r-cran-estimatr r-cran-survival r-cran-sandwich
#        r-cran-cmprsk r-cran-aer r-cran-jsonlite r-cran-clubsandwich
set -euo pipefail
cd "$(dirname "$0")"
# careers.R reads ../data/careers_panel.csv, written once by careers_data.py (committed)
for f in *.R; do echo "== Rscript $f"; Rscript "$f"; done
