#!/usr/bin/env bash
# End-to-end marker latency and window-result latency per configuration, interleaved: the
# traffic job at RATE records/s, 1 ms buffer timeout, markers every 5 ms.
# Usage: latency.sh EXE CSV_DIR RATE ROUNDS OUT LABEL "EXTRA ARGS" [LABEL "EXTRA ARGS" ...]
# OUT (TSV): round, label, p50, p99, p99.9, max, samples (markers, ms), result p50, result p99.
set -euo pipefail
exe=$1 input=$2 rate=$3 rounds=$4 out=$5; shift 5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo -e "round\tlabel\tp50\tp99\tp999\tmax\tn\tres_p50\tres_p99" > "$out"
for r in $(seq "$rounds"); do
  args=("$@")
  for ((i=0;i<${#args[@]};i+=2)); do
    label=${args[i]} extra=${args[i+1]}
    rm -rf "$tmp/o"
    # shellcheck disable=SC2086
    "$exe" run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off \
      --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms $extra --output "$tmp/o" > /dev/null 2>&1
    python3 - "$tmp/o/report.json" "$r" "$label" >> "$out" <<'P'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]; q = r["result_latency"]
print("\t".join(map(str, [sys.argv[2], sys.argv[3], l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"], l["samples"], q["p50_ms"], q["p99_ms"]])))
P
  done
done
