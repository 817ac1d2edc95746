#!/usr/bin/env bash
# latab.sh ROUNDS RATE INPUT label=exe ... : interleaved latency runs, per-slot and per-subtask
set -euo pipefail
rounds=$1 rate=$2 input=$3; shift 3
out=$(mktemp -d)
echo -e "round\tbinary\tthreads\tp50_ms\tp99_ms\tmax_ms\tsamples"
for r in $(seq "$rounds"); do for spec in "$@"; do for threads in per-subtask per-slot; do
  label=${spec%%=*} exe=${spec#*=}
  rm -rf "$out/o"
  "$exe" run traffic --input "$input" -p 2 --max-future-skew off --max-past-skew off --rate "$rate" --buffer-timeout 1ms --latency-interval 5ms --threads "$threads" --output "$out/o" > /dev/null 2>&1
  python3 -c "
import json; l = json.load(open('$out/o/report.json'))['latency']
print('\t'.join(str(x) for x in ($r, '$label', '$threads', l['p50_ms'], l['p99_ms'], l['max_ms'], l['samples'])))"
done; done; done
rm -rf "$out"
