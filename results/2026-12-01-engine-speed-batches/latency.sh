#!/usr/bin/env bash
# End-to-end latency (latency markers every 5 ms, source to every sink) of the traffic job at a
# given rate with a 1 ms buffer timeout, flush on idle on and off, interleaved.
# Usage: latency.sh WEIR_BINARY CSV_DIR ROUNDS RATE... > latency.tsv
set -euo pipefail
exe=$1 input=$2 rounds=$3
shift 3
out=$(mktemp -d)
echo -e "round\trate\tflush_on_idle\tp50_ms\tp99_ms\tmax_ms\tsamples"
for round in $(seq "$rounds"); do
  for rate in "$@"; do
    for flush in on off; do
      rm -rf "$out/o"
      "$exe" run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off \
        --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms --flush-on-idle "$flush" \
        --output "$out/o" > /dev/null 2>&1
      python3 -c "
import json; l = json.load(open('$out/o/report.json'))['latency']
print('\t'.join(str(x) for x in ($round, $rate, '$flush', l['p50_ms'], l['p99_ms'], l['max_ms'], l['samples'])))"
    done
  done
done
rm -rf "$out"
