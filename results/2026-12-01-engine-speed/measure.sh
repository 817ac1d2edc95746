#!/usr/bin/env bash
# weir against the project's timely peer on the traffic job, whole process (wall and CPU),
# configurations interleaved round robin. Usage: measure.sh WEIR_BINARY CSV_DIR ROUNDS > runs.tsv
# (CSV_DIR from ../2026-12-01-input-speed/gen_csv.py: 4 M records, 4 files.)
set -euo pipefail
exe=$1 input=$2 rounds=${3:-5}
out=$(mktemp -d)
echo -e "round\tconfig\twall_s\tcpu_s"
for round in $(seq "$rounds"); do
  for config in weir timely weir-checkpoints; do
    extra=()
    engine=$config
    if [ "$config" = weir-checkpoints ]; then
      engine=weir
      extra=(--checkpoint-interval 1s)
    fi
    rm -rf "$out/o"
    /usr/bin/time -f "%e %U %S" -o "$out/time" "$exe" run traffic --input "$input" -p 2 \
      --max-future-skew off --max-past-skew off --engine "$engine" --output "$out/o" \
      "${extra[@]}" > "$out/log" 2>&1
    read -r wall user sys < "$out/time"
    echo -e "$round\t$config\t$wall\t$(echo "$user + $sys" | bc)"
  done
done
rm -rf "$out"
