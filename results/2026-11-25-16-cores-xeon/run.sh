#!/usr/bin/env bash
# One scaling run on the lent 16-core machine (not part of the build): prebuilt binaries only.
set -u
W=target/release/weir
FINAL="$OUT"
OUT=target/device-out
rm -rf "$OUT"
mkdir -p "$OUT"
{ nproc; grep -m1 "model name" /proc/cpuinfo; } > "$OUT/machine.txt"
# 1. micro benches, 5 interleaved rounds
for r in 1 2 3 4 5; do
  target/release/deps/channel-634be1a3b3050540 --bench --warm-up-time 1 --measurement-time 2 --noplot 2>&1 | grep -E "^channel|time:" >> "$OUT/channel.txt"
  target/release/deps/pool-52f9bd57d48d6193 --bench --warm-up-time 1 --measurement-time 2 --noplot 2>&1 | grep -E "^pool|time:" >> "$OUT/pool.txt"
done
# 2. traffic: weir vs timely, streaming and batch, parallelism 2, 4, 8
for p in 2 4 8; do
  for mode in streaming batch; do
    $W run traffic --engine weir,timely --repeat 5 -p $p --partitions 8 --generate 8000000 --mode $mode --output "$OUT/traffic-p$p-$mode" > "$OUT/traffic-p$p-$mode.log" 2>&1
    rm -f "$OUT"/traffic-p$p-$mode/*/*.jsonl
  done
done
# 3. Nexmark at parallelism 8, 3 rounds
for r in 1 2 3; do
  for q in q0 q1 q2 q5 q7 q8; do
    $W run nexmark --query $q --events 20000000 --partitions 8 -p 8 --sink discard --output "$OUT/nexmark-$q-$r" > "$OUT/nexmark-$q-$r.log" 2>&1
  done
  $W run nexmark --query q7 --aggregation window-all --events 20000000 --partitions 8 -p 8 --sink discard --output "$OUT/nexmark-q7wa-$r" > "$OUT/nexmark-q7wa-$r.log" 2>&1
done
rm -f "$OUT"/nexmark-*/*.jsonl
# 4. the event-time suite at parallelism 8
$W suite event-time --records 4000000 --repeat 5 -p 8 --partitions 8 --output "$OUT/event-time-p8" > "$OUT/suite.log" 2>&1
tar czf "$FINAL/results.tgz" -C target device-out
echo done
