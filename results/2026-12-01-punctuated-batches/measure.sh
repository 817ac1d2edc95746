#!/usr/bin/env bash
# Punctuated vs periodic watermarks before and after deferring punctuated watermarks to the end
# of the source batch, in the configuration `weir suite event-time` compares (generated traffic,
# 2 M records, 4 partitions, parallelism 2, seed 42, out-of-orderness 5 s, two-phase
# aggregation, default guard): the four runs of a round interleaved.
# Usage: measure.sh BEFORE_BINARY AFTER_BINARY ROUNDS > runs.tsv
set -euo pipefail
before=$1 after=$2 rounds=${3:-5}
out=$(mktemp -d)
echo -e "round\tbinary\twatermark\tthroughput\twall_ms\tlate\twm_per_s"
for round in $(seq "$rounds"); do
  for binary in before after; do
    exe=$before
    [ "$binary" = after ] && exe=$after
    for watermark in punctuated periodic:200ms; do
      rm -rf "$out/o"
      "$exe" run traffic --generate 2000000 --watermark "$watermark" --output "$out/o" > /dev/null 2>&1
      python3 -c "
import json, sys
r = json.load(open('$out/o/report.json'))
print('\t'.join(str(x) for x in ['$round', '$binary', '$watermark', r['throughput_records_per_s'],
      r['wall_ms'], r['records_late_dropped'], r['watermarks_per_second']]))"
    done
  done
done
rm -rf "$out"
