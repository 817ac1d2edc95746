#!/usr/bin/env bash
# Nexmark q0 q1 q2 q5 q7 q8 on two weir binaries, ROUNDS rounds, each query run by BEFORE then
# AFTER back to back (interleaved), 10 M events, -p 2 (default): each line one run's per-core
# rate, its ratio to Flink v1, the generator alone per core (source into a discarding sink, run
# by the same invocation right after the query), the query's share of it, and the CPU seconds
# of the whole invocation (query and generator alone, 20 M events generated; `perf stat`
# task-clock): the machine is shared, so the CPU time is the steadier figure.
# Usage: nexmark.sh BEFORE AFTER ROUNDS > nexmark.tsv
set -euo pipefail
before=$1 after=$2 rounds=${3:-5}
out=$(mktemp -d)
echo -e "round\tbinary\tquery\tper_core_keps\tweir_over_flink\tgenerator_per_core_keps\tshare_of_generator\tcpu_s"
for round in $(seq "$rounds"); do
  for q in q0 q1 q2 q5 q7 q8; do
    for binary in before after; do
      exe=$before; [ "$binary" = after ] && exe=$after
      rm -rf "$out/o"
      perf stat -x, -e task-clock -o "$out/stat" \
        "$exe" run nexmark --query "$q" --events 10000000 --output "$out/o" > "$out/log" 2>&1
      cpu=$(awk -F, '/task-clock/ {printf "%.3f", $1 / 1000}' "$out/stat")
      per_core=$(sed -n 's/^per core: \([0-9.]*\) K.*weir \/ Flink = \([0-9.]*\)$/\1\t\2/p' "$out/log")
      gen=$(sed -n 's/^generator alone.*, \([0-9.]*\) K per core.* runs at \([0-9.]*\) of it$/\1\t\2/p' "$out/log")
      echo -e "$round\t$binary\t$q\t$per_core\t$gen\t$cpu"
    done
  done
done
rm -rf "$out"
