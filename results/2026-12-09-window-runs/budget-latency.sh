#!/usr/bin/env bash
# latency p99 per firing budget, interleaved. Usage: budget.sh EXE CSV RATE ROUNDS OUT BUDGETS...
set -euo pipefail
exe=$1 input=$2 rate=$3 rounds=$4 out=$5; shift 5
tmp=$(mktemp -d)
echo -e "round\tlabel\tp50_ms\tp99_ms\tp999_ms\tmax_ms\tsamples" > "$out"
for round in $(seq "$rounds"); do
  for b in "$@"; do
    rm -rf "$tmp/o"
    "$exe" run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms --firing-budget "$b" --output "$tmp/o" > /dev/null 2>&1
    python3 - "$tmp/o/report.json" "$round" "b$b" >> "$out" <<'P'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]
q = r["result_latency"]
print("\t".join(map(str, [sys.argv[2], sys.argv[3], l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"], l["samples"], q["p50_ms"], q["p99_ms"]])))
P
  done
done
rm -rf "$tmp"
