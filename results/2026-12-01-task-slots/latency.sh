#!/usr/bin/env bash
# End-to-end latency (latency markers every 5 ms, source to every sink) of the traffic job at a
# given rate with a 1 ms buffer timeout, a thread per subtask against a thread per task slot,
# interleaved. Usage: latency.sh WEIR_BINARY CSV_DIR ROUNDS RATE... > latency.tsv
set -euo pipefail
exe=$1 input=$2 rounds=$3
shift 3
out=$(mktemp -d)
echo -e "round\trate\tthreads\tp50_ms\tp99_ms\tmax_ms\tsamples\tcpu_s"
for round in $(seq "$rounds"); do
  for rate in "$@"; do
    for threads in per-subtask per-slot; do
      rm -rf "$out/o"
      /usr/bin/time -f "%U %S" -o "$out/time" "$exe" run traffic --input "$input" -p 2 \
        --max-future-skew off --max-past-skew off --rate "$rate" --buffer-timeout 1ms \
        --latency-interval 5ms --threads "$threads" --output "$out/o" > /dev/null 2>&1
      read -r user sys < "$out/time"
      python3 -c "
import json; l = json.load(open('$out/o/report.json'))['latency']
print('\t'.join(str(x) for x in ($round, $rate, '$threads', l['p50_ms'], l['p99_ms'], l['max_ms'], l['samples'], round($user + $sys, 2))))"
    done
  done
done
rm -rf "$out"
