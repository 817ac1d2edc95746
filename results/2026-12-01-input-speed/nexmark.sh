#!/usr/bin/env bash
# Nexmark queries, binaries before and after interleaved. Usage: nexmark.sh BEFORE AFTER ROUNDS EVENTS
set -euo pipefail
before=$1 after=$2 rounds=${3:-5} events=${4:-10000000}
out=$(mktemp -d)
echo -e "round\tquery\tbinary\tM_events_per_s\tper_core_over_flink\tsource_M_events_per_s"
for round in $(seq "$rounds"); do
  for q in q0 q1 q2 q5 q7 q8; do
    for bin in before after; do
      exe=${!bin}
      "$exe" run nexmark --query "$q" --events "$events" --output "$out/o" > "$out/log" 2>&1
      rate=$(grep -o '= [0-9.]* M events/s' "$out/log" | head -1 | tr -dc '0-9.')
      flink=$(grep -o 'weir / Flink = [0-9.]*' "$out/log" | tr -dc '0-9.')
      src=$(grep -o 'discarding sink): [0-9.]* M' "$out/log" | tr -dc '0-9.' || true)
      echo -e "$round\t$q\t$bin\t$rate\t$flink\t${src:--}"
    done
  done
done
rm -rf "$out"
