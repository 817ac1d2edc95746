#!/usr/bin/env bash
# Whole-process wall and CPU of the traffic job, binaries before and after interleaved, each
# engine in its own process. Usage: measure.sh BEFORE AFTER CSV_DIR ROUNDS > runs.tsv
set -euo pipefail
before=$1 after=$2 input=$3 rounds=${4:-5}
out=$(mktemp -d)
echo -e "round\tbinary\tengine\twall_s\tcpu_s\trecords_per_s"
for round in $(seq "$rounds"); do
  for bin in before after; do
    exe=${!bin}
    for engine in weir timely; do
      /usr/bin/time -f "%e %U %S" -o "$out/time" "$exe" run traffic --input "$input" -p 2 \
        --max-future-skew off --max-past-skew off --engine "$engine" --output "$out/o" \
        > "$out/log" 2>&1
      read -r wall user sys < "$out/time"
      rate=$(grep -o '= [0-9.]* M records/s' "$out/log" | head -1 | tr -dc '0-9.')
      echo -e "$round\t$bin\t$engine\t$wall\t$(echo "$user + $sys" | bc)\t$rate"
    done
  done
done
rm -rf "$out"
