#!/usr/bin/env bash
# End-to-end latency, BEFORE against AFTER (and AFTER firing everything at once), 1 ms buffer
# timeout, markers every 5 ms, at RATE records/s, ROUNDS interleaved rounds, into OUT (TSV:
# round, label, p50, p99, p99.9, max, samples).
# Usage: latency.sh BEFORE AFTER CSV_DIR RATE ROUNDS OUT
set -euo pipefail
before=$1 after=$2 input=$3 rate=$4 rounds=$5 out=$6
tmp=$(mktemp -d)
job=(run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off
  --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms)
echo -e "round\tlabel\tp50_ms\tp99_ms\tp999_ms\tmax_ms\tsamples" > "$out"
for round in $(seq "$rounds"); do
  for label in before after after-all after-subtask before-subtask; do
    exe=$after extra=()
    case $label in before*) exe=$before ;; esac
    case $label in *-all) extra=(--firing-budget all) ;; esac
    case $label in *-subtask) extra+=(--threads per-subtask) ;; esac
    rm -rf "$tmp/o"
    "$exe" "${job[@]}" "${extra[@]}" --output "$tmp/o" > /dev/null 2>&1
    python3 - "$tmp/o/report.json" "$round" "$label" >> "$out" <<'P'
import json, sys
l = json.load(open(sys.argv[1]))["latency"]
print("\t".join(map(str, [sys.argv[2], sys.argv[3], l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"], l["samples"]])))
P
  done
done
rm -rf "$tmp"
