#!/usr/bin/env bash
# measure.sh BEFORE AFTER CSV_DIR ROUNDS [extra weir args...]: whole-process wall and CPU,
# binaries and engines interleaved (results/2026-12-01-input-speed/measure.sh plus extra args).
set -euo pipefail
before=$1 after=$2 input=$3 rounds=$4; shift 4
out=$(mktemp -d)
echo -e "round\tbinary\tengine\twall_s\tcpu_s"
for round in $(seq "$rounds"); do
  for bin in before after; do
    exe=${!bin}
    for engine in weir timely; do
      rm -rf "$out/o"
      /usr/bin/time -f "%e %U %S" -o "$out/time" "$exe" run traffic --input "$input" -p 2 \
        --max-future-skew off --max-past-skew off --engine "$engine" --output "$out/o" "$@" \
        > "$out/log" 2>&1
      read -r wall user sys < "$out/time"
      echo -e "$round\t$bin\t$engine\t$wall\t$(echo "$user + $sys" | bc)"
    done
  done
done
rm -rf "$out"
