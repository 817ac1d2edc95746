#!/usr/bin/env bash
# Calibrates issue 9's figures: whole-process wall and CPU of the traffic job on the old
# binary (commit ee581f5, the base of the issue's figures: weir and the project's timely peer),
# the plain timely program (--engine timely-plain) and the current weir (thread per slot and
# per subtask) and peer, each run in its own process, interleaved round robin.
# Usage: measure.sh OLD_WEIR_BINARY NEW_WEIR_BINARY CSV_DIR [ROUNDS] > runs.tsv
set -euo pipefail
old=$1 new=$2 input=$3 rounds=${4:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off)
configs=(
  "old-weir|$old|--engine weir"
  "old-timely|$old|--engine timely"
  "timely-plain|$new|--engine timely-plain"
  "weir-per-slot|$new|--engine weir --threads per-slot"
  "weir-per-subtask|$new|--engine weir"
  "timely|$new|--engine timely"
)
echo -e "round\tconfig\twall_s\tcpu_s\tinner_wall_s\tload1"
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do
    IFS='|' read -r name exe args <<< "$config"
    # shellcheck disable=SC2086 # $args is a list of options
    /usr/bin/time -f "%e %U %S" -o "$out/time" "$exe" "${common[@]}" $args \
      --output "$out/o" > "$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
    read -r wall user sys < "$out/time"
    inner=$(grep -o 'records in [0-9.]* s' "$out/log" | head -1 | tr -dc '0-9.')
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo -e "$round\t$name\t$wall\t$(echo "$user + $sys" | bc)\t$inner\t$load"
  done
done
