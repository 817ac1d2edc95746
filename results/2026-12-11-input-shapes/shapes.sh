#!/usr/bin/env bash
# shapes.sh SRC_DIR DST_PARENT: the traffic CSV files of SRC_DIR (gen_csv.py's) rewritten in
# three other shapes a camera export may have: the plate quoted (DST/quoted-plate), every field
# quoted (DST/quoted-all), the plate column first (DST/reordered). Malformed lines (not three
# fields) and the header stay as they are.
set -euo pipefail
src=$1 dst=$2
mkdir -p "$dst/quoted-plate" "$dst/quoted-all" "$dst/reordered"
for f in "$src"/*.csv; do
  name=$(basename "$f")
  awk -F, 'NR==1{print;next} NF==3{print $1",\""$2"\","$3; next}{print}' "$f" > "$dst/quoted-plate/$name"
  awk -F, 'NR==1{print;next} NF==3{print "\""$1"\",\""$2"\",\""$3"\""; next}{print}' "$f" > "$dst/quoted-all/$name"
  awk -F, 'NF==3{print $2","$1","$3; next}{print}' "$f" > "$dst/reordered/$name"
done
